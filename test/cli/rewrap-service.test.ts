/**
 * Service-key files through the CLI: inspect names the key, version and service of a `service`
 * stanza; `rewrap --to-latest` moves a stanza on an old service-key version to the primary (the
 * service re-wraps it), finds it current afterwards, and without a key service says it cannot
 * tell instead of calling the file current.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseHeader } from "../../src/format/header.js";
import { parseServiceStanza } from "../../src/keys/service/stanza.js";
import { cliToken, type ServeProcess, servedKeystore } from "../service/serve-process.js";
import { type Sandbox, sandbox } from "./helpers.js";

let sb: Sandbox;
let srv: ServeProcess;
let env: NodeJS.ProcessEnv;
const plain = randomBytes(50_000);

const token = (scopes: string) => cliToken(sb, scopes);

before(async () => {
  sb = sandbox();
  ({ srv, env } = await servedKeystore(sb, "admin,wrap,unwrap,rewrap"));
  const r = sb.run(["service", "keys", "create", "weights"], { env });
  assert.equal(r.status, 0, r.stderr);
  writeFileSync(join(sb.dir, "m.bin"), plain);
  for (const [name, args] of [
    ["svc.tseal", ["-r", "service:weights"]],
    ["mixed.tseal", ["-k", "default", "-r", "service:weights"]],
  ] as const) {
    const s = sb.run(["seal", "m.bin", "-o", name, ...args], { env });
    assert.equal(s.status, 0, s.stderr);
  }
});

after(async () => {
  await srv.stop();
  sb.cleanup();
});

const serviceVersions = (name: string) =>
  parseHeader(readFileSync(join(sb.dir, name)))
    .stanzas.filter((s) => s.type === "service")
    .map((s) => parseServiceStanza(s).version);

test("inspect shows a service stanza's key, version and service", () => {
  const r = sb.run(["inspect", "svc.tseal"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.toString(), /- service key weights version 1 \(key service \S+\)/);
  assert.doesNotMatch(r.stdout.toString(), /not understood/);
});

test("--to-latest: an old service-key version is work; the service re-wraps it", () => {
  // Without a key service nothing can tell whether the stanza is current: a failure, not "current".
  let r = sb.run(["rewrap", "--to-latest", "svc.tseal"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /service stanzas \(weights v1 of \S+\) cannot be checked: no key service/);
  assert.doesNotMatch(r.stderr, /already current 1/);

  assert.equal(sb.run(["service", "keys", "rotate", "weights"], { env }).status, 0);
  r = sb.run(["rewrap", "--to-latest", "svc.tseal", "mixed.tseal", "--json"], { env });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout.toString());
  assert.deepEqual([j.rewrapped, j.current, j.failed], [2, 0, 0]);
  assert.deepEqual(serviceVersions("svc.tseal"), [2]);
  assert.deepEqual(serviceVersions("mixed.tseal"), [2]);
  for (const f of ["svc.tseal", "mixed.tseal"]) {
    const o = sb.run(["open", f, "-o", "-"], { env });
    assert.equal(o.status, 0, o.stderr);
    assert.ok(o.stdout.equals(plain));
  }
  r = sb.run(["rewrap", "--to-latest", "svc.tseal", "mixed.tseal", "--json"], { env });
  assert.deepEqual(JSON.parse(r.stdout.toString()).current, 2);
  assert.match(sb.run(["inspect", "svc.tseal"]).stdout.toString(), /weights version 2/);
});

test("a token without the rewrap scope: the file fails with the service's refusal, unchanged", () => {
  assert.equal(sb.run(["service", "keys", "rotate", "weights"], { env }).status, 0);
  const before = readFileSync(join(sb.dir, "svc.tseal"));
  const r = sb.run(["rewrap", "--to-latest", "svc.tseal"], {
    env: { ...env, TENSORSEAL_SERVER_TOKEN: token("unwrap") },
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /FAILED .*svc\.tseal: key service .*\/v1\/datakeys\/rewrap/);
  assert.ok(readFileSync(join(sb.dir, "svc.tseal")).equals(before));
});
