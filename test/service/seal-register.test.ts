/** `tensorseal seal --register` against a loopback key service: registered after sealing, with the plaintext digest. */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { headerDigest } from "../../src/engine/reseal.js";
import { readHeader } from "../../src/format/message.js";
import { SERVICE_STANZA, serviceStanzaDigest } from "../../src/keys/service/index.js";
import { headerBase64 } from "../../src/keys/service/registry.js";
import { ArtifactRepo } from "../../src/service/artifacts/repo.js";
import type { Database } from "../../src/service/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { bearer, server, sqliteDb, type TestDb, token } from "./helpers.js";

let tdb: TestDb;
let db: Database;
let app: FastifyInstance;
let sb: Sandbox;
let env: NodeJS.ProcessEnv;
let admin: string;

const run = (args: string[]) => sb.runAsync(args, env);

before(async () => {
  tdb = sqliteDb();
  db = await tdb.open();
  app = await server(db, { sweepEveryMs: 0 });
  admin = await token(db, "admin");
  const writer = await token(db, "wrap,unwrap");
  await app.inject({
    method: "POST",
    url: "/v1/keys",
    headers: bearer(admin),
    payload: { name: "weights" },
  });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  sb = sandbox();
  env = { TENSORSEAL_SERVER: url, TENSORSEAL_SERVER_TOKEN: writer };
});

after(async () => {
  sb.cleanup();
  await app.close();
  await db.close();
  await tdb.drop();
});

test("seal --register registers the sealed file (plaintext SHA-256, key version, labels, location)", async () => {
  const data = randomBytes(200_000);
  writeFileSync(join(sb.dir, "m.bin"), data);
  const r = await run([
    "seal",
    "m.bin",
    "-r",
    "service:weights",
    "-l",
    "team=ml",
    "-o",
    "m.tseal",
    "--register",
    "--json",
  ]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.artifacts.length, 1);
  const a = await app.inject({
    url: `/v1/artifacts/${out.artifacts[0]}`,
    headers: bearer(admin),
  });
  assert.equal(a.statusCode, 200, a.body);
  assert.deepEqual(
    { ...(a.json() as object), id: undefined, created: undefined },
    {
      id: undefined,
      created: undefined,
      digest: `sha256:${createHash("sha256").update(data).digest("hex")}`,
      key: "weights",
      version: 1,
      labels: { team: "ml" },
      location: join(sb.dir, "m.tseal"),
      // The header the client sent (tier checks), named by its digest.
      headerDigest: headerDigest(
        Buffer.from(await headerBase64(join(sb.dir, "m.tseal")), "base64"),
      ),
    },
  );
  // The SHA-256 of the file's service stanza is recorded, so unwraps of it find this artifact.
  const stanza = readHeader(readFileSync(join(sb.dir, "m.tseal"))).stanzas.find(
    (s) => s.type === SERVICE_STANZA,
  );
  assert.ok(stanza);
  const row = await new ArtifactRepo(db).byStanza(serviceStanzaDigest(stanza));
  assert.equal(row?.id, out.artifacts[0]);
});

test("seal --register --tier: the tier becomes the registry's sensitivity label (the user's wins)", async () => {
  const { SENSITIVITIES } = await import("../../src/service/authz/attributes.js");
  const { SERVICE_LEVELS } = await import("../../src/tiers/policy.js");
  assert.deepEqual(
    [...SERVICE_LEVELS],
    SENSITIVITIES.filter((x) => x !== "unspecified"),
  );
  writeFileSync(join(sb.dir, "t.bin"), randomBytes(1000));
  const labelsOf = async (args: string[]) => {
    const r = await run([
      "seal",
      "t.bin",
      "-r",
      "service:weights",
      "--register",
      "--json",
      "-f",
      ...args,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const id = JSON.parse(r.stdout).artifacts[0];
    return (await app.inject({ url: `/v1/artifacts/${id}`, headers: bearer(admin) })).json().labels;
  };
  assert.deepEqual(await labelsOf(["--tier", "confidential", "-o", "t1.tseal"]), {
    sensitivity: "confidential",
  });
  assert.deepEqual(
    await labelsOf(["--tier", "confidential", "-l", "sensitivity=restricted", "-o", "t2.tseal"]),
    { sensitivity: "restricted" },
  );
  assert.deepEqual(await labelsOf(["-o", "t3.tseal"]), {});
});

test("--register without a service recipient, or with stdin/stdout, is a usage error before sealing", async () => {
  writeFileSync(join(sb.dir, "n.bin"), "x");
  for (const args of [
    ["seal", "n.bin", "-p", "-o", "n.tseal", "--register"],
    ["seal", "n.bin", "-r", "service:weights", "-o", "-", "--register"],
  ]) {
    const r = await run(args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /--register needs/);
    assert.ok(!existsSync(join(sb.dir, "n.tseal")));
  }
});
