import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CLI, type Sandbox, sandbox } from "./helpers.js";

/** Every regular file under `root` (up to 64 MiB each) that contains `needle`. */
function filesContaining(root: string, needle: Buffer): string[] {
  const hits: string[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(dir, name);
      try {
        const st = lstatSync(p);
        if (st.isDirectory()) walk(p);
        else if (st.isFile() && st.size <= 64 << 20 && readFileSync(p).includes(needle))
          hits.push(p);
      } catch {
        // vanished or unreadable: not ours
      }
    }
  };
  walk(root);
  return hits;
}

const shmDirs = () =>
  existsSync("/dev/shm")
    ? readdirSync("/dev/shm").filter((f) => f.startsWith("tensorseal-exec-"))
    : [];

/** The child: checks the digest of {model}, reports READY, exits with the code read on stdin. */
const CHILD = `
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
const [path, digest, proof] = process.argv.slice(2);
const got = createHash("sha256").update(readFileSync(path)).digest("hex");
if (got !== digest) { console.log("BAD DIGEST"); process.exit(9); }
if (process.env.TENSORSEAL_MODEL !== path) { console.log("BAD ENV"); process.exit(8); }
if (process.env.TENSORSEAL_ROOT_KEY_FILE !== undefined) { console.log("KEY LEAKED"); process.exit(7); }
process.on("SIGTERM", () => {
  writeFileSync(proof, "got SIGTERM");
  process.removeAllListeners("SIGTERM");
  process.kill(process.pid, "SIGTERM");
});
process.stdin.on("data", (d) => process.exit(Number(String(d).trim())));
console.log("READY " + path);
`;

interface Running {
  proc: ChildProcess;
  ready: Promise<string>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>;
}

