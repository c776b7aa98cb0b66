/**
 * `tensorseal exec` at its edges: SIGKILL of exec (the command and its children must not
 * outlive it, the plaintext must go), leftovers of a fully killed exec, the command's
 * environment (no key secrets, an allow-list the user extends), a missing or non-executable
 * command, and running without a terminal.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startTimeOf } from "../../src/engine/process-stamp.js";
import { CLI, type Sandbox, sandbox } from "./helpers.js";
import { alive, execGuardian, openPaths, start } from "./interrupt-helpers.js";

const hasShm = existsSync("/dev/shm");
const requireAll = process.env.TENSORSEAL_REQUIRE_ALL === "1";
const skip = !hasShm && !requireAll;

/** Polls until `cond` holds; fails after `ms` (a generous bound, not a speed requirement). */
async function until(cond: () => boolean, what: string, ms = 20_000, every = 50): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`${what} (waited ${ms / 1000} s)`);
    await sleep(every);
  }
}

/** Whether a non-empty regular file exists below `dir` (false when it vanished meanwhile). */
function holdsBytes(dir: string): boolean {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true }).some(
      (e) => e.isFile() && statSync(join(e.parentPath, e.name)).size > 0,
    );
  } catch {
    return false;
  }
}

/** The exec guardian serving `ramDir`: the process whose argv is [node, exec-guardian.js, ramDir]. */
const guardianOf = (ramDir: string) => execGuardian((argv) => argv[2] === ramDir);

/** Every exec a test started, so a failed test does not leave one running. */
const spawned: ChildProcess[] = [];
/** Every command (and its child) the sleepers started: a failed test must not leave them running
 * either (they hold the test's pipes open, and the test file would never end). */
const commands: { pid: number; start: string | null }[] = [];

