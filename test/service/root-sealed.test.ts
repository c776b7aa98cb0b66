/**
 * The service root in HSM/KMS custody (`service root seal`, `serve --root-sealed`): a real
 * SoftHSM2 token and moto's KMS on loopback. The root never lies in a plain file, a custody must
 * be approved (dual control) before an existing database starts with it, and an unreachable
 * provider stops the start. Missing SoftHSM2 or moto fails the run under TENSORSEAL_REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { isTensorSealError } from "../../src/format/errors.js";
import { closeModules } from "../../src/keys/pkcs11/module.js";
import { Pkcs11Provider } from "../../src/keys/pkcs11/provider.js";
import {
  buildServer,
  type Database,
  unsealServiceRoot,
  verifyAuditLog,
} from "../../src/service/index.js";
import { CLI } from "../cli/helpers.js";
import { freePort, MOTO_REGION, motoEnv, motoServer, startMoto, stopMoto } from "../keys/moto.js";
import { initSoftHsmToken, SOFTHSM_MODULE, softhsmMissing } from "../keys/softhsm.js";
import { bearer, lastAuditEntry, sqliteDb, type TestDb, token } from "./helpers.js";

const requireAll = process.env.TENSORSEAL_REQUIRE_ALL === "1";
const TOKEN = "tseal-root";
const PIN = "2468-user";
const KEY = `${TOKEN}/service-root`;

const hsmWhy = softhsmMissing();
const motoBin = motoServer();
const motoWhy = motoBin ? null : "moto_server not found (run scripts/setup-test-deps.sh)";
if (requireAll && hsmWhy)
  test("SoftHSM2 is available (TENSORSEAL_REQUIRE_ALL=1)", () => assert.fail(hsmWhy));
if (requireAll && motoWhy)
  test("moto is available (TENSORSEAL_REQUIRE_ALL=1)", () => assert.fail(motoWhy));

const rejectsWith = (code: string, pattern: RegExp) => (e: unknown) => {
  assert.ok(isTensorSealError(e), `expected a TensorSealError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.match(e.message, pattern);
  return true;
};

let dir: string;
const env = (): NodeJS.ProcessEnv => ({ ...process.env, TENSORSEAL_HOME: join(dir, "home") });
function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: env() });
}

/** The root, as hex and base64: neither may appear in a sealed file or any output. */
function assertNoRoot(text: string, root: Buffer) {
  assert.ok(!text.includes(root.toString("hex")), "the root (hex) leaked");
  assert.ok(!text.includes(root.toString("base64")), "the root (base64) leaked");
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "tensorseal-rootsealed-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("root in a PKCS#11 token's custody (SoftHSM2)", { skip: hsmWhy ?? false }, () => {
  const root = randomBytes(32);
  const rootFile = () => join(dir, "root.key");
  const sealed = () => join(dir, "root.sealed");
  const dbs: TestDb[] = [];
  const open = async (): Promise<Database> => {
    const t = sqliteDb();
    dbs.push(t);
    return t.open();
  };
  const start = (db: Database, extra: Record<string, unknown> = {}) =>
    buildServer({ db, rootKey: root, logger: false, sweepEveryMs: 0, ...extra });

  before(async () => {
    initSoftHsmToken(dir, TOKEN, PIN, "1357-so");
    await new Pkcs11Provider({ module: SOFTHSM_MODULE, pin: () => PIN }).generateKey(KEY);
    writeFileSync(rootFile(), `${root.toString("hex")}\n`, { mode: 0o600 });
  });
  after(async () => {
    closeModules();
    for (const t of dbs) await t.drop();
  });

  test("service root seal writes a 0600 file naming its custody, with no root byte in it or the output", () => {
    const r = cli(
      "service",
      "root",
      "seal",
      "--root-key-file",
      rootFile(),
      "--to",
      `pkcs11:${KEY}`,
      "-o",
      sealed(),
      "--json",
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.custody, `pkcs11:${KEY}`);
    assert.equal(statSync(sealed()).mode & 0o777, 0o600);
    const text = readFileSync(sealed(), "utf8");
    assert.equal(JSON.parse(text).custody, `pkcs11:${KEY}`);
    for (const t of [text, r.stdout, r.stderr]) assertNoRoot(t, root);
    // A key that does not exist in the token: refused, nothing written.
    const bad = cli(
      "service",
      "root",
      "seal",
      "--root-key-file",
      rootFile(),
      "--to",
      `pkcs11:${TOKEN}/absent`,
      "-o",
      join(dir, "absent.sealed"),
    );
    assert.notEqual(bad.status, 0);
    assert.throws(() => statSync(join(dir, "absent.sealed")));
    // Neither or both root sources: a usage error.
    assert.equal(
      cli("service", "root", "seal", "--to", `pkcs11:${KEY}`, "-o", join(dir, "x")).status,
      2,
    );
  });

  test("the token unwraps the root; a new database records the custody as bootstrap and audits root.unseal", async () => {
    const { root: got, unseal } = await unsealServiceRoot(sealed());
    assert.ok(got.equals(root));
    const db = await open();
    try {
      await (await start(db, { rootUnseal: unseal })).close();
      const e = await lastAuditEntry<{ action: string; resource: Record<string, unknown> }>(db);
      // the last entry may be a shutdown checkpoint: look for root.unseal itself
      const rows = await db.db.selectFrom("audit").select("entry").orderBy("seq").execute();
      const unsealEntry = rows
        .map((x) => JSON.parse(x.entry))
        .find((x) => x.action === "root.unseal");
      assert.ok(unsealEntry, `no root.unseal entry (last: ${e.action})`);
      assert.deepEqual(unsealEntry.resource, { custody: `pkcs11:${KEY}`, approval: "bootstrap" });
      assertNoRoot(JSON.stringify(rows), root);
      // A later start with the same custody is admitted.
      await (await start(db, { rootUnseal: unseal })).close();
      assert.equal((await verifyAuditLog(db)).ok, true);
    } finally {
      await db.close();
    }
  });

  test("an existing database refuses an unapproved custody until a second admin approves it", async () => {
    const { unseal } = await unsealServiceRoot(sealed());
    const db = await open();
    try {
      // Created from the plain root file: its custody is not on record.
      await (await start(db)).close();
      await assert.rejects(
        start(db, { rootUnseal: unseal }),
        rejectsWith("E_KEYSTORE", /not approved/),
      );
      const app = await start(db, { approvals: { required: { custody: 2 } } });
      try {
        const a1 = await token(db, "admin");
        const a2 = await token(db, "admin");
        const reader = await token(db, "reader");
        const post = (url: string, t: string, payload: object = {}) =>
          app.inject({ method: "POST", url, headers: bearer(t), payload });
        const badRef = await post("/v1/approvals", a1, {
          operation: "custody",
          custody: "file:/etc/root",
        });
        assert.equal(badRef.statusCode, 400, badRef.body);
        assert.equal(
          (await post("/v1/approvals", reader, { operation: "custody", custody: `pkcs11:${KEY}` }))
            .statusCode,
          403,
        );
        const req = await post("/v1/approvals", a1, {
          operation: "custody",
          custody: `pkcs11:${KEY}`,
        });
        assert.equal(req.statusCode, 202, req.body);
        const id = req.json().id as string;
        assert.notEqual(
          (await post(`/v1/approvals/${id}/approve`, a1)).statusCode,
          200,
          "self-approval",
        );
        await assert.rejects(
          start(db, { rootUnseal: unseal }),
          rejectsWith("E_KEYSTORE", /not approved/),
        );
        const ok = await post(`/v1/approvals/${id}/approve`, a2);
        assert.equal(ok.statusCode, 200, ok.body);
        assert.equal(ok.json().state, "executed");
      } finally {
        await app.close();
      }
      await (await start(db, { rootUnseal: unseal })).close();
      const rows = await db.db.selectFrom("audit").select("entry").orderBy("seq").execute();
      const last = rows
        .map((x) => JSON.parse(x.entry))
        .filter((x) => x.action === "root.unseal")
        .pop();
      assert.match(String(last.resource.approval), /^apr_[0-9a-f]{24}$/);
    } finally {
      await db.close();
    }
  });

  test("a sealed root that was edited, or holds another root, does not start", async () => {
    // Not a regular file, or far too large: refused before anything is read.
    await assert.rejects(
      unsealServiceRoot("/dev/zero"),
      rejectsWith("E_MALFORMED", /regular file/),
    );
    await assert.rejects(unsealServiceRoot(dir), rejectsWith("E_MALFORMED", /regular file/));
    const doc = JSON.parse(readFileSync(sealed(), "utf8"));
    const edited = join(dir, "edited.sealed");
    writeFileSync(edited, JSON.stringify({ ...doc, root: "0".repeat(32) }));
    await assert.rejects(
      unsealServiceRoot(edited),
      rejectsWith("E_KEYSTORE", /not the one the file names/),
    );
    writeFileSync(edited, JSON.stringify({ ...doc, custody: `pkcs11:${TOKEN}/other` }));
    await assert.rejects(
      unsealServiceRoot(edited),
      rejectsWith("E_MALFORMED", /custody does not match/),
    );
    const flipped = [...doc.stanza.fields];
    const last = Buffer.from(flipped[flipped.length - 1], "base64");
    last[0]! ^= 1;
    flipped[flipped.length - 1] = last.toString("base64");
    writeFileSync(edited, JSON.stringify({ ...doc, stanza: { ...doc.stanza, fields: flipped } }));
    await assert.rejects(unsealServiceRoot(edited), (e: unknown) => isTensorSealError(e));
    // Another root, properly sealed: the database's own check refuses it.
    const other = randomBytes(32);
    const otherFile = join(dir, "other.key");
    writeFileSync(otherFile, other.toString("hex"), { mode: 0o600 });
    const r = cli(
      "service",
      "root",
      "seal",
      "--root-key-file",
      otherFile,
      "--to",
      `pkcs11:${KEY}`,
      "-o",
      join(dir, "other.sealed"),
    );
    assert.equal(r.status, 0, r.stderr);
    const db = await open();
    try {
      await (await start(db)).close();
      const { root: otherRoot, unseal } = await unsealServiceRoot(join(dir, "other.sealed"));
      await assert.rejects(
        buildServer({ db, rootKey: otherRoot, rootUnseal: unseal, logger: false, sweepEveryMs: 0 }),
        rejectsWith("E_KEYSTORE", /does not match/),
      );
    } finally {
      await db.close();
    }
  });
});

