import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { mkdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { describe, test } from "node:test";
import { mayBeAlive, selfStamp, startTimeOf } from "../../src/engine/process-stamp.js";
import { printable } from "../../src/format/printable.js";
import { parseModelSpec, substitute } from "../../src/integrations/exec.js";
import { ExecError, resolveCommand } from "../../src/integrations/exec-command.js";
import {
  childEnv,
  DEFAULT_ENV_ALLOW,
  looksSecret,
  unlocksKeys,
} from "../../src/integrations/exec-env.js";
import {
  checkRamFs,
  createRamDir,
  modelLabel,
  plaintextName,
  ramDirOwner,
  wipeDirSync,
} from "../../src/integrations/ram-dir.js";
import { sweepStaleRamDirs } from "../../src/integrations/ram-dir-sweep.js";
import { errorOf, tempDir } from "./helpers.js";

const hasShm = existsSync("/dev/shm");
/** In CI (TENSORSEAL_REQUIRE_ALL=1) a missing precondition fails instead of skipping. */
const requireAll = process.env.TENSORSEAL_REQUIRE_ALL === "1";

describe("exec building blocks", () => {
  test("parseModelSpec splits an optional :NAME", () => {
    assert.deepEqual(parseModelSpec("a/b.tseal"), { path: "a/b.tseal" });
    assert.deepEqual(parseModelSpec("a/b.tseal:llm"), { path: "a/b.tseal", name: "llm" });
    assert.deepEqual(parseModelSpec("c:/x.tseal"), { path: "c:/x.tseal" });
    assert.deepEqual(parseModelSpec("x:bad-name"), { path: "x:bad-name" });
  });

  test("substitute replaces known tokens only", () => {
    const paths = new Map([
      ["model", "/shm/a"],
      ["llm", "/shm/b"],
    ]);
    assert.deepEqual(
      substitute(["-m", "{model}", "--x={llm},{model}", "{other}", '{"k":1}'], paths),
      ["-m", "/shm/a", "--x=/shm/b,/shm/a", "{other}", '{"k":1}'],
    );
  });

  test("a disk directory is refused as a plaintext location; nothing is created", async (t) => {
    const dir = tempDir(t); // os.tmpdir(): on a disk in CI and here; skip if it is tmpfs
    if (
      await checkRamFs(dir).then(
        () => true,
        () => false,
      )
    ) {
      assert.ok(
        !requireAll,
        "TENSORSEAL_REQUIRE_ALL=1 but os.tmpdir() is a tmpfs: no disk dir to refuse",
      );
      t.skip("os.tmpdir() is itself a tmpfs here");
      return;
    }
    const e = await errorOf(createRamDir(dir));
    assert.equal(e.code, "E_UNSUPPORTED");
    assert.match(e.message, /not a tmpfs/);
    assert.match(e.message, /--tmpfs/);
    const missing = await errorOf(createRamDir(join(dir, "nope")));
    assert.equal(missing.code, "E_IO");
  });

  test("createRamDir makes a 0700 directory on tmpfs; wipe zeroes files before unlinking", {
    skip: !hasShm && !requireAll,
  }, async () => {
    const dir = await createRamDir();
    try {
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      await mkdir(join(dir, "sub"));
      const file = join(dir, "sub", "w.bin");
      writeFileSync(file, Buffer.alloc(3 << 20, 0xab), { mode: 0o600 });
      const fd = openSync(file, "r"); // another reader holding the inode open
      try {
        assert.deepEqual(wipeDirSync(dir), []);
        assert.equal(existsSync(dir), false);
        const seen = Buffer.alloc(3 << 20);
        readSync(fd, seen, 0, seen.length, 0);
        assert.equal(seen.indexOf(0xab), -1, "the open inode must hold only zeros");
      } finally {
        closeSync(fd);
      }
    } finally {
      wipeDirSync(dir);
    }
  });
});

/** Every variable that unlocks keys in TensorSeal (docs/CLI.md, Environment) or AWS. */
const KEY_SECRETS = [
  "TENSORSEAL_ROOT_KEY_FILE",
  "TENSORSEAL_KEYSTORE_PASSPHRASE",
  "TENSORSEAL_NEW_KEYSTORE_PASSPHRASE",
  "TENSORSEAL_PASSPHRASE",
  "TENSORSEAL_PKCS11_PIN",
  "TENSORSEAL_PKCS11_PIN_FILE",
  "TENSORSEAL_SERVER_TOKEN",
  "TENSORSEAL_SERVER_TOKEN_FILE",
  "TENSORSEAL_SERVER_KEY",
  "TENSORSEAL_SERVICE_ROOT_KEY_FILE",
  "TENSORSEAL_SERVICE_DB",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_ACCESS_KEY_ID",
  "AWS_SESSION_TOKEN",
  "AWS_SECURITY_TOKEN",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "AWS_SHARED_CREDENTIALS_FILE",
];

describe("exec environment", () => {
  const secrets = Object.fromEntries(KEY_SECRETS.map((k) => [k, `value-of-${k}`]));

  test("no key secret passes, not even through '*' or a prefix pattern; each is reported", () => {
    for (const k of KEY_SECRETS) assert.ok(unlocksKeys(k), k);
    const r = childEnv({ ...secrets, PATH: "/bin" }, ["*", "TENSORSEAL_*", "AWS_*"]);
    assert.deepEqual(r.env, { PATH: "/bin" });
    assert.deepEqual([...r.droppedKeySecrets].sort(), [...KEY_SECRETS].sort());
    // Default patterns never match them, so the defaults drop them without a warning.
    assert.deepEqual(childEnv(secrets, []).droppedKeySecrets, []);
  });

  test("naming a key secret is refused with one line", async () => {
    for (const k of KEY_SECRETS) {
      const e = await errorOf(() => childEnv({}, [k]));
      assert.equal(e.code, "E_USAGE");
      assert.match(e.message, new RegExp(`^--env ${k}: this variable unlocks keys`));
    }
    const bad = await errorOf(() => childEnv({}, ["A=B"]));
    assert.match(bad.message, /expected a variable name or a pattern/);
  });

  test("the defaults pass runtime settings and drop everything else", () => {
    const parent = {
      PATH: "/bin",
      HOME: "/home/u",
      LANG: "C",
      LC_ALL: "C",
      TERM: "xterm",
      TZ: "UTC",
      TMPDIR: "/tmp",
      CUDA_VISIBLE_DEVICES: "0",
      NVIDIA_VISIBLE_DEVICES: "all",
      HF_HOME: "/hf",
      PYTHONPATH: "/py",
      OMP_NUM_THREADS: "2",
      VLLM_WORKER_MULTIPROC_METHOD: "spawn",
      TOKENIZERS_PARALLELISM: "false",
      HF_TOKEN: "t",
      HUGGING_FACE_HUB_TOKEN: "t",
      VLLM_API_KEY: "k",
      DATABASE_URL: "postgres://x",
      GITHUB_TOKEN: "g",
      TF_VAR_password: "p",
      TENSORSEAL_HOME: "/ts",
      TENSORSEAL_SERVER: "https://kms",
      TENSORSEAL_MODEL: "/outer-exec",
      NODE_OPTIONS: "--require x",
      LD_PRELOAD: "/evil.so",
    };
    assert.deepEqual(Object.keys(childEnv(parent, []).env).sort(), [
      "CUDA_VISIBLE_DEVICES",
      "HF_HOME",
      "HOME",
      "LANG",
      "LC_ALL",
      "NVIDIA_VISIBLE_DEVICES",
      "OMP_NUM_THREADS",
      "PATH",
      "PYTHONPATH",
      "TERM",
      "TMPDIR",
      "TOKENIZERS_PARALLELISM",
      "TZ",
      "VLLM_WORKER_MULTIPROC_METHOD",
    ]);
  });

  test("users extend it by name or pattern; secret-looking names need their exact name", () => {
    const parent = {
      HF_TOKEN: "t",
      WANDB_API_KEY: "k",
      WANDB_PROJECT: "p",
      TENSORSEAL_SERVER: "https://kms",
      MY_FLAG: "1",
    };
    const r = childEnv(parent, ["WANDB_*", "MY_FLAG", "HF_TOKEN", "TENSORSEAL_SERVER"]);
    assert.deepEqual(r.env, {
      HF_TOKEN: "t",
      WANDB_PROJECT: "p",
      TENSORSEAL_SERVER: "https://kms",
      MY_FLAG: "1",
    });
    assert.deepEqual(r.droppedSecretLooking, ["WANDB_API_KEY"]);
    assert.deepEqual(childEnv(parent, ["WANDB_API_KEY"]).env, { WANDB_API_KEY: "k" });
  });

  test("secret words are whole words", () => {
    for (const n of ["HF_TOKEN", "AWS_SESSION_TOKEN", "DB_PASSWORD", "X_API_KEY", "PIN"]) {
      assert.ok(looksSecret(n), n);
    }
    for (const n of ["TOKENIZERS_PARALLELISM", "KEYBOARD", "PINNED_MEMORY", "PATH"]) {
      assert.equal(looksSecret(n), false, n);
    }
    for (const p of DEFAULT_ENV_ALLOW) assert.equal(looksSecret(p), false, p);
  });
});

describe("exec command lookup", () => {
  test("PATH search like execvp: first executable wins, 127 when none, 126 when not runnable", (t) => {
    const dir = tempDir(t);
    const [a, b] = [join(dir, "a"), join(dir, "b")];
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(join(a, "tool"), "#!/bin/sh\n", { mode: 0o644 });
    writeFileSync(join(b, "tool"), "#!/bin/sh\n", { mode: 0o755 });
    assert.equal(resolveCommand("tool", `${a}:${b}`), join(b, "tool"));
    const noExec = catchExec(() => resolveCommand("tool", a));
    assert.deepEqual(
      [noExec.exitCode, noExec.message],
      [126, "cannot run tool: permission denied"],
    );
    const missing = catchExec(() => resolveCommand("nope", `${a}:${b}`));
    assert.deepEqual([missing.exitCode, missing.message], [127, "cannot run nope: not found"]);
    assert.equal(catchExec(() => resolveCommand(a, "")).exitCode, 126); // a directory
    assert.equal(catchExec(() => resolveCommand("", a)).exitCode, 127);
    symlinkSync(join(dir, "gone"), join(b, "dangling"));
    assert.equal(catchExec(() => resolveCommand("dangling", b)).exitCode, 127);
    chmodSync(join(a, "tool"), 0o755);
    assert.equal(resolveCommand("tool", `${a}:${b}`), join(a, "tool"));
  });

  test("names are printed with control characters escaped", () => {
    const e = catchExec(() => resolveCommand("evil\u001b[2J\u009b\u202e", "/nonexistent"));
    assert.equal(e.message, "cannot run evil\\x1b[2J\\x9b\\u202e: not found");
    assert.equal(printable("plain-name_1.0"), "plain-name_1.0");
  });
});

function catchExec(fn: () => unknown): ExecError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ExecError) return e;
    throw e;
  }
  throw new Error("expected an ExecError");
}

