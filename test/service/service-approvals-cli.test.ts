/** `tensorseal service approvals ...` and `service policy get|propose` over HTTPS (dev CA). */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { encodeX25519Recipient } from "../../src/keys/x25519.js";
import { generateX25519KeyPair } from "../../src/keys/x25519-key.js";
import { type Database, DEFAULT_POLICIES } from "../../src/service/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { bearer, type CliService, cliService, token } from "./helpers.js";

let svc: CliService;
let db: Database;
let app: FastifyInstance;
let sb: Sandbox;
let env: NodeJS.ProcessEnv;
let a1: string;
let a2: string;

const run = (args: string[], tok: string) =>
  sb.runAsync(args, { ...env, TENSORSEAL_SERVER_TOKEN: tok });

before(async () => {
  sb = sandbox();
  svc = await cliService(sb, { approvals: { required: { destroy: 2, policy: 2 } } });
  ({ db, app, env } = svc);
  a1 = await token(db, "admin");
  a2 = await token(db, "admin");
  for (const url of ["/v1/keys", "/v1/keys/m/rotate"])
    await app.inject({ method: "POST", url, headers: bearer(a1), payload: { name: "m" } });
});

after(async () => {
  sb.cleanup();
  await svc.close();
});

test("approvals request/approve/list over HTTPS: the second admin executes the destroy", async () => {
  const r = await run(
    ["service", "approvals", "request", "destroy", "--key", "m", "--key-version", "1"],
    a1,
  );
  assert.equal(r.status, 0, r.stderr);
  const req = JSON.parse(r.stdout);
  assert.equal(req.state, "pending");
  const self = await run(["service", "approvals", "approve", req.id], a1);
  assert.equal(self.status, 8, self.stderr);
  assert.match(self.stderr, /requester's own approval/);
  const ok = await run(["service", "approvals", "approve", req.id], a2);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).state, "executed");
  const list = await run(["service", "approvals", "list"], a1);
  assert.match(list.stdout, new RegExp(`^${req.id}\\tdestroy\\texecuted\\t2/2\\t`, "m"));
  const usage = await run(["service", "approvals", "request", "export", "--key", "m"], a1);
  assert.equal(usage.status, 2);
});

test("approvals request export --recipient sends one recipient (not an array) and the requester gets the sealed KEK", async () => {
  const recipient = encodeX25519Recipient(generateX25519KeyPair().publicKey);
  const args = ["service", "approvals", "request", "export", "--key", "m", "--key-version", "2"];
  const r = await run([...args, "--recipient", recipient], a1);
  assert.equal(r.status, 0, r.stderr);
  const v = JSON.parse(r.stdout);
  // export needs one approval here: executed at once, the ciphertext kept for the requester.
  assert.equal(v.operation, "export");
  assert.equal(v.state, "executed");
  assert.equal(v.params.recipient, recipient);
  const shown = await run(["service", "approvals", "show", v.id], a1);
  assert.equal(shown.status, 0, shown.stderr);
  assert.equal(JSON.parse(shown.stdout).result.stanza.type, "x25519");
});

test("policy get and propose: an invalid set is refused with Cedar's message; an approved one is active", async () => {
  const g = await run(["service", "policy", "get", "--json"], a1);
  assert.equal(g.status, 0, g.stderr);
  assert.equal(JSON.parse(g.stdout).version, 0);
  const bad = join(sb.dir, "bad");
  mkdirSync(bad);
  writeFileSync(
    join(bad, "x.cedar"),
    'permit (principal, action == TensorSeal::Action::"nope", resource);',
  );
  const b = await run(["service", "policy", "propose", bad], a1);
  assert.equal(b.status, 8);
  assert.match(b.stderr, /do not validate/);
  const good = join(sb.dir, "good");
  mkdirSync(good);
  writeFileSync(
    join(good, "base.cedar"),
    Object.entries(DEFAULT_POLICIES)
      .map(([id, p]) => `@id("${id}")\n${p}`)
      .join("\n"),
  );
  const p = await run(["service", "policy", "propose", good], a1);
  assert.equal(p.status, 0, p.stderr);
  const ok = await run(["service", "approvals", "approve", JSON.parse(p.stdout).id], a2);
  assert.equal(JSON.parse(ok.stdout).state, "executed", ok.stderr);
  const after = await run(["service", "policy", "get"], a1);
  assert.match(after.stdout, /^\/\/ version 1, digest [0-9a-f]{64}/);
});
