/** The service root key under M-of-N control: `service root split`, and recovery at start. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { buildServer, recoverServiceRoot, verifyAuditLog } from "../../src/service/index.js";
import { CLI } from "../cli/helpers.js";
import { lastAuditEntry, sqliteDb } from "./helpers.js";

let dir: string;
const root = randomBytes(32);

function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    env: { ...process.env, TENSORSEAL_HOME: dir },
  });
}
const share = (i: number) => join(dir, "shares", `share-${i}.share`);

before(() => {
  dir = mkdtempSync(join(tmpdir(), "tensorseal-rootshares-"));
  writeFileSync(join(dir, "root.key"), `${root.toString("hex")}\n`, { mode: 0o600 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("service root split writes N share files (0600) without printing a share", () => {
  const split = () =>
    cli(
      "service",
      "root",
      "split",
      "--root-key-file",
      join(dir, "root.key"),
      "--shares",
      "3",
      "--threshold",
      "2",
      "-o",
      join(dir, "shares"),
    );
  const r = split();
  assert.equal(r.status, 0, r.stderr);
  for (const i of [1, 2, 3]) {
    assert.equal(statSync(share(i)).mode & 0o777, 0o600);
    const b64 = /^share=(.+)$/m.exec(readFileSync(share(i), "utf8"))![1]!;
    assert.ok(!r.stdout.includes(b64) && !r.stderr.includes(b64));
  }
  assert.ok(!r.stderr.includes(root.toString("hex")));
  // a second split into the same directory never overwrites shares
  const again = split();
  assert.notEqual(again.status, 0);
});

test("M shares rebuild the root, start the server on its database and audit root.recover", async () => {
  const tdb = sqliteDb();
  const db = await tdb.open();
  try {
    // the database was created with the root itself
    await (await buildServer({ db, rootKey: root, logger: false, sweepEveryMs: 0 })).close();
    const { root: rebuilt, recovery } = await recoverServiceRoot([share(3), share(1)]);
    assert.ok(rebuilt.equals(root));
    assert.deepEqual(recovery.shares, [1, 3]);
    const app = await buildServer({
      db,
      rootKey: rebuilt,
      rootRecovery: recovery,
      logger: false,
      sweepEveryMs: 0,
    });
    await app.close();
    const e = await lastAuditEntry<{ action: string; resource: Record<string, unknown> }>(db);
    assert.equal(e.action, "root.recover");
    assert.deepEqual(e.resource, { split: recovery.split, shares: [1, 3], threshold: 2 });
    const text = JSON.stringify(e);
    for (const i of [1, 3]) {
      const b64 = /^share=(.+)$/m.exec(readFileSync(share(i), "utf8"))![1]!;
      assert.ok(!text.includes(b64));
    }
    assert.equal((await verifyAuditLog(db)).ok, true);
  } finally {
    await db.close();
    await tdb.drop();
  }
});

test("M-1 shares, a repeated or a tampered share are refused with a clear error", async () => {
  await assert.rejects(
    recoverServiceRoot([share(2)]),
    /1 share\(s\) given, but this split needs 2 of 3/,
  );
  await assert.rejects(recoverServiceRoot([share(2), share(2)]), /the same share was given twice/);
  const t = readFileSync(share(1), "utf8").replace(
    /^(share=)(.)/m,
    (_m, p, c) => p + (c === "A" ? "B" : "A"),
  );
  writeFileSync(join(dir, "bad.share"), t);
  await assert.rejects(recoverServiceRoot([join(dir, "bad.share"), share(2)]), /checksum mismatch/);
  const s = cli("serve", "--dev", "--listen", "127.0.0.1:0", "--root-shares", share(1));
  assert.equal(s.status, 2, s.stderr);
  assert.match(s.stderr, /1 share\(s\) given, but this split needs 2 of 3/);
});
