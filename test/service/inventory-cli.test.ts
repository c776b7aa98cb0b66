/**
 * `tensorseal inventory --server` against a real loopback key service (HTTPS, dev CA): the
 * service's keys with the files found on each version, sealed files joined with their registry
 * entries (`seal --register`), a registry entry not found on disk, the last release read from
 * the audit (an `open` through the service), and a token without the admin and audit scopes
 * leaving those parts out with notes instead of failing.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Spec, Validation } from "@cyclonedx/cyclonedx-library";
import type { Inventory } from "../../src/inventory/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { bearer, type CliService, cliService, token } from "./helpers.js";

let sb: Sandbox;
let svc: CliService;
let url: string;
let writer: NodeJS.ProcessEnv;
let dir: string;
let registered: string;
let adminToken: string;
const file = (n: string) => join(dir, n);

before(async () => {
  sb = sandbox();
  svc = await cliService(sb);
  url = svc.env.TENSORSEAL_SERVER!;
  adminToken = await token(svc.db, "admin");
  const admin = bearer(adminToken);
  const k = await svc.app.inject({
    method: "POST",
    url: "/v1/keys",
    headers: admin,
    payload: { name: "weights" },
  });
  assert.equal(k.statusCode, 200, k.body);
  writer = { ...svc.env, TENSORSEAL_SERVER_TOKEN: await token(svc.db, "wrap,unwrap") };
  dir = join(sb.dir, "models");
  mkdirSync(dir);
  const seal = async (name: string, extra: string[] = []) => {
    writeFileSync(join(sb.dir, `${name}.bin`), randomBytes(5000));
    const r = await sb.runAsync(
      ["seal", `${name}.bin`, "-r", "service:weights", "-o", file(`${name}.tseal`), ...extra],
      writer,
    );
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  // v1: one registered file (then opened: a release), one not registered.
  registered = JSON.parse(await seal("reg", ["-l", "team=ml", "--register", "--json"]))
    .artifacts[0];
  await seal("unreg");
  const open = await sb.runAsync(["open", file("reg.tseal"), "-o", "reg.out"], writer);
  assert.equal(open.status, 0, open.stderr);
  // v2: one file.
  const rot = await svc.app.inject({
    method: "POST",
    url: "/v1/keys/weights/rotate",
    headers: admin,
  });
  assert.equal(rot.statusCode, 200, rot.body);
  await seal("new");
  // An artifact the registry knows that is not under the scanned directory.
  const reg = await svc.app.inject({
    method: "POST",
    url: "/v1/artifacts",
    headers: bearer(await token(svc.db, "wrap")),
    payload: {
      id: "elsewhere-1",
      digest: `sha256:${createHash("sha256").update("x").digest("hex")}`,
      key: "weights",
      version: 1,
      location: "/srv/elsewhere.tseal",
    },
  });
  assert.equal(reg.statusCode, 200, reg.body);
});

after(async () => {
  sb.cleanup();
  await svc.close();
});

const inventory = async (scopes: string, args: string[]) => {
  // The flag names the server: TENSORSEAL_SERVER is not what is read.
  const r = await sb.runAsync(["inventory", "--server", url, ...args, dir], {
    ...svc.env,
    TENSORSEAL_SERVER: "",
    TENSORSEAL_SERVER_TOKEN: await token(svc.db, scopes),
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
};

test("inventory --server: service keys, files per version, registry joins, last release", async () => {
  const inv = JSON.parse(await inventory("admin,audit", ["--json"])) as Inventory;
  assert.deepEqual(inv.notes, []);
  const weights = inv.keys.find((k) => k.name === "weights")!;
  assert.equal(weights.provider, "service");
  assert.equal(weights.listed, true);
  assert.equal(weights.primaryVersion, 2);
  assert.deepEqual(
    weights.versions.map((v) => [v.version, v.state, v.files]),
    [
      [1, "enabled", 2],
      [2, "enabled", 1],
    ],
  );
  assert.equal(weights.rotationDueFrom, "default");

  const reg = inv.artifacts.find((a) => a.file === file("reg.tseal"))!;
  assert.deepEqual(
    reg.registry.map((r) => [r.id, r.key, r.version, r.location]),
    [[registered, "weights", 1, file("reg.tseal")]],
  );
  assert.deepEqual(reg.labels, { team: "ml" });
  assert.match(reg.recipients[0]!, /^service key weights version 1 \(key service .+\)$/);
  assert.ok(reg.lastRelease, "the open was a release");
  assert.equal(reg.lastRelease.artifact, registered);
  assert.ok(Date.parse(reg.lastRelease.ts) > 0);
  assert.equal(typeof reg.lastRelease.principal, "string");
  // Not registered: no registry entry, so no release to look up.
  const unreg = inv.artifacts.find((a) => a.file === file("unreg.tseal"))!;
  assert.deepEqual(unreg.registry, []);
  assert.equal(unreg.lastRelease, undefined);
  // In the registry only: listed with its key, never released.
  const elsewhere = inv.artifacts.find((a) => a.registry[0]?.id === "elsewhere-1")!;
  assert.equal(elsewhere.file, null);
  assert.equal(elsewhere.headerDigest, null);
  assert.equal(elsewhere.lastRelease, null);
  assert.equal(inv.artifacts.length, 4);

  const table = await inventory("admin,audit", []);
  const row = table.split("\n").find((l) => l.startsWith(`${file("reg.tseal")}\t`));
  assert.ok(row, table);
  assert.match(row, new RegExp(`\t${reg.lastRelease.ts} by `));
  assert.match(table, /^registry elsewhere-1\t.*\tnever$/m);
  assert.ok(!table.includes(adminToken));
});

test("an admin token (one /v1/inventory) and a reader+audit token (audit queries) agree", async () => {
  const lastOf = (inv: Inventory) => inv.artifacts.find((a) => a.file === file("reg.tseal"))!;
  const admin = JSON.parse(await inventory("admin", ["--json"])) as Inventory;
  const other = JSON.parse(await inventory("reader,audit", ["--json"])) as Inventory;
  assert.deepEqual(admin.notes, []);
  assert.match(other.notes.join("\n"), /^service keys not listed: HTTP 403/);
  assert.ok(lastOf(admin).lastRelease, "the open was a release");
  assert.deepEqual(lastOf(other).lastRelease, lastOf(admin).lastRelease);
  const never = (inv: Inventory) => inv.artifacts.find((a) => a.registry[0]?.id === "elsewhere-1");
  assert.equal(never(admin)?.lastRelease, null);
  assert.equal(never(other)?.lastRelease, null);
});

test("a token without the admin and audit scopes: keys and releases left out with notes", async () => {
  const inv = JSON.parse(await inventory("reader", ["--json"])) as Inventory;
  assert.equal(inv.notes.length, 2, inv.notes.join("\n"));
  assert.match(inv.notes[0]!, /^service keys not listed: HTTP 403/);
  assert.match(inv.notes[1]!, /^last releases not shown: HTTP 403/);
  // The keys the files name are still there, counted, but not listed by the service.
  const weights = inv.keys.find((k) => k.name === "weights")!;
  assert.equal(weights.listed, false);
  assert.deepEqual(
    weights.versions.map((v) => [v.version, v.state, v.files]),
    [
      [1, null, 2],
      [2, null, 1],
    ],
  );
  // The registry (reader may list it) is joined; no release was read.
  const reg = inv.artifacts.find((a) => a.file === file("reg.tseal"))!;
  assert.equal(reg.registry[0]?.id, registered);
  assert.equal("lastRelease" in reg, false);
});

test("the CBOM with a server validates and ties the service key to TLS", async () => {
  const text = await inventory("admin,audit", ["--format", "cyclonedx"]);
  const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot6);
  assert.equal(await validator.validate(text), null);
  const bom = JSON.parse(text) as {
    components: { "bom-ref": string; name: string; version?: string }[];
    dependencies: { ref: string; dependsOn?: string[] }[];
  };
  const v1 = bom.components.find((c) => c.name === "weights" && c.version === "1")!;
  const deps = bom.dependencies.find((d) => d.ref === v1["bom-ref"])?.dependsOn ?? [];
  assert.ok(deps.includes("crypto/protocol/tls"), deps.join());
  assert.ok(bom.components.some((c) => c.name === "elsewhere-1"));
});
