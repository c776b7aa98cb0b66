/** A real loopback server over TLS with the --dev CA, driven by the keys-layer client. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { isTensorSealError } from "../../src/format/errors.js";
import { ServiceClient, serviceIdentity, serviceRecipient } from "../../src/keys/index.js";
import { type Database, ensureDevTls } from "../../src/service/index.js";
import { bearer, server, sqliteDb, type TestDb, token } from "./helpers.js";

let home: string;
let tdb: TestDb;
let db: Database;
let app: FastifyInstance;
let url: string;
let ca: string;
let tok: string;

before(async () => {
  home = mkdtempSync(join(tmpdir(), "tensorseal-tls-"));
  const dev = await ensureDevTls(home);
  ca = readFileSync(dev.caPath, "utf8");
  tdb = sqliteDb();
  db = await tdb.open();
  app = await server(db, { tls: dev });
  url = await app.listen({ host: "127.0.0.1", port: 0 });
  tok = await token(db, "admin,wrap,unwrap");
  await app.inject({
    method: "POST",
    url: "/v1/keys",
    headers: bearer(tok),
    payload: { name: "m" },
  });
});

after(async () => {
  await app.close();
  await db.close();
  await tdb.drop();
  rmSync(home, { recursive: true, force: true });
});

test("dev CA: private keys are 0600, the certificate is reused", async () => {
  for (const f of ["ca.key", "server.key"])
    assert.equal(statSync(join(home, "service-dev", f)).mode & 0o777, 0o600);
  const again = await ensureDevTls(home);
  assert.equal(again.cert, readFileSync(join(home, "service-dev", "server.pem"), "utf8"));
});

test("recipient and identity round trip over HTTPS with the dev CA", async () => {
  const client = new ServiceClient({ url, token: tok, ca });
  try {
    const fk = randomBytes(32);
    const stanza = await serviceRecipient(client, "m").wrap(fk);
    assert.deepEqual(await serviceIdentity(client).unwrap(stanza), fk);
    const other = { type: "service", fields: [Buffer.from("ts-other"), ...stanza.fields.slice(1)] };
    assert.equal(
      await serviceIdentity(client).unwrap(other),
      null,
      "another server's stanza is not mine",
    );
    assert.equal(await serviceIdentity(client).unwrap({ type: "kek", fields: [] }), null);
  } finally {
    client.close();
  }
});

test("without the CA, with no token or a wrong token: E_PROVIDER, no key", async () => {
  const fk = randomBytes(32);
  const good = new ServiceClient({ url, token: tok, ca });
  const stanza = await serviceRecipient(good, "m").wrap(fk);
  good.close();
  for (const opts of [
    { url, token: tok },
    { url, ca },
    { url, ca, token: `tsk_${"C".repeat(43)}` },
  ]) {
    const c = new ServiceClient(opts);
    await assert.rejects(
      () => c.id().then(() => serviceIdentity(c).unwrap(stanza)),
      (e) => isTensorSealError(e, "E_PROVIDER") && !String(e.message).includes("C".repeat(43)),
    );
    c.close();
  }
});
