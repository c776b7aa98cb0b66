/**
 * Safe at every edge: a command interrupted while it writes (SIGINT, SIGTERM, SIGHUP) exits
 * 128 + the signal number and leaves nothing in the output directory; a SIGKILL leaves nothing
 * where O_TMPFILE works, and otherwise a temporary file that the next run in that directory
 * removes, saying so. Both kinds of temporary output run: anonymous (the native addon, as CI
 * builds it) and named (TENSORSEAL_NATIVE=0).
 *
 * Timing comes from what the child has open (/proc/PID/fd), never from a guessed delay: inputs
 * are FIFOs the test feeds and holds open, or large files whose output is seen being written.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { selfStamp } from "../../src/engine/process-stamp.js";
import { type Sandbox, sandbox } from "./helpers.js";
import { openPaths, start, waitFor } from "./interrupt-helpers.js";

const MODES: readonly { name: string; tag: string; env: NodeJS.ProcessEnv }[] = [
  { name: "anonymous temp (O_TMPFILE)", tag: "anon", env: {} },
  { name: "named temp (no addon)", tag: "named", env: { TENSORSEAL_NATIVE: "0" } },
];
const SIGNALS = [
  ["SIGINT", 130],
  ["SIGTERM", 143],
  ["SIGHUP", 129],
] as const;

function mkfifo(path: string): void {
  const r = spawnSync("mkfifo", [path]);
  assert.equal(r.status, 0, r.stderr?.toString());
}

/** Entries of `dir` that were not there before (the leftovers a test must not find). */
function newEntries(dir: string, before: readonly string[]): string[] {
  return readdirSync(dir).filter((e) => !before.includes(e));
}