interface Started {
  proc: ChildProcess;
  /** RAM dir, the command's pid, its background child's pid. */
  ready: Promise<{ ramDir: string; pid: number; grandchild: number }>;
  stderr: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** exec running `sh` that starts a background `sleep` (a grandchild of the guardian) and waits. */
function startSleeper(s: Sandbox, args: string[], env: NodeJS.ProcessEnv = {}): Started {
  const proc = spawn(
    process.execPath,
    [
      CLI,
      "exec",
      ...args,
      "--",
      "sh",
      "-c",
      'sleep 1000 & echo "READY $TENSORSEAL_MODEL $$ $!"; wait',
    ],
    { env: { ...s.env, ...env }, cwd: s.dir, stdio: ["ignore", "pipe", "pipe"] },
  );
  spawned.push(proc);
  let out = "";
  let err = "";
  proc.stderr!.on("data", (d) => {
    err += d;
  });
  const ready = new Promise<{ ramDir: string; pid: number; grandchild: number }>(
    (resolve, reject) => {
      proc.stdout!.on("data", (d) => {
        out += d;
        const m = /READY (\S+) (\d+) (\d+)/.exec(out);
        if (m) {
          for (const pid of [Number(m[2]), Number(m[3])])
            commands.push({ pid, start: startTimeOf(pid) });
          resolve({
            ramDir: dirname(dirname(m[1]!)),
            pid: Number(m[2]),
            grandchild: Number(m[3]),
          });
        }
      });
      proc.once("exit", () => reject(new Error(`exec ended before READY: ${out} ${err}`)));
    },
  );
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { proc, ready, stderr: () => err, done };
}

describe("exec edges", { skip }, () => {
  let s: Sandbox;
  let sealed: string;
  let base: string; // a private directory on /dev/shm, so other runs' leftovers do not interfere
  const ramDirs = () => readdirSync(base).filter((f) => f.startsWith("tensorseal-exec-"));
  /** exec of a sealed file running `sh` that leaves `proof` once it starts, then sleeps. */
  const execTouching = (sealedFile: string, proof: string) => {
    const run = start(s, [
      "exec",
      "-m",
      sealedFile,
      "--tmpfs",
      base,
      "--",
      "sh",
      "-c",
      `touch ${proof}; sleep 1000`,
    ]);
    spawned.push(run.child);
    return { proc: run.child, stderr: run.stderr, done: run.exited };
  };

  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    const r = s.run(["seal", "-", "-o", "-"], { input: randomBytes(200_000) });
    assert.equal(r.status, 0, r.stderr);
    sealed = join(s.dir, "llama-3-8b.Q4_K_M.gguf.tseal");
    writeFileSync(sealed, r.stdout);
    base = join("/dev/shm", `tensorseal-test-${process.pid}-${randomBytes(4).toString("hex")}`);
    mkdirSync(base, { mode: 0o700 });
  });
  after(async () => {
    for (const p of spawned.filter((p) => p.exitCode === null && p.signalCode === null)) {
      const exited = new Promise((resolve) => p.once("exit", resolve));
      p.kill("SIGTERM");
      await exited;
    }
    // Only a process that is still the one recorded (same start time): a pid may be reused.
    for (const c of commands) {
      if (c.start === null || startTimeOf(c.pid) !== c.start) continue;
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    s.cleanup();
    rmSync(base, { recursive: true, force: true });
  });

  test("SIGKILL of exec: the command and its child are killed and the plaintext wiped", {
    timeout: 60_000,
  }, async () => {
    const run = startSleeper(s, ["-m", sealed, "--tmpfs", base]);
    const { ramDir, pid, grandchild } = await run.ready;
    assert.ok(alive(pid) && alive(grandchild));
    assert.ok(existsSync(ramDir));
    run.proc.kill("SIGKILL");
    assert.equal((await run.done).signal, "SIGKILL");
    await until(() => !alive(pid) && !alive(grandchild), "the command and its child outlived exec");
    await until(() => !existsSync(ramDir), "the RAM directory outlived exec");
    await until(() => guardianOf(ramDir) === null, "the guardian did not exit");
  });

  test("SIGKILL while the model is being decrypted: the partial plaintext is wiped", {
    timeout: 120_000,
  }, async () => {
    const big = join(s.dir, "big.bin.tseal");
    const r = s.run(["seal", "-", "-o", "-"], { input: randomBytes(48 << 20) });
    assert.equal(r.status, 0, r.stderr);
    writeFileSync(big, r.stdout);
    const run = startSleeper(s, ["-m", big, "--tmpfs", base]);
    run.ready.catch(() => {}); // killed before READY, most likely
    // Kill as soon as any plaintext byte exists (mid-decryption, or right after it).
    let dir: string | null = null;
    await until(
      () => {
        dir = ramDirs().map((d) => join(base, d))[0] ?? null;
        return dir !== null && holdsBytes(dir);
      },
      "no plaintext appeared",
      60_000,
      2,
    );
    run.proc.kill("SIGKILL");
    await run.done;
    await until(() => !existsSync(dir!), "the partial plaintext outlived exec");
    await until(() => guardianOf(dir!) === null, "the guardian did not exit");
  });

  test("SIGINT while the model is being decrypted: exit 130 at once, nothing runs or stays", {
    timeout: 120_000,
  }, async () => {
    const big = join(s.dir, "big3.bin.tseal");
    writeFileSync(join(s.dir, "big3.bin"), Buffer.alloc(192 << 20, 3));
    assert.equal(s.run(["seal", join(s.dir, "big3.bin"), "-o", big]).status, 0);
    const proof = join(s.dir, "ran-after-sigint");
    const { proc, stderr, done } = execTouching(big, proof);
    // Mid-decryption for certain: exec holds the unfinished (anonymous) plaintext file open.
    await until(
      () => openPaths(proc.pid!, base).some((p) => p.path.endsWith(" (deleted)")),
      "decryption never seen in progress",
      60_000,
      2,
    );
    proc.kill("SIGINT");
    assert.equal(await done, 130, stderr());
    assert.doesNotMatch(stderr(), /\n\s+at /, "no stack trace");
    assert.equal(existsSync(proof), false, "the command must not start after the interrupt");
    await until(() => ramDirs().length === 0, "the RAM directory outlived exec");
  });

  test("the command exiting first takes its leftover children with it; its code passes", {
    timeout: 30_000,
  }, () => {
    const r = s.run([
      "exec",
      "-m",
      sealed,
      "--tmpfs",
      base,
      "--",
      "sh",
      "-c",
      `sleep 1000 >/dev/null 2>&1 & echo $! > ${join(s.dir, "straggler")}; exit 5`,
    ]);
    assert.equal(r.status, 5, r.stderr);
    const straggler = Number(readFileSync(join(s.dir, "straggler"), "utf8"));
    assert.equal(alive(straggler), false, "a background child kept running after exec");
    assert.deepEqual(ramDirs(), []);
  });

  test("Ctrl-C (SIGINT) reaches the whole command group, as from a terminal; SIGTERM the command only", {
    timeout: 60_000,
  }, async () => {
    // Records the signals it gets, says READY, and runs until one comes.
    const rec = join(s.dir, "rec.cjs");
    writeFileSync(
      rec,
      `const fs = require("fs");
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => { fs.writeFileSync(process.argv[2] + "." + sig, ""); process.exit(0); });
console.log("READY");
setInterval(() => {}, 1000);
`,
    );
    const marks = join(s.dir, "marks");
    const startWith = (script: string) => {
      const proc = spawn(
        process.execPath,
        [CLI, "exec", "-m", sealed, "--tmpfs", base, "--", "sh", "-c", script],
        { env: s.env, cwd: s.dir, stdio: ["ignore", "pipe", "pipe"] },
      );
      spawned.push(proc);
      const ready = new Promise<void>((resolve) =>
        proc.stdout!.on("data", (d) => String(d).includes("READY") && resolve()),
      );
      const done = new Promise<number | null>((resolve) => proc.once("exit", resolve));
      return { proc, ready, done };
    };
    // The runtime is a child of a wrapper script (a launcher that does not `exec`).
    let run = startWith(`${process.execPath} ${rec} ${marks}; exit 7`);
    await run.ready;
    run.proc.kill("SIGINT");
    await run.done;
    assert.ok(existsSync(`${marks}.SIGINT`), "Ctrl-C did not reach the runtime under the wrapper");

    run = startWith(`trap "exit 9" TERM; ${process.execPath} ${rec} ${marks} & wait`);
    await run.ready;
    run.proc.kill("SIGTERM");
    assert.equal(await run.done, 9, "the wrapper's own TERM handling decides");
    assert.equal(existsSync(`${marks}.SIGTERM`), false, "SIGTERM went past the command");
    assert.deepEqual(ramDirs(), []);
  });

  test("a killed guardian: exec stops the command, wipes, and exits 1 with one line", {
    timeout: 60_000,
  }, async () => {
    const run = startSleeper(s, ["-m", sealed, "--tmpfs", base]);
    const { ramDir, pid, grandchild } = await run.ready;
    const guardian = guardianOf(ramDir);
    assert.ok(guardian, "no guardian process found");
    process.kill(guardian, "SIGKILL");
    const { code } = await run.done;
    assert.equal(code, 1);
    assert.match(run.stderr(), /^tensorseal: error: the exec guardian process died.*\n$/);
    await until(() => !alive(pid) && !alive(grandchild), "the command outlived its guardian");
    assert.equal(existsSync(ramDir), false);
  });

  test("a guardian killed while the model is being decrypted: exit 1, nothing runs or stays", {
    timeout: 120_000,
  }, async () => {
    const big = join(s.dir, "big2.bin.tseal");
    const r = s.run(["seal", "-", "-o", "-"], { input: randomBytes(48 << 20) });
    writeFileSync(big, r.stdout);
    const proof = join(s.dir, "ran-after-guardian-death");
    const { stderr, done } = execTouching(big, proof);
    let guardian: number | null = null;
    await until(
      () => {
        const dir = ramDirs()[0];
        guardian = dir ? guardianOf(join(base, dir)) : null;
        return guardian !== null;
      },
      "no guardian appeared",
      60_000,
      2,
    );
    process.kill(guardian!, "SIGKILL");
    assert.equal(await done, 1, stderr());
    assert.match(stderr(), /^tensorseal: error: the exec guardian process died; .*\n$/);
    assert.deepEqual(ramDirs(), []);
    if (existsSync(proof)) {
      // The command had started before the guardian died: it must have been stopped.
      await until(() => !execSync("ps -eo args").toString().includes(proof), "command survived");
    }
  });

  test("exec and guardian both SIGKILLed: the next exec removes the leftover and says so", {
    timeout: 60_000,
  }, async () => {
    // A live exec's directory next to the leftover must survive the sweep.
    const live = startSleeper(s, ["-m", sealed, "--tmpfs", base]);
    const liveDir = (await live.ready).ramDir;
    const run = startSleeper(s, ["-m", sealed, "--tmpfs", base]);
    const { ramDir, pid } = await run.ready;
    const guardian = guardianOf(ramDir);
    assert.ok(guardian);
    run.proc.kill("SIGSTOP"); // it must not see its guardian die: both go at once
    process.kill(guardian, "SIGKILL");
    run.proc.kill("SIGKILL");
    await run.done;
    process.kill(-pid, "SIGKILL"); // nobody is left to stop the command; the test does
    await until(() => guardianOf(ramDir) === null, "guardian still there");
    assert.ok(existsSync(ramDir), "precondition: the plaintext is left behind");

    const r = s.run(["exec", "-m", sealed, "--tmpfs", base, "--", "true"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(existsSync(ramDir), false, "the dead exec's plaintext is still there");
    assert.match(
      r.stderr,
      new RegExp(`tensorseal: removed ${ramDir}, the plaintext of an exec that was killed`),
    );
    assert.ok(existsSync(liveDir), "a live exec's directory was removed");
    live.proc.kill("SIGTERM");
    assert.equal((await live.done).code, 143);
    assert.deepEqual(ramDirs(), []);
  });

  test("the RAM directory and the plaintext are named after the model", {
    timeout: 30_000,
  }, () => {
    const model = join(s.dir, "Llama-3-8B");
    mkdirSync(model);
    writeFileSync(join(model, "config.json"), "{}");
    const out = join(s.dir, "Llama-3-8B.sealed");
    assert.equal(s.run(["seal-dir", model, "-o", out]).status, 0);
    const r = s.run([
      "exec",
      "-m",
      sealed,
      "-m",
      `${out}:llm`,
      "--tmpfs",
      base,
      "--",
      "sh",
      "-c",
      'echo "{model} {llm}"; test -f {llm}/config.json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const [first, llm] = r.stdout.toString().trim().split(" ") as [string, string];
    assert.match(
      basename(dirname(dirname(first))),
      /^tensorseal-exec-llama-3-8b\.Q4_K_M\.gguf-\d+-\d+-\d+-[A-Za-z0-9]{6}$/,
    );
    assert.equal(basename(first), "llama-3-8b.Q4_K_M.gguf");
    assert.equal(basename(llm), "Llama-3-8B", "a sealed directory opens without .sealed");
  });

  test("a missing command: exit 127, one line, checked before any key is used or file created", () => {
    // A file no key of this sandbox opens: were it opened first, the exit would be 4 (no key).
    const id = join(s.dir, "other-id.txt");
    const recipient = JSON.parse(s.run(["keygen", "-o", id, "--json"]).stdout.toString()).recipient;
    const other = join(s.dir, "other.tseal");
    writeFileSync(other, s.run(["seal", "-", "-o", "-", "-r", recipient], { input: "x" }).stdout);
    const r = s.run(["exec", "-m", other, "--tmpfs", base, "--", "no-such-runtime-xyz", "-m"]);
    assert.equal(r.status, 127);
    assert.equal(r.stderr, "tensorseal: error: cannot run no-such-runtime-xyz: not found\n");
    assert.deepEqual(ramDirs(), []);
    const p = s.run(["exec", "-m", sealed, "--tmpfs", base, "--", join(s.dir, "nope", "x")]);
    assert.equal(p.status, 127);
    assert.equal(
      p.stderr,
      `tensorseal: error: cannot run ${join(s.dir, "nope", "x")}: not found\n`,
    );
    // A program named by {model} exists only once opened: the start itself reports it.
    const t = s.run(["exec", "-m", sealed, "--tmpfs", base, "--", "{model}"]);
    assert.equal(t.status, 126, t.stderr);
    assert.match(
      t.stderr,
      /^tensorseal: error: cannot run \S+llama-3-8b\.Q4_K_M\.gguf: permission denied\n$/,
    );
    assert.deepEqual(ramDirs(), []);
  });

  test("a non-executable file or a directory: exit 126, one line", () => {
    const script = join(s.dir, "run.sh");
    writeFileSync(script, "#!/bin/sh\nexit 0\n");
    chmodSync(script, 0o644);
    let r = s.run(["exec", "-m", sealed, "--tmpfs", base, "--", script]);
    assert.equal(r.status, 126, r.stderr);
    assert.equal(r.stderr, `tensorseal: error: cannot run ${script}: permission denied\n`);
    r = s.run(["exec", "-m", sealed, "--tmpfs", base, "--", s.dir]);
    assert.equal(r.status, 126, r.stderr);
    assert.match(r.stderr, /is a directory\n$/);
    chmodSync(script, 0o755);
    r = s.run(["exec", "-m", sealed, "--tmpfs", base, "--", script]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(ramDirs(), []);
  });

  test("no key secret reaches the command or the guardian; allowed and named variables do", {
    timeout: 60_000,
  }, async () => {
    const secrets: Record<string, string> = {
      TENSORSEAL_PKCS11_PIN: "pin-1234-secret",
      TENSORSEAL_PKCS11_PIN_FILE: join(s.dir, "pin-file-secret"),
      TENSORSEAL_SERVER_TOKEN: "tok-secret-abc",
      TENSORSEAL_SERVER_TOKEN_FILE: join(s.dir, "token-file-secret"),
      TENSORSEAL_SERVER_KEY: join(s.dir, "client-key-secret.pem"),
      TENSORSEAL_KEYSTORE_PASSPHRASE: "ks-pass-secret",
      TENSORSEAL_PASSPHRASE: "file-pass-secret",
      TENSORSEAL_NEW_KEYSTORE_PASSPHRASE: "new-pass-secret",
      TENSORSEAL_SERVICE_ROOT_KEY_FILE: join(s.dir, "service-root-secret"),
      TENSORSEAL_SERVICE_DB: "postgres://u:dbpass-secret@h/db",
      AWS_SECRET_ACCESS_KEY: "aws-secret-key-secret",
      AWS_SESSION_TOKEN: "aws-session-secret",
      AWS_ACCESS_KEY_ID: "AKIA-secret-id",
      AWS_WEB_IDENTITY_TOKEN_FILE: join(s.dir, "web-identity-secret"),
      AWS_CONTAINER_AUTHORIZATION_TOKEN: "container-auth-secret",
    };
    const allowed: Record<string, string> = {
      LANG: "C.UTF-8",
      LC_ALL: "C.UTF-8",
      CUDA_VISIBLE_DEVICES: "0,1",
      HF_HOME: "/hf-home",
      PYTHONPATH: "/py",
      OMP_NUM_THREADS: "4",
    };
    const extra = { HF_TOKEN: "hf-token-value", MY_SETTING: "mine", WANDB_API_KEY: "wandb-value" };
    const env = { ...secrets, ...allowed, ...extra };
    const rootKeyFile = s.env.TENSORSEAL_ROOT_KEY_FILE!;
    const dump = join(s.dir, "env-dump");
    const args = (more: string[]) => [
      "exec",
      "-m",
      sealed,
      "--tmpfs",
      base,
      ...more,
      "--",
      "sh",
      "-c",
      `env > ${dump}`,
    ];

    // Defaults: allowed variables pass; secrets, HF_TOKEN and unlisted ones do not.
    let r = s.run(args([]), { env });
    assert.equal(r.status, 0, r.stderr);
    let seen = readFileSync(dump, "utf8");
    for (const [k, v] of Object.entries(allowed)) assert.ok(seen.includes(`${k}=${v}\n`), k);
    for (const k of ["HF_TOKEN", "MY_SETTING", "WANDB_API_KEY", "TENSORSEAL_ROOT_KEY_FILE"]) {
      assert.equal(seen.includes(`${k}=`), false, `${k} reached the command`);
    }
    assert.equal(r.stderr, "", "nothing to warn about with the defaults");

    // Broad user patterns still never pass a key secret; secret-looking names need their name.
    r = s.run(
      args(["--env", "*", "--env", "TENSORSEAL_*", "--env", "AWS_*", "--env", "HF_TOKEN"]),
      {
        env,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    seen = readFileSync(dump, "utf8");
    for (const [k, v] of Object.entries(secrets)) {
      assert.equal(seen.includes(k), false, `${k} reached the command`);
      assert.equal(seen.includes(v), false, `the value of ${k} reached the command`);
    }
    assert.equal(seen.includes(rootKeyFile), false, "the root key file path reached the command");
    assert.ok(seen.includes("HF_TOKEN=hf-token-value\n"), "a named variable must pass");
    assert.ok(seen.includes("MY_SETTING=mine\n"), "a variable matched by a user pattern passes");
    assert.equal(seen.includes("WANDB_API_KEY"), false, "a secret-looking name needs its name");
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 2, r.stderr);
    assert.match(
      lines[0]!,
      /^tensorseal: warning: not passing .*AWS_SECRET_ACCESS_KEY.*unlock keys$/,
    );
    assert.match(lines[0]!, /TENSORSEAL_PKCS11_PIN\b/);
    assert.match(lines[1]!, /WANDB_API_KEY/);
    for (const v of Object.values(env))
      assert.equal(r.stderr.includes(v), false, "a value printed");

    // Naming a key secret is refused before anything runs.
    for (const name of [
      "TENSORSEAL_PKCS11_PIN",
      "AWS_SECRET_ACCESS_KEY",
      "TENSORSEAL_ROOT_KEY_FILE",
    ]) {
      rmSync(dump, { force: true });
      r = s.run(args(["--env", name]), { env });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`--env ${name}: this variable unlocks keys`));
      assert.equal(existsSync(dump), false);
    }

    // The guardian runs with an empty environment, and its command line holds only the dir.
    const run = startSleeper(s, ["-m", sealed, "--tmpfs", base], env);
    const { ramDir } = await run.ready;
    const guardian = guardianOf(ramDir)!;
    const environ = readFileSync(`/proc/${guardian}/environ`, "utf8").split("\0");
    // Only node's own IPC settings (node removes them from process.env at start-up).
    assert.deepEqual(
      environ.filter((e) => e !== "" && !e.startsWith("NODE_CHANNEL_")),
      [],
      "the guardian has an environment",
    );
    run.proc.kill("SIGTERM");
    await run.done;
  });

  test("works without a terminal: new session, stdin a pipe, no controlling tty", {
    skip: !existsSync("/usr/bin/setsid") && !requireAll,
  }, () => {
    const r = spawnSync(
      "setsid",
      [
        "-w",
        process.execPath,
        CLI,
        "exec",
        "-m",
        sealed,
        "--tmpfs",
        base,
        "--",
        "sh",
        "-c",
        'test ! -t 0 && ! (: </dev/tty) 2>/dev/null && read line && echo "got $line" && test -s "$TENSORSEAL_MODEL"',
      ],
      { env: s.env, cwd: s.dir, input: "hello\n" },
    );
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(r.stdout.toString(), "got hello\n");
    assert.deepEqual(ramDirs(), []);
  });
});
