/**
 * A keystore held open by a long-running process follows keystore.json as another process
 * (another Keystore object here, the CLI in production) changes it: wraps move to a primary
 * rotated elsewhere, versions created since open, a version disabled elsewhere stops opening,
 * and a file edited outside tensorseal fails closed. Python's keystore does the same
 * (python/tests/test_keystore_refresh.py).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { isTensorSealError } from "../../src/format/errors.js";
import { parseKekStanza } from "../../src/keys/kek.js";
import { Keystore } from "../../src/keys/keystore.js";

const PW = { passphrase: "keystore pass", workFactor: 10 };
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function twoHandles(): Promise<{ home: string; job: Keystore; operator: Keystore }> {
  const d = await mkdtemp(join(tmpdir(), "tseal-ks-refresh-"));
  dirs.push(d);
  const home = join(d, "home");
  const operator = await Keystore.init(home, PW);
  await operator.createKey("default");
  const job = await Keystore.open(home, { passphrase: PW.passphrase });
  return { home, job, operator };
}

const code = (c: string) => (e: unknown) => isTensorSealError(e) && e.code === c;

test("wraps follow a rotation made elsewhere, and stanzas of a version created since open", async () => {
  const { job, operator } = await twoHandles();
  const fileKey = randomBytes(32);
  const r = job.recipient("default");
  const first = await r.wrap(fileKey);
  await r.wrap(fileKey); // the job now holds a lease with a wrap of version 1 left
  assert.equal(parseKekStanza(first).version, 1);
  await operator.rotateKey("default");
  const after = await r.wrap(fileKey);
  assert.equal(parseKekStanza(after).version, 2, "sealed to the new primary, not the lease");
  // A stanza the operator wrapped under version 2 opens with the job's keystore.
  const byOperator = await operator.recipient("default").wrap(fileKey);
  assert.deepEqual(await job.identity().unwrap(byOperator), fileKey);
  await job.flush();
  await operator.flush();
});

test("a version disabled elsewhere stops opening at once; refresh() re-reads on demand", async () => {
  const { job, operator } = await twoHandles();
  const fileKey = randomBytes(32);
  const v1 = await job.recipient("default").wrap(fileKey);
  assert.deepEqual(await job.identity().unwrap(v1), fileKey);
  await operator.rotateKey("default");
  await operator.disableVersion("default", 1);
  await assert.rejects(job.identity().unwrap(v1), code("E_KEY_STATE"));
  await operator.enableVersion("default", 1);
  await job.refresh();
  assert.deepEqual(
    job.showKey("default").versions.map((v) => v.state),
    ["enabled", "enabled"],
  );
  assert.deepEqual(await job.identity().unwrap(v1), fileKey);
  await job.flush();
});

test("a keystore.json edited outside tensorseal fails closed on the next wrap and unwrap", async () => {
  const { home, job } = await twoHandles();
  const fileKey = randomBytes(32);
  const v1 = await job.recipient("default").wrap(fileKey);
  const path = join(home, "keystore.json");
  const doc = JSON.parse(await readFile(path, "utf8"));
  doc.keys[0].min_decryption_version = 1;
  doc.keys[0].created = "2020-01-01T00:00:00.000Z";
  await writeFile(path, JSON.stringify(doc));
  await assert.rejects(job.identity().unwrap(v1), code("E_KEYSTORE"));
  await assert.rejects(job.recipient("default").wrap(fileKey), code("E_KEYSTORE"));
});

// A locked update reads keystore.json again under the lock: an edit outside tensorseal since this
// process read it stops the update before anything is written, and another process's change is
// kept, not overwritten by this process's older copy.
test("an update re-authenticates a keystore.json edited since this process read it", async () => {
  const { home, job } = await twoHandles();
  const path = join(home, "keystore.json");
  const doc = JSON.parse(await readFile(path, "utf8"));
  doc.keys[0].created = "2020-01-01T00:00:00.000Z";
  const edited = JSON.stringify(doc);
  await writeFile(path, edited);
  await assert.rejects(job.rotateKey("default"), code("E_KEYSTORE"));
  assert.equal(await readFile(path, "utf8"), edited, "nothing written");
});

test("an update keeps another process's change, and its own earlier ones, with their keys", async () => {
  const { job, operator } = await twoHandles();
  const fileKey = randomBytes(32);
  const atV1 = await job.recipient("default").wrap(fileKey);
  await operator.rotateKey("default"); // v2, written by the other handle
  assert.equal((await job.rotateKey("default")).primaryVersion, 3, "v2 was read, not overwritten");
  assert.equal((await job.rotateKey("default")).primaryVersion, 4, "after its own write: reused");
  const atV4 = await job.recipient("default").wrap(fileKey);
  const reopened = await Keystore.open(job.home, { passphrase: PW.passphrase });
  assert.equal(reopened.primaryVersion("default"), 4);
  for (const ks of [job, operator, reopened]) {
    assert.deepEqual(await ks.identity().unwrap(atV1), fileKey);
    assert.deepEqual(await ks.identity().unwrap(atV4), fileKey);
  }
});
