/** Runs the built CLI as a subprocess in a private TENSORSEAL_HOME, as users run it. */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/**
 * What users run: package.json's "bin" (the bundle in dist/cli, scripts/build-cli.mjs), not
 * tsc's one-file-per-module output in dist/src, so every CLI test exercises the shipped entry
 * and its chunks.
 */
export const CLI = resolve(
  REPO,
  (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { bin: Record<string, string> })
    .bin["tensorseal"]!,
);

export interface Sandbox {
  dir: string;
  env: NodeJS.ProcessEnv;
  run(args: string[], opts?: { input?: Buffer | string; env?: NodeJS.ProcessEnv }): Result;
  /** Like run, without blocking the event loop (for a server living in the test process). */
  runAsync(args: string[], env?: NodeJS.ProcessEnv): Promise<TextResult>;
  cleanup(): void;
}

export interface TextResult {
  status: number;
  stdout: string;
  stderr: string;
}

export interface Result {
  status: number;
  stdout: Buffer;
  stderr: string;
}

export function sandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), "tensorseal-cli-"));
  const rootKey = join(dir, "root.key");
  writeFileSync(rootKey, randomBytes(32).toString("hex"), { mode: 0o600 });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    TENSORSEAL_HOME: join(dir, "home"),
    TENSORSEAL_ROOT_KEY_FILE: rootKey,
    // Test-only: a cheap scrypt for new keystores (honoured only with TENSORSEAL_TEST_KNOBS=1).
    TENSORSEAL_SCRYPT_WORK_FACTOR: "10",
    TENSORSEAL_TEST_KNOBS: "1",
  };
  return {
    dir,
    env,
    run(args, opts = {}) {
      const r = spawnSync(process.execPath, [CLI, ...args], {
        env: { ...env, ...opts.env },
        input: opts.input,
        cwd: dir,
        maxBuffer: 256 << 20,
      });
      return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString("utf8") };
    },
    runAsync(args, extra = {}) {
      return new Promise((resolve, reject) => {
        const c = spawn(process.execPath, [CLI, ...args], { env: { ...env, ...extra }, cwd: dir });
        let stdout = "";
        let stderr = "";
        c.stdout.on("data", (d: Buffer) => {
          stdout += d.toString();
        });
        c.stderr.on("data", (d: Buffer) => {
          stderr += d.toString();
        });
        c.on("error", reject);
        c.on("close", (status) => resolve({ status: status ?? -1, stdout, stderr }));
      });
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Runs `serve --dev` in `home` once per case and asserts each is refused before anything listens:
 * exit 2 with the stderr matching. The timeout ends a run that was wrongly accepted (and is
 * serving) instead of hanging the suite.
 */
export function assertServeRefuses(
  home: string,
  cases: readonly (readonly [readonly string[], RegExp])[],
): void {
  for (const [args, why] of cases) {
    const r = spawnSync(
      process.execPath,
      [CLI, "serve", "--dev", "--listen", "127.0.0.1:0", ...args],
      { encoding: "utf8", env: { PATH: process.env.PATH, TENSORSEAL_HOME: home }, timeout: 20_000 },
    );
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, why);
  }
}

/** A sandbox with a keystore, a 1 KiB small.bin and its small.tseal: the short commands' fixture. */
export function sandboxWithSmallSeal(): Sandbox {
  const box = sandbox();
  assert.equal(box.run(["init"]).status, 0);
  writeFileSync(join(box.dir, "small.bin"), randomBytes(1024));
  assert.equal(box.run(["seal", "small.bin", "-o", "small.tseal"]).status, 0);
  return box;
}
