/**
 * Progress lines: drawn on stderr when it is a terminal (a pseudo-terminal from util-linux
 * `script`), absent otherwise. Each long command is run both ways.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CLI, type Sandbox, sandbox } from "./helpers.js";

const hasScript = spawnSync("script", ["--version"]).status === 0;

/** A progress line as drawn: carriage return, label, percentage, bar. */
const LINE = (label: string) => new RegExp(`\\r${label} +\\d+% \\[[#.]{20}\\]`);

describe("progress on a terminal, silence elsewhere", { skip: !hasScript && "no `script`" }, () => {
  let s: Sandbox;
  const q = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;

  /** Runs the CLI with stdin, stdout and stderr on a pseudo-terminal; returns what it showed. */
  function onTerminal(args: string[]): { status: number; screen: string } {
    const cmd = [process.execPath, CLI, ...args].map(q).join(" ");
    const r = spawnSync("script", ["-qfec", cmd, "/dev/null"], {
      env: { ...s.env, SHELL: "/bin/sh", TERM: "dumb" },
      cwd: s.dir,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    return { status: r.status ?? -1, screen: r.stdout };
  }

  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    writeFileSync(join(s.dir, "w.bin"), randomBytes(3 << 20));
    assert.equal(s.run(["seal", "w.bin", "-o", "w.tseal"]).status, 0);
    const model = join(s.dir, "model");
    mkdirSync(model);
    writeFileSync(join(model, "a.bin"), randomBytes(1 << 20));
    writeFileSync(join(model, "config.json"), "{}");
  });
  after(() => s.cleanup());

  /** Name, arguments, label; outputs carry `sfx` so that both runs create their own. */
  const cases = (sfx: string): [string, string[], string][] => [
    ["seal", ["seal", "w.bin", "-o", `w${sfx}.tseal`], "sealing"],
    ["open", ["open", "w.tseal", "-o", `w${sfx}.out`], "opening"],
    ["verify", ["verify", "w.tseal"], "verifying"],
    ["inspect --verify", ["inspect", "w.tseal", "--verify"], "verifying"],
    ["seal-dir", ["seal-dir", "model", "-o", `model${sfx}.sealed`], "sealing"],
    ["open-dir", ["open-dir", `model${sfx}.sealed`, "-o", `model${sfx}.out`], "opening"],
    ["exec", ["exec", "-m", "w.tseal", "--", "sh", "-c", "echo command-ran"], "opening"],
    ["rewrap --to-latest", ["rewrap", "--to-latest", "w.tseal"], "rewrapping"],
  ];

  test("each long command draws a progress line on a terminal, and erases it", () => {
    for (const [name, args, label] of cases("-tty")) {
      if (name.startsWith("rewrap")) assert.equal(s.run(["keys", "rotate", "default"]).status, 0);
      const r = onTerminal(args);
      const shown = JSON.stringify(r.screen);
      assert.equal(r.status, 0, `${name}: ${shown}`);
      assert.match(r.screen, LINE(label), `${name}: ${shown}`);
      // Erased with spaces and a carriage return, never an escape sequence.
      assert.match(r.screen, /\r {20,}\r/, `${name}: ${shown}`);
      assert.doesNotMatch(r.screen, /\x1b/, name);
      // exec erases it before the command starts: the command's output starts a clean line.
      if (name === "exec") assert.match(r.screen, /\r {20,}\rcommand-ran/, shown);
    }
  });

  test("without a terminal: no progress at all", () => {
    for (const [name, args, label] of cases("-pipe")) {
      if (name.startsWith("rewrap")) assert.equal(s.run(["keys", "rotate", "default"]).status, 0);
      const r = s.run(args);
      assert.equal(r.status, 0, `${name}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\r|%|\[#/, `${name}: ${JSON.stringify(r.stderr)}`);
      assert.doesNotMatch(r.stderr, new RegExp(`^${label}`, "m"), name);
    }
  });
});
