/** Client-side data-key cache (issue #4 §8) against a real loopback server: hits make no request, limits force one, off by default. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import {
  DataKeyCache,
  dataKeyCacheFromEnv,
  parseDataKeyCacheSpec,
  ServiceClient,
  serviceIdentity,
  stanzaFromWire,
} from "../../src/keys/service/index.js";
import type { Database } from "../../src/service/index.js";
import { bearer, server, sqliteDb, type TestDb, token } from "./helpers.js";

let tdb: TestDb;
let db: Database;
let app: FastifyInstance;
let client: ServiceClient;
let admin: string;

/** How many unwrap requests reached the server (its audit log). */
async function unwraps(): Promise<number> {
  const rows = await db.db.selectFrom("audit").select("entry").execute();
  return rows.filter((r) => JSON.parse(r.entry).action === "datakeys.unwrap").length;
}

async function generate() {
  const g = await app.inject({
    method: "POST",
    url: "/v1/datakeys/generate",
    headers: bearer(admin),
    payload: { key: "m" },
  });
  assert.equal(g.statusCode, 200, g.body);
  const j = g.json();
  return { stanza: stanzaFromWire(j.stanza), fileKey: Buffer.from(j.fileKey, "base64") };
}

before(async () => {
  tdb = sqliteDb();
  db = await tdb.open();
  app = await server(db, { sweepEveryMs: 0 });
  admin = await token(db, "admin,wrap,unwrap");
  await app.inject({
    method: "POST",
    url: "/v1/keys",
    headers: bearer(admin),
    payload: { name: "m" },
  });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  client = new ServiceClient({ url, token: admin });
});

after(async () => {
  client.close();
  await app.close();
  await db.close();
  await tdb.drop();
});

describe("data-key cache", () => {
  test("off by default: every unwrap is a request", async () => {
    assert.equal(dataKeyCacheFromEnv(undefined), null);
    const { stanza, fileKey } = await generate();
    const id = serviceIdentity(client);
    const n = await unwraps();
    assert.deepEqual(await id.unwrap(stanza), fileKey);
    assert.deepEqual(await id.unwrap(stanza), fileKey);
    assert.equal((await unwraps()) - n, 2);
  });

  test("a second unwrap within the limits makes no request; a hit is a copy", async () => {
    let clock = 1_000;
    const cache = new DataKeyCache({ maxAgeMs: 60_000, maxUses: 10 }, () => clock);
    const id = serviceIdentity(client, { cache });
    const { stanza, fileKey } = await generate();
    const n = await unwraps();
    const a = (await id.unwrap(stanza)) as Buffer;
    clock += 59_000;
    const b = (await id.unwrap(stanza)) as Buffer;
    assert.deepEqual(a, fileKey);
    assert.deepEqual(b, fileKey);
    assert.equal((await unwraps()) - n, 1, "the second came from the cache");
    b.fill(0); // a caller wiping its copy does not wipe the cache
    assert.deepEqual(await id.unwrap(stanza), fileKey);
    assert.equal((await unwraps()) - n, 1);
    // another stanza is another entry
    const other = await generate();
    assert.deepEqual(await id.unwrap(other.stanza), other.fileKey);
    assert.equal((await unwraps()) - n, 2);
    assert.equal(cache.size, 2);
    cache.close();
    assert.equal(cache.size, 0);
  });

  test("expiry forces a new request and wipes the evicted key", async () => {
    let clock = 0;
    const cache = new DataKeyCache({ maxAgeMs: 1000, maxUses: 100 }, () => clock);
    const id = serviceIdentity(client, { cache });
    const { stanza, fileKey } = await generate();
    const n = await unwraps();
    await id.unwrap(stanza);
    const held = (cache as unknown as { entries: Map<string, { key: Buffer }> }).entries;
    const cached = [...held.values()][0]?.key as Buffer;
    assert.deepEqual(cached, fileKey);
    clock += 1000;
    assert.deepEqual(await id.unwrap(stanza), fileKey);
    assert.equal((await unwraps()) - n, 2, "expired: fetched again");
    assert.ok(cached.equals(Buffer.alloc(32)), "evicted key overwritten with zeros");
    cache.close();
  });

  test("the use limit forces a new request (the fetch counts as a use)", async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000, maxUses: 3 });
    const id = serviceIdentity(client, { cache });
    const { stanza, fileKey } = await generate();
    const n = await unwraps();
    for (let i = 0; i < 3; i++) assert.deepEqual(await id.unwrap(stanza), fileKey);
    assert.equal((await unwraps()) - n, 1);
    assert.equal(cache.size, 0, "used up: evicted");
    assert.deepEqual(await id.unwrap(stanza), fileKey);
    assert.equal((await unwraps()) - n, 2);
    cache.close();
  });

  test("TENSORSEAL_SERVER_CACHE parsing; invalid values are E_USAGE", () => {
    assert.deepEqual(parseDataKeyCacheSpec("maxAge=60s,maxUses=10"), {
      maxAgeMs: 60_000,
      maxUses: 10,
    });
    assert.deepEqual(parseDataKeyCacheSpec(" maxUses=2, maxAge=500ms "), {
      maxAgeMs: 500,
      maxUses: 2,
    });
    assert.deepEqual(parseDataKeyCacheSpec("maxAge=5m,maxUses=1")?.maxAgeMs, 300_000);
    assert.equal(parseDataKeyCacheSpec(""), null);
    assert.equal(parseDataKeyCacheSpec("off"), null);
    for (const bad of [
      "on",
      "maxAge=60",
      "maxAge=60s",
      "maxUses=10",
      "maxAge=0s,maxUses=1",
      "maxAge=60s,maxUses=0",
      "maxAge=60s,maxUses=-1",
      "maxAge=60s,maxUses=1.5",
      "maxAge=60s,maxUses=10,maxUses=11",
      "maxAge=60s,maxUses=10,ttl=1s",
      "maxAge=6d,maxUses=10",
    ])
      assert.throws(
        () => parseDataKeyCacheSpec(bad),
        (e: Error & { code?: string }) =>
          e.code === "E_USAGE" && /TENSORSEAL_SERVER_CACHE/.test(e.message),
        bad,
      );
    assert.throws(() => dataKeyCacheFromEnv("maxAge=x"), { code: "E_USAGE" });
    const c = dataKeyCacheFromEnv("maxAge=1s,maxUses=2");
    assert.ok(c instanceof DataKeyCache);
    c?.close();
  });
});
