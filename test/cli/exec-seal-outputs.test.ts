/**
 * `tensorseal exec --seal-outputs DIR`: what the command writes into TENSORSEAL_OUTPUT_DIR is
 * sealed into DIR when it ends (exit 0, a failure, a signal to exec, the command killed), opens
 * to the same bytes, is listed in the sealed manifest, and no plaintext stays anywhere: not in
 * RAM, not next to DIR. Links in the output directory are refused, not followed; a SIGKILLed
 * exec loses its outputs rather than leaving them readable.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Sandbox, sandbox } from "./helpers.js";
import { alive, execGuardian, type Running, start, waitFor } from "./interrupt-helpers.js";

const hasShm = existsSync("/dev/shm");
const skip = !hasShm && process.env.TENSORSEAL_REQUIRE_ALL !== "1";

/**
 * The command: a training-like node script. It writes a checkpoint and a nested metrics file
 * into $TENSORSEAL_OUTPUT_DIR, then per MODE: exits with CODE ("exit"), waits to be stopped
 * ("wait"), adds a link to /etc/passwd ("link"), creates DIR itself ("appear"), or keeps
 * writing a checkpoint per epoch until killed ("train"). READY gets "PID OUTPUT_DIR" once it
 * has written.
 * The marker comes in argv, so this file does not contain it.
 */
const CHILD = `
const fs = require("node:fs");
const path = require("node:path");
const [mode, marker, ready, code, extra] = process.argv.slice(2);
const out = process.env.TENSORSEAL_OUTPUT_DIR;
fs.writeFileSync(path.join(out, "checkpoint.pt"), Buffer.alloc(300000, marker));
fs.mkdirSync(path.join(out, "logs", "epoch-1"), { recursive: true });
fs.writeFileSync(path.join(out, "logs", "epoch-1", "metrics.json"), JSON.stringify({ marker, loss: 0.5 }));
if (mode === "link") fs.symlinkSync("/etc/passwd", path.join(out, "passwd"));
if (mode === "appear") fs.mkdirSync(extra);
const tellReady = () => fs.writeFileSync(ready, process.pid + " " + out);
if (mode === "train") {
  let epoch = 0;
  const step = () => {
    epoch++;
    const tmp = path.join(out, "ckpt.tmp");
    fs.writeFileSync(tmp, Buffer.alloc(100000 + epoch, marker));
    fs.renameSync(tmp, path.join(out, "checkpoint-" + epoch + ".pt"));
    if (epoch === 3) tellReady();
    setTimeout(step, 20);
  };
  step();
} else {
  tellReady();
  if (mode === "wait") setInterval(() => {}, 1000);
  else process.exit(Number(code));
}
`;

/** The command's pid and output directory, once it has written its outputs. */
async function readyOf(file: string): Promise<{ pid: number; out: string }> {
  const text = await waitFor("the command to write its outputs", () =>
    existsSync(file) ? readFileSync(file, "utf8") || null : null,
  );
  const [pid, out] = text.split(" ");
  return { pid: Number(pid), out: out! };
}

/** The exec guardian whose arguments name `dir`. */
const guardianServing = (dir: string) => execGuardian((argv) => argv.includes(dir));