describe("interrupted and killed commands leave nothing behind", () => {
  let s: Sandbox;
  let small: Buffer;
  let smallSealed: string;
  let big: string;
  let bigSealed: string;
  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    small = randomBytes(6 << 20);
    writeFileSync(join(s.dir, "small.bin"), small);
    smallSealed = join(s.dir, "small.tseal");
    assert.equal(s.run(["seal", join(s.dir, "small.bin"), "-o", smallSealed]).status, 0);
    // Large enough that the output is seen long before it is complete.
    big = join(s.dir, "big.bin");
    writeFileSync(big, Buffer.alloc(384 << 20, 7));
    bigSealed = join(s.dir, "big.tseal");
    assert.equal(s.run(["seal", big, "-o", bigSealed]).status, 0);
  });
  after(() => s.cleanup());

  /** A fresh directory to write into, and a FIFO there that the test feeds. */
  function workDir(name: string): string {
    const dir = join(s.dir, name);
    mkdirSync(dir);
    return dir;
  }

  for (const mode of MODES) {
    for (const [sig, code] of SIGNALS) {
      test(`open from a pipe, ${sig} mid-way: exit ${code}, no output, no temp (${mode.name})`, async () => {
        const dir = workDir(`open-${sig}-${mode.tag}`);
        const fifo = join(dir, "in.fifo");
        mkfifo(fifo);
        const before = readdirSync(dir);
        const run = start(s, ["open", fifo, "-o", join(dir, "out.bin")], mode.env);
        const feed = await open(fifo, "w");
        const sealed = readFileSync(smallSealed);
        await feed.write(sealed.subarray(0, 4 << 20)); // header and some chunks, held open
        const temp = await waitFor("plaintext in the temporary output", () =>
          openPaths(run.child.pid!, dir).find((p) => p.size > 0 && !p.path.endsWith(".fifo")),
        );
        if (mode.tag === "named") assert.match(temp.path, /\.tseal-tmp-/);
        else assert.match(temp.path, /\/#\d+ \(deleted\)$/, "an anonymous O_TMPFILE file");
        run.child.kill(sig);
        assert.equal(await run.exited, code, run.stderr());
        await feed.close();
        assert.deepEqual(newEntries(dir, before), []);
      });
    }

    test(`seal from a pipe, SIGTERM mid-way leaves nothing (${mode.name})`, async () => {
      const dir = workDir(`seal-pipe-${mode.tag}`);
      const fifo = join(dir, "in.fifo");
      mkfifo(fifo);
      const before = readdirSync(dir);
      const run = start(s, ["seal", fifo, "-o", join(dir, "out.tseal")], mode.env);
      const feed = await open(fifo, "w");
      await feed.write(randomBytes(24 << 20));
      await waitFor("ciphertext in the temporary output", () =>
        openPaths(run.child.pid!, dir).find((p) => p.size > 0 && !p.path.endsWith(".fifo")),
      );
      run.child.kill("SIGTERM");
      assert.equal(await run.exited, 143, run.stderr());
      await feed.close();
      assert.deepEqual(newEntries(dir, before), []);
    });

    test(`open of a large file, SIGINT while writing leaves nothing (${mode.name})`, async () => {
      const dir = workDir(`open-file-${mode.tag}`);
      const run = start(s, ["open", bigSealed, "-o", join(dir, "out.bin")], mode.env);
      await waitFor("the temporary output", () => openPaths(run.child.pid!, dir)[0] ?? null);
      run.child.kill("SIGINT");
      assert.equal(await run.exited, 130, run.stderr());
      assert.deepEqual(readdirSync(dir), []);
    });
  }

  // Key files are read synchronously (small files, issue 11): one that is a FIFO whose writer
  // never writes holds the read, and a signal must still end the run, leaving nothing.
  for (const [what, key] of [
    ["an identity file (-i)", "identity"],
    ["the root key file", "root"],
  ] as const) {
    test(`${what} that is a FIFO never written: SIGINT ends the run, nothing left`, async () => {
      const dir = workDir(`key-fifo-${key}`);
      const fifo = join(dir, "key.fifo");
      mkfifo(fifo);
      const out = join(dir, "out.bin");
      let args = ["open", smallSealed, "-o", out];
      let env: NodeJS.ProcessEnv = {};
      if (key === "identity") {
        const id = join(dir, "id.key");
        assert.equal(s.run(["keygen", "-o", id]).status, 0);
        const recipient = /^# recipient: (\S+)$/m.exec(readFileSync(id, "utf8"))![1]!;
        const sealed = join(dir, "r.tseal");
        assert.equal(
          s.run(["seal", join(s.dir, "small.bin"), "-r", recipient, "-o", sealed]).status,
          0,
        );
        args = ["open", sealed, "-i", fifo, "-o", out];
      } else {
        env = { TENSORSEAL_ROOT_KEY_FILE: fifo };
      }
      const home = s.env.TENSORSEAL_HOME!;
      const [before, homeBefore] = [readdirSync(dir), readdirSync(home)];
      const run = start(s, args, env);
      const writer = await open(fifo, "w"); // resolves once the command opened it to read
      await waitFor(
        "the command reading the key file",
        () => openPaths(run.child.pid!, dir).find((p) => p.path.endsWith("key.fifo")) ?? null,
      );
      run.child.kill("SIGINT");
      assert.equal(await run.exited, 130, run.stderr());
      await writer.close();
      assert.deepEqual(newEntries(dir, before), []);
      assert.deepEqual(newEntries(home, homeBefore), [], "no lock or temporary file left");
    });
  }

  test("SIGKILL during open: an anonymous temp leaves nothing at all", async () => {
    const dir = workDir("kill-anon");
    const run = start(s, ["open", bigSealed, "-o", join(dir, "out.bin")]);
    await waitFor("the temporary output", () => openPaths(run.child.pid!, dir)[0] ?? null);
    run.child.kill("SIGKILL");
    assert.equal(await run.exited, 137);
    assert.deepEqual(readdirSync(dir), []);
  });

  test("SIGKILL during open with named temps: the next run removes the leftover and says so", async () => {
    const dir = workDir("kill-named");
    const noAddon = { TENSORSEAL_NATIVE: "0" };
    // A live writer's temporary (this test process) and one of a writer in another pid
    // namespace (cannot be judged) must both survive the clean-up.
    const me = selfStamp()!;
    const live = `other.bin.tseal-tmp-${me.ns}-${me.pid}-${me.start}-${"ab".repeat(8)}`;
    const foreign = `far.bin.tseal-tmp-1-${me.pid + 1}-1-${"cd".repeat(8)}`;
    writeFileSync(join(dir, live), "in progress");
    writeFileSync(join(dir, foreign), "in another container");
    const run = start(s, ["open", bigSealed, "-o", join(dir, "out.bin")], noAddon);
    await waitFor("the temporary output", () => openPaths(run.child.pid!, dir)[0] ?? null);
    run.child.kill("SIGKILL");
    assert.equal(await run.exited, 137);
    const left = readdirSync(dir).filter((e) => e !== live && e !== foreign);
    assert.equal(left.length, 1, "a killed writer leaves its named temp");
    assert.match(left[0]!, /^out\.bin\.tseal-tmp-\d+-\d+-\d+-[0-9a-f]{16}$/);
    const r = s.run(["open", smallSealed, "-o", join(dir, "small.out")], { env: noAddon });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /removed 1 temporary entry left in .* by an interrupted tensorseal run/);
    assert.ok(r.stderr.includes(left[0]!));
    assert.deepEqual(readdirSync(dir).sort(), [foreign, live, "small.out"].sort());
  });

  test("open-dir: SIGINT leaves no hidden directory; after SIGKILL the next run removes it", async () => {
    const model = workDir("model");
    writeFileSync(join(model, "config.json"), "{}");
    writeFileSync(join(model, "a.bin"), Buffer.alloc(64 << 20, 1));
    writeFileSync(join(model, "b.bin"), Buffer.alloc(256 << 20, 2));
    const sealedDir = join(s.dir, "model.sealed");
    assert.equal(s.run(["seal-dir", model, "-o", sealedDir]).status, 0);
    const dest = workDir("opened");
    // Wait until a.bin is complete in the hidden directory and b.bin is being written.
    const hiddenWithPlaintext = (pid: number) =>
      openPaths(pid, dest).find((p) => p.path.includes("b.bin") || p.path.includes("#")) ?? null;

    let run = start(s, ["open-dir", sealedDir, "-o", join(dest, "m")]);
    await waitFor("open-dir writing b.bin", () => hiddenWithPlaintext(run.child.pid!));
    run.child.kill("SIGINT");
    assert.equal(await run.exited, 130, run.stderr());
    assert.deepEqual(readdirSync(dest), []);

    run = start(s, ["open-dir", sealedDir, "-o", join(dest, "m")]);
    await waitFor("open-dir writing b.bin", () => hiddenWithPlaintext(run.child.pid!));
    run.child.kill("SIGKILL");
    assert.equal(await run.exited, 137);
    const [hidden] = readdirSync(dest);
    assert.match(hidden ?? "", /^\.m\.tseal-tmp-/, "SIGKILL cannot clean up a directory");
    const r = s.run(["open-dir", sealedDir, "-o", join(dest, "m")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /removed 1 temporary entry .* interrupted tensorseal run/);
    assert.deepEqual(readdirSync(dest), ["m"]);
  });

  test("seal-dir: SIGTERM leaves no hidden directory", async () => {
    const model = join(s.dir, "model");
    const dest = workDir("sealed-dest");
    const run = start(s, ["seal-dir", model, "-o", join(dest, "m.sealed")]);
    await waitFor("seal-dir writing", () => openPaths(run.child.pid!, dest)[0] ?? null);
    run.child.kill("SIGTERM");
    assert.equal(await run.exited, 143, run.stderr());
    assert.deepEqual(readdirSync(dest), []);
  });
});