describe("exec RAM directory names and leftovers", () => {
  test("the plaintext and the directory are named after the model", () => {
    assert.equal(plaintextName("/m/llama-3-8b.Q4_K_M.gguf.tseal"), "llama-3-8b.Q4_K_M.gguf");
    assert.equal(plaintextName("/m/Llama-3-8B.sealed"), "Llama-3-8B");
    assert.equal(plaintextName("/m/Llama-3-8B.sealed/"), "Llama-3-8B");
    assert.equal(plaintextName("/m/hf-dir"), "hf-dir");
    assert.equal(plaintextName(".."), "model");
    assert.equal(plaintextName(".tseal"), "model");
    assert.equal(modelLabel("/m/My Model (v2)\n.sealed"), "My_Model__v2__");
    assert.equal(modelLabel("/m/...hidden.tseal"), "hidden");
    assert.equal(modelLabel(`/m/${"x".repeat(300)}.tseal`).length, 64);
  });

  test("a directory's name carries its owner: pid, start time, pid namespace", {
    skip: !hasShm && !requireAll,
  }, async () => {
    const dir = await createRamDir("/dev/shm", "llama");
    try {
      const name = basename(dir);
      assert.match(name, /^tensorseal-exec-llama-\d+-\d+-\d+-[A-Za-z0-9]{6}$/);
      assert.deepEqual(ramDirOwner(name), selfStamp());
      assert.equal(ramDirOwner("tensorseal-exec-123-abcdef"), null, "an older name is not ours");
    } finally {
      wipeDirSync(dir);
    }
  });

  test("mayBeAlive: only a certainly dead owner is dead", () => {
    const me = selfStamp();
    if (!me) return; // not Linux: nothing is ever judged dead
    assert.equal(mayBeAlive(me), true);
    assert.equal(mayBeAlive({ ...me, start: String(Number(me.start) + 1) }), false, "pid reused");
    assert.equal(mayBeAlive({ ...me, ns: "1" }), true, "another pid namespace cannot be judged");
    const done = spawnSync("true");
    assert.equal(startTimeOf(done.pid!), null, "an exited process");
  });

  test("the sweep removes dead owners' directories only", {
    skip: !hasShm && !requireAll,
  }, async (t) => {
    const me = selfStamp();
    if (!me) return t.skip("no /proc");
    const base = join("/dev/shm", `tensorseal-sweep-test-${process.pid}`);
    mkdirSync(base, { mode: 0o700 });
    t.after(() => rmSync(base, { recursive: true, force: true }));
    const sleeper = spawn("sleep", ["1000"]);
    t.after(() => sleeper.kill("SIGKILL"));
    const other = { pid: sleeper.pid!, start: startTimeOf(sleeper.pid!)!, ns: me.ns };
    const exited = spawnSync("true").pid!;
    const name = (o: { pid: number; start: string; ns: string }, tag: string) =>
      `tensorseal-exec-m-${o.pid}-${o.start}-${o.ns}-${tag}`;
    const dirs = {
      mine: name(me, "aaaaaa"),
      liveOther: name(other, "bbbbbb"),
      otherNs: name({ ...me, pid: exited, ns: "1" }, "cccccc"),
      dead: name({ pid: exited, start: "12345", ns: me.ns }, "dddddd"),
      reused: name({ ...other, start: String(Number(other.start) + 1) }, "eeeeee"),
      foreign: "tensorseal-exec-notours",
    };
    for (const d of Object.values(dirs)) {
      mkdirSync(join(base, d, "m0"), { recursive: true });
      writeFileSync(join(base, d, "m0", "w.bin"), "plaintext");
    }
    writeFileSync(join(base, name({ pid: exited, start: "1", ns: me.ns }, "ffffff")), "a file");
    const swept = sweepStaleRamDirs(base);
    assert.deepEqual(swept.map((s) => basename(s.path)).sort(), [dirs.dead, dirs.reused].sort());
    assert.ok(swept.every((s) => s.left.length === 0));
    for (const d of [dirs.mine, dirs.liveOther, dirs.otherNs, dirs.foreign]) {
      assert.ok(existsSync(join(base, d, "m0", "w.bin")), `${d} must stay`);
    }
    assert.equal(existsSync(join(base, dirs.dead)), false);
  });
});