describe("root in AWS KMS custody (moto on loopback)", { skip: motoWhy ?? false }, () => {
  let moto: ChildProcess | null = null;
  let arn: string;
  const root = randomBytes(32);
  const sealed = () => join(dir, "kms-root.sealed");

  before(async () => {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    Object.assign(process.env, motoEnv({ TENSORSEAL_KMS_ENDPOINT: endpoint }));
    moto = await startMoto(motoBin!, port);
    const sdk = new KMSClient({ region: MOTO_REGION, endpoint });
    arn = (await sdk.send(new CreateKeyCommand({ Description: "service root" }))).KeyMetadata!.Arn!;
    writeFileSync(join(dir, "kms-root.key"), root.toString("hex"), { mode: 0o600 });
  });
  after(() => stopMoto(moto));

  test("seal to a KMS key, unseal it back; with KMS unreachable, serve refuses to start", async () => {
    const r = cli(
      "service",
      "root",
      "seal",
      "--root-key-file",
      join(dir, "kms-root.key"),
      "--to",
      `aws-kms:${arn}`,
      "-o",
      sealed(),
      "--json",
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).custody, `aws-kms:${arn}`);
    assertNoRoot(readFileSync(sealed(), "utf8"), root);
    const { root: got, unseal } = await unsealServiceRoot(sealed());
    assert.ok(got.equals(root));
    assert.equal(unseal.custody, `aws-kms:${arn}`);

    await stopMoto(moto);
    moto = null;
    const child = spawn(
      process.execPath,
      [
        CLI,
        "serve",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--db",
        `sqlite:${join(dir, "kms.db")}`,
        "--root-sealed",
        sealed(),
      ],
      { env: env(), stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
    });
    child.stderr!.on("data", (d: Buffer) => {
      out += d;
    });
    const code = await new Promise<number | null>((res) => {
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      child.once("exit", (c) => {
        clearTimeout(timer);
        res(c);
      });
    });
    assert.notEqual(code, 0, out);
    assert.notEqual(code, null, `serve kept running without its KMS: ${out}`);
    assert.match(out, /aws-kms/);
    assert.doesNotMatch(out, /listening|serving/i);
    assertNoRoot(out, root);
  });
});