describe("outputs that are not regular files are written in place, never replaced", () => {
  let s: Sandbox;
  let sealed: string;
  const data = randomBytes((2 << 20) + 5);
  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    writeFileSync(join(s.dir, "p.bin"), data);
    sealed = join(s.dir, "p.tseal");
    assert.equal(s.run(["seal", join(s.dir, "p.bin"), "-o", sealed]).status, 0);
  });
  after(() => s.cleanup());

  const isDevNull = () => {
    const r = spawnSync("stat", ["-c", "%F %t:%T", "/dev/null"], { encoding: "utf8" });
    return r.stdout.trim() === "character special file 1:3";
  };

  test("open and seal -o /dev/null need no --force and leave /dev/null a device", () => {
    assert.ok(isDevNull());
    let r = s.run(["open", sealed, "-o", "/dev/null"]);
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["open", sealed, "-o", "/dev/null", "-f"]);
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["seal", join(s.dir, "p.bin"), "-o", "/dev/null"]);
    assert.equal(r.status, 0, r.stderr);
    r = s.run(["keygen", "-o", "/dev/null"]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(isDevNull(), "/dev/null must still be the null device");
  });

  test("open -o FIFO streams the plaintext to its reader; the FIFO stays a FIFO", async () => {
    const fifo = join(s.dir, "out.fifo");
    mkfifo(fifo);
    const reader = open(fifo, "r").then(async (fh) => {
      try {
        return await fh.readFile();
      } finally {
        await fh.close();
      }
    });
    const r = await s.runAsync(["open", sealed, "-o", fifo]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok((await reader).equals(data));
    const kind = spawnSync("stat", ["-c", "%F", fifo], { encoding: "utf8" }).stdout.trim();
    assert.equal(kind, "fifo");
  });

  test("a directory as output, or as seal input, is a usage error that names the fix", () => {
    let r = s.run(["open", sealed, "-o", s.dir]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /is a directory/);
    r = s.run(["seal", s.dir, "-o", join(s.dir, "x.tseal")]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /tensorseal seal-dir/);
  });

  test("seal reads a FIFO input as a stream (process substitution)", async () => {
    const fifo = join(s.dir, "in.fifo");
    mkfifo(fifo);
    const out = join(s.dir, "fromfifo.tseal");
    const writer = open(fifo, "w").then(async (fh) => {
      await fh.write(data);
      await fh.close();
    });
    const r = await s.runAsync(["seal", fifo, "-o", out]);
    await writer;
    assert.equal(r.status, 0, r.stderr);
    const back = s.run(["open", out, "-o", "-"]);
    assert.equal(back.status, 0, back.stderr);
    assert.ok(back.stdout.equals(data));
  });
});