function startExec(s: Sandbox, args: string[]): Running {
  const proc = spawn(process.execPath, [CLI, ...args], { env: s.env, cwd: s.dir });
  let stdout = "";
  let stderr = "";
  proc.stderr!.on("data", (d) => {
    stderr += d;
  });
  const ready = new Promise<string>((resolve, reject) => {
    proc.stdout!.on("data", (d) => {
      stdout += d;
      const m = /READY (\S+)/.exec(stdout);
      if (m) resolve(m[1]!);
    });
    proc.once("exit", () => reject(new Error(`exited before READY: ${stdout} ${stderr}`)));
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>(
    (resolve) => proc.once("exit", (code, signal) => resolve({ code, signal, stdout })),
  );
  return { proc, ready, done };
}

describe("CLI integrations", () => {
  let s: Sandbox;
  const marker = randomBytes(64);
  const weights = Buffer.concat([randomBytes(300_000), marker, randomBytes(5000)]);
  const digest = createHash("sha256").update(weights).digest("hex");
  let sealed: string;
  let child: string;
  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    // Sealed from stdin to stdout: the plaintext never touches the disk in this test.
    const r = s.run(["seal", "-", "-o", "-"], { input: weights });
    assert.equal(r.status, 0, r.stderr);
    sealed = join(s.dir, "weights.bin.tseal");
    writeFileSync(sealed, r.stdout);
    child = join(s.dir, "child.mjs");
    writeFileSync(child, CHILD);
  });
  after(() => s.cleanup());

  test("inspect --tensors lists names, dtypes and shapes from the decrypted header", () => {
    const header = JSON.stringify({
      __metadata__: { format: "pt" },
      "lm_head.weight": { dtype: "BF16", shape: [4, 2], data_offsets: [0, 16] },
      "model.norm.weight": { dtype: "F32", shape: [2], data_offsets: [16, 24] },
    });
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(header.length));
    const file = join(s.dir, "m.safetensors");
    writeFileSync(file, Buffer.concat([n, Buffer.from(header), randomBytes(24)]));
    const id = join(s.dir, "st-id.txt");
    const recipient = JSON.parse(s.run(["keygen", "-o", id, "--json"]).stdout.toString()).recipient;
    assert.equal(s.run(["seal", file, "-o", `${file}.tseal`]).status, 0);
    assert.equal(s.run(["seal", file, "-o", `${file}.x.tseal`, "-r", recipient]).status, 0);
    let r = s.run(["inspect", `${file}.tseal`, "--tensors", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.toString()).tensors, [
      { name: "lm_head.weight", dtype: "BF16", shape: [4, 2], byteLength: 16 },
      { name: "model.norm.weight", dtype: "F32", shape: [2], byteLength: 8 },
    ]);
    r = s.run(["inspect", `${file}.x.tseal`, "--tensors", "-i", id]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.toString(), /lm_head\.weight\s+BF16\s+\[4, 2\]/);
    // Names are secret: without a key there is no listing, and the ciphertext does not show them.
    r = s.run(["inspect", `${file}.x.tseal`, "--tensors"]);
    assert.equal(r.status, 4, r.stderr);
    assert.equal(readFileSync(`${file}.x.tseal`).includes(Buffer.from("lm_head")), false);
    // A sealed file that is not safetensors is a format error, not a crash.
    r = s.run(["inspect", sealed, "--tensors"]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /safetensors/);
  });

  test("exec: the child reads the weights by path; no plaintext outside the RAM dir; wiped after", {
    timeout: 30_000,
  }, async () => {
    const before = shmDirs();
    const run = startExec(s, [
      "exec",
      "-m",
      sealed,
      "--",
      process.execPath,
      child,
      "{model}",
      digest,
      join(s.dir, "proof"),
    ]);
    const path = await run.ready;
    assert.match(
      path,
      /^\/dev\/shm\/tensorseal-exec-weights\.bin-\d+-\d+-\d+-[A-Za-z0-9]{6}\/m0\/weights\.bin$/,
    );
    assert.equal(statSync(dirname(dirname(path))).mode & 0o777, 0o700);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(filesContaining(s.dir, marker), []);
    assert.deepEqual(filesContaining(tmpdir(), marker), []);
    assert.deepEqual(filesContaining("/dev/shm", marker), [path], "only the RAM copy exists");
    run.proc.stdin!.write("3\n");
    const { code } = await run.done;
    assert.equal(code, 3, "the child's exit code is passed through");
    assert.equal(existsSync(dirname(dirname(path))), false);
    assert.deepEqual(shmDirs(), before);
    assert.deepEqual(filesContaining("/dev/shm", marker), []);
    assert.deepEqual(filesContaining(s.dir, marker), []);
  });

  test("exec: SIGTERM to tensorseal reaches the child, plaintext is wiped, exit code 143", {
    timeout: 30_000,
  }, async () => {
    const proof = join(s.dir, "sigterm-proof");
    const run = startExec(s, [
      "exec",
      "-m",
      `${sealed}:weights`,
      "--",
      process.execPath,
      child,
      "{weights}",
      digest,
      proof,
    ]);
    const path = await run.ready;
    run.proc.kill("SIGTERM");
    const { code, signal } = await run.done;
    assert.equal(signal, null, "tensorseal itself must not die of the signal");
    assert.equal(code, 143);
    assert.equal(readFileSync(proof, "utf8"), "got SIGTERM");
    assert.equal(existsSync(dirname(dirname(path))), false);
    assert.deepEqual(filesContaining("/dev/shm", marker), []);
  });

  test("exec: 128+N when the child dies of signal N; env names; exit 0", () => {
    let r = s.run(["exec", "-m", sealed, "--", "sh", "-c", "kill -KILL $$"]);
    assert.equal(r.status, 137, r.stderr);
    r = s.run([
      "exec",
      "-m",
      `${sealed}:w1`,
      "--",
      "sh",
      "-c",
      'test "$TENSORSEAL_MODEL_W1" = "{w1}" && test "$TENSORSEAL_MODEL" = "{model}" && test -s {w1}',
    ]);
    assert.equal(r.status, 0, r.stderr);
  });

  test("exec refuses a disk directory for plaintext and runs nothing", () => {
    const before = shmDirs();
    const ran = join(s.dir, "ran");
    const r = s.run(["exec", "-m", sealed, "--tmpfs", s.dir, "--", "touch", ran]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /not a tmpfs/);
    assert.equal(existsSync(ran), false);
    assert.deepEqual(filesContaining(s.dir, marker), []);
    assert.deepEqual(shmDirs(), before);
  });

  test("exec with a key that does not open the file runs nothing and leaves no RAM dir", () => {
    const id = join(s.dir, "exec-id.txt");
    const recipient = JSON.parse(s.run(["keygen", "-o", id, "--json"]).stdout.toString()).recipient;
    const other = join(s.dir, "other.tseal");
    const r0 = s.run(["seal", "-", "-o", "-", "-r", recipient], { input: weights });
    writeFileSync(other, r0.stdout);
    const before = shmDirs();
    const ran = join(s.dir, "ran2");
    const r = s.run(["exec", "-m", other, "--", "touch", ran]);
    assert.equal(r.status, 4, r.stderr);
    assert.equal(existsSync(ran), false);
    assert.deepEqual(shmDirs(), before);
    const ok = s.run(["exec", "-m", other, "-i", id, "--", "touch", ran]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(existsSync(ran), true);
  });

  test("seal-dir / open-dir round trip; a swapped shard is refused by name; exec on a directory", () => {
    const model = join(s.dir, "hf-model");
    mkdirSync(model);
    const shard1 = randomBytes(50_000);
    writeFileSync(join(model, "config.json"), '{"model_type":"llama"}');
    writeFileSync(join(model, "model-00001-of-00002.safetensors"), shard1);
    writeFileSync(join(model, "model-00002-of-00002.safetensors"), randomBytes(30_000));
    writeFileSync(join(model, "model.safetensors.index.json"), '{"weight_map":{}}');
    const out = join(s.dir, "hf-sealed");
    let r = s.run(["seal-dir", model, "-o", out, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout.toString()).files.length, 4);
    assert.ok(existsSync(join(out, "tensorseal-manifest.json.tseal")));
    r = s.run(["open-dir", out, "-o", join(s.dir, "hf-open")]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(
      readFileSync(join(s.dir, "hf-open", "model-00001-of-00002.safetensors")).equals(shard1),
    );

    const d1 = createHash("sha256").update(shard1).digest("hex");
    r = s.run([
      "exec",
      "-m",
      `${out}:llm`,
      "--",
      "sh",
      "-c",
      `test "$(sha256sum {llm}/model-00001-of-00002.safetensors | cut -d' ' -f1)" = ${d1}`,
    ]);
    assert.equal(r.status, 0, r.stderr);

    const a = join(out, "model-00001-of-00002.safetensors.tseal");
    const b = join(out, "model-00002-of-00002.safetensors.tseal");
    renameSync(a, `${a}.x`);
    renameSync(b, a);
    renameSync(`${a}.x`, b);
    r = s.run(["open-dir", out, "-o", join(s.dir, "hf-open2")]);
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stderr, /model-0000\d-of-00002\.safetensors\.tseal/);
    assert.equal(existsSync(join(s.dir, "hf-open2")), false);
    assert.deepEqual(
      readdirSync(s.dir).filter((f) => f.includes("tseal-tmp")),
      [],
    );
  });
});
