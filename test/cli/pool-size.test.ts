import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { sizeThreadPool } from "../../src/cli/pool-size.js";
import { CLI } from "./helpers.js";

test("the thread pool gets one thread per core, 2 to 4, unless the user sized it", () => {
  const sized = (cores: number, preset?: string) => {
    const env: NodeJS.ProcessEnv = preset === undefined ? {} : { UV_THREADPOOL_SIZE: preset };
    sizeThreadPool(env, () => cores);
    return env.UV_THREADPOOL_SIZE;
  };
  assert.deepEqual(
    [1, 2, 3, 4, 64].map((c) => sized(c)),
    ["2", "2", "3", "4", "4"],
  );
  assert.equal(sized(2, "16"), "16");
  assert.equal(sized(2, ""), "", "even an empty setting is the user's");
});

test("the bin sizes the pool before any command runs, and keeps the user's size", () => {
  const dir = mkdtempSync(join(tmpdir(), "tseal-pool-"));
  try {
    const out = join(dir, "size.txt");
    const preload = join(dir, "probe.cjs");
    writeFileSync(
      preload,
      `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(out)}, String(process.env.UV_THREADPOOL_SIZE)));`,
    );
    const run = (env: NodeJS.ProcessEnv) => {
      const r = spawnSync(process.execPath, ["-r", preload, CLI, "--version"], {
        env: { PATH: process.env.PATH, ...env },
      });
      assert.equal(r.status, 0, String(r.stderr));
      return readFileSync(out, "utf8");
    };
    assert.equal(run({}), String(Math.min(4, Math.max(2, availableParallelism()))));
    assert.equal(run({ UV_THREADPOOL_SIZE: "3" }), "3");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