describe("exec --seal-outputs", { skip }, () => {
  let s: Sandbox;
  let sealed: string;
  let script: string;
  let base: string;
  let n = 0;
  const running: Running[] = [];
  const ramDirs = () => readdirSync(base).filter((f) => f.startsWith("tensorseal-exec-"));

  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    const r = s.run(["seal", "-", "-o", "-"], { input: randomBytes(50_000) });
    assert.equal(r.status, 0, r.stderr);
    sealed = join(s.dir, "base-model.safetensors.tseal");
    writeFileSync(sealed, r.stdout);
    script = join(s.dir, "train.cjs");
    writeFileSync(script, CHILD);
    base = join("/dev/shm", `tensorseal-test-${process.pid}-${randomBytes(4).toString("hex")}`);
    mkdirSync(base, { mode: 0o700 });
  });
  after(async () => {
    for (const r of running) {
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL");
      await r.exited;
    }
    s.cleanup();
    rmSync(base, { recursive: true, force: true });
  });

  /** A fresh case: output DIR, READY file and marker. */
  const fresh = () => {
    n++;
    return {
      dir: join(s.dir, `run${n}.sealed`),
      ready: join(s.dir, `ready${n}`),
      marker: `PLAINTEXT-MARKER-${randomBytes(8).toString("hex")}`,
    };
  };
  const execArgs = (dir: string, mode: string, marker: string, ready: string, more: string[]) => [
    "exec",
    "-m",
    sealed,
    "--tmpfs",
    base,
    "--seal-outputs",
    dir,
    "-k",
    "default",
    ...more,
    "--",
    process.execPath,
    script,
    mode,
    marker,
    ready,
    ...(mode === "exit" ? [] : ["0"]),
  ];
  const runExec = (dir: string, mode: string, marker: string, ready: string, code = 0) =>
    s.run([...execArgs(dir, mode, marker, ready, []), ...(mode === "exit" ? [String(code)] : [])]);
  const startExec = (
    dir: string,
    mode: string,
    marker: string,
    ready: string,
    more: string[] = [],
  ) => {
    const r = start(s, execArgs(dir, mode, marker, ready, more));
    running.push(r);
    return r;
  };

  /** The sealed directory opened with open-dir (which checks it against its manifest). */
  const openOutputs = (dir: string): string => {
    const plain = join(s.dir, `opened-${randomBytes(4).toString("hex")}`);
    const r = s.run(["open-dir", dir, "-o", plain]);
    assert.equal(r.status, 0, r.stderr);
    return plain;
  };
  const manifestOf = (dir: string) => {
    const r = s.run(["open", join(dir, "tensorseal-manifest.json.tseal"), "-o", "-"]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.toString("utf8")) as {
      files: { path: string; size: number; sha256: string }[];
    };
  };
  /** Every regular file under `root` whose bytes contain `marker`. */
  const filesHolding = (root: string, marker: string): string[] => {
    const hits: string[] = [];
    for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
      const p = join(e.parentPath, e.name);
      if (e.isFile() && readFileSync(p).includes(marker)) hits.push(p);
    }
    return hits;
  };
  /** No plaintext: not in the sandbox (DIR, its parent, the keystore), not in RAM. */
  const assertNoPlaintext = (marker: string) => {
    assert.deepEqual(filesHolding(s.dir, marker), []);
    assert.deepEqual(filesHolding(base, marker), []);
    assert.deepEqual(ramDirs(), [], "a RAM directory outlived exec");
  };
  const assertOutputs = (dir: string, marker: string) => {
    const plain = openOutputs(dir);
    assert.deepEqual(readFileSync(join(plain, "checkpoint.pt")), Buffer.alloc(300_000, marker));
    assert.deepEqual(JSON.parse(readFileSync(join(plain, "logs/epoch-1/metrics.json"), "utf8")), {
      marker,
      loss: 0.5,
    });
    const m = manifestOf(dir);
    assert.deepEqual(
      m.files.map((f) => [f.path, f.size]),
      [
        ["checkpoint.pt", 300_000],
        ["logs/epoch-1/metrics.json", statSync(join(plain, "logs/epoch-1/metrics.json")).size],
      ],
    );
    rmSync(plain, { recursive: true });
  };

  test("exit 0: outputs sealed, open to the same bytes, listed in the manifest, RAM dir gone", () => {
    const c = fresh();
    const r = runExec(c.dir, "exit", c.marker, c.ready, 0);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /sealed 2 output file\(s\) into/);
    assert.deepEqual(readdirSync(c.dir).sort(), [
      "checkpoint.pt.tseal",
      "logs",
      "tensorseal-manifest.json.tseal",
    ]);
    assertNoPlaintext(c.marker);
    assertOutputs(c.dir, c.marker);
  });

  test("the command fails (exit 3): outputs still sealed, exec exits 3", () => {
    const c = fresh();
    const r = runExec(c.dir, "exit", c.marker, c.ready, 3);
    assert.equal(r.status, 3, r.stderr);
    assertNoPlaintext(c.marker);
    assertOutputs(c.dir, c.marker);
  });

  test("exec SIGTERMed while the command runs: outputs sealed, exit 143", async () => {
    const c = fresh();
    const run = startExec(c.dir, "wait", c.marker, c.ready);
    await readyOf(c.ready);
    run.child.kill("SIGTERM");
    assert.equal(await run.exited, 143, run.stderr());
    assertNoPlaintext(c.marker);
    assertOutputs(c.dir, c.marker);
  });

  test("a link to /etc/passwd in the outputs is refused, not followed, and reported", () => {
    const c = fresh();
    const r = runExec(c.dir, "link", c.marker, c.ready);
    assert.equal(r.status, 1, "a success whose outputs were not all sealed exits 1");
    assert.match(r.stderr, /refused.*passwd \(a symbolic link, not followed\)/);
    assert.ok(!existsSync(join(c.dir, "passwd.tseal")));
    assert.ok(!manifestOf(c.dir).files.some((f) => f.path === "passwd"));
    const plain = openOutputs(c.dir);
    assert.deepEqual(filesHolding(plain, readFileSync("/etc/passwd", "utf8").slice(0, 20)), []);
    rmSync(plain, { recursive: true });
    assertNoPlaintext(c.marker);
  });

  test("a training command killed mid-way: only sealed checkpoints in DIR, no plaintext anywhere", async () => {
    const c = fresh();
    const run = startExec(c.dir, "train", c.marker, c.ready);
    const { pid } = await readyOf(c.ready); // after three epochs
    process.kill(pid, "SIGKILL"); // as the OOM killer would
    assert.equal(await run.exited, 137, run.stderr());
    assertNoPlaintext(c.marker);
    const names = readdirSync(c.dir, { recursive: true }) as string[];
    assert.ok(names.length > 0);
    for (const f of names) {
      if (!statSync(join(c.dir, f)).isDirectory()) assert.match(f, /\.tseal$/);
    }
    const m = manifestOf(c.dir);
    assert.ok(m.files.filter((f) => /^checkpoint-\d+\.pt$/.test(f.path)).length >= 3);
    const plain = openOutputs(c.dir);
    assert.deepEqual(readFileSync(join(plain, "checkpoint-1.pt")), Buffer.alloc(100_001, c.marker));
    rmSync(plain, { recursive: true });
  });

  test("SIGKILL of exec: the outputs are lost, never left in plaintext", async () => {
    const c = fresh();
    const run = startExec(c.dir, "wait", c.marker, c.ready);
    const { pid, out } = await readyOf(c.ready);
    assert.ok(ramDirs().length === 2, "the models' and the outputs' RAM directories");
    assert.ok(guardianServing(out), "the guardian is told about the outputs' directory");
    run.child.kill("SIGKILL");
    await run.exited;
    // The guardian kills the command and wipes both directories.
    await waitFor("the command to be killed", () => !alive(pid) || null);
    await waitFor("the RAM directories to go", () => ramDirs().length === 0 || null);
    assert.ok(!existsSync(c.dir));
    assertNoPlaintext(c.marker);
  });

  test("exec and guardian both SIGKILLed: the next exec sweeps the outputs' plaintext", async () => {
    const c = fresh();
    const run = startExec(c.dir, "wait", c.marker, c.ready);
    const { pid, out } = await readyOf(c.ready);
    const guardian = guardianServing(out);
    assert.ok(guardian);
    run.child.kill("SIGSTOP"); // it must not see its guardian die: both go at once
    process.kill(guardian, "SIGKILL");
    run.child.kill("SIGKILL");
    process.kill(-pid, "SIGKILL"); // nobody is left to stop the command; the test does
    await run.exited; // "close": only once the command, which holds exec's stderr, is gone
    await waitFor("the guardian to go", () => guardianServing(out) === null || null);
    assert.ok(filesHolding(out, c.marker).length > 0, "precondition: plaintext left behind");

    const r = s.run(["exec", "-m", sealed, "--tmpfs", base, "--", "true"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`removed ${out}, the plaintext of an exec that was killed`));
    assert.ok(!existsSync(c.dir));
    assertNoPlaintext(c.marker);
  });

  test("DIR exists: refused before anything runs; --force replaces earlier sealed outputs", () => {
    const c = fresh();
    mkdirSync(c.dir);
    writeFileSync(join(c.dir, "notes.txt"), "mine");
    const r = runExec(c.dir, "exit", c.marker, c.ready);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /exists: pass --force/);
    assert.ok(!existsSync(c.ready), "the command must not have run");
    const forced = s.run(execArgs(c.dir, "exit", c.marker, c.ready, ["--force"]).concat("0"));
    assert.equal(forced.status, 2, "--force never replaces a directory that is not sealed outputs");
    assert.match(forced.stderr, /refusing to replace/);
    assert.equal(readFileSync(join(c.dir, "notes.txt"), "utf8"), "mine");
    rmSync(c.dir, { recursive: true });

    assert.equal(runExec(c.dir, "exit", c.marker, c.ready).status, 0);
    const again = s.run(execArgs(c.dir, "exit", `${c.marker}-2`, c.ready, ["--force"]).concat("0"));
    assert.equal(again.status, 0, again.stderr);
    assertOutputs(c.dir, `${c.marker}-2`);
    assertNoPlaintext(c.marker);
  });

  test("sealing fails (DIR appeared meanwhile): non-zero, the lost outputs named, no plaintext", () => {
    const c = fresh();
    const r = s.run(execArgs(c.dir, "appear", c.marker, c.ready, []).concat(c.dir));
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /appeared while the command ran/);
    assert.match(r.stderr, /wiped, not sealed: checkpoint\.pt, logs\/epoch-1\/metrics\.json/);
    assert.deepEqual(readdirSync(c.dir), [], "the command's own directory is left alone");
    assert.deepEqual(
      readdirSync(s.dir).filter((f) => f.includes(".tseal-tmp")),
      [],
      "no temporary directory stays next to DIR",
    );
    assertNoPlaintext(c.marker);
  });
});
