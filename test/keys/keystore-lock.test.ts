/**
 * The keystore lock (keystore-file.ts withLock): held while a mutation runs, gone after it
 * whether it succeeded or threw, its temporary names never left behind, and a lock whose
 * writer is dead taken over; a live holder's lock is waited for, not removed.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { withLock } from "../../src/keys/keystore-file.js";

const home = mkdtempSync(join(tmpdir(), "tseal-lock-"));
after(() => rmSync(home, { recursive: true, force: true }));
const lock = join(home, "keystore.lock");

test("the lock holds our pid while the mutation runs and is gone after it, no temporary left", async () => {
  const seen = await withLock(home, async () => readFileSync(lock, "utf8"));
  assert.equal(seen, String(process.pid));
  assert.deepEqual(readdirSync(home), []);
});

test("a mutation that throws still releases the lock", async () => {
  await assert.rejects(
    withLock(home, async () => {
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.equal(existsSync(lock), false);
  assert.deepEqual(readdirSync(home), []);
});

test("a lock left by a dead process is taken over", async () => {
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  writeFileSync(lock, dead.stdout);
  assert.equal(await withLock(home, async () => readFileSync(lock, "utf8")), String(process.pid));
  assert.deepEqual(readdirSync(home), []);
});

test("a lock held by a live process is not removed", async () => {
  writeFileSync(lock, "1"); // pid 1 is alive
  const t = Date.now();
  await assert.rejects(
    withLock(home, async () => "ran"),
    /locked by another tensorseal process/,
  );
  assert.ok(Date.now() - t >= 2500, "waited for the holder");
  assert.equal(readFileSync(lock, "utf8"), "1");
  rmSync(lock);
});
