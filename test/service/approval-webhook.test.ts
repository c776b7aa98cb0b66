/**
 * Approval events to a signed webhook (a real HTTP receiver on loopback): requested, approved
 * (still short of M), executed, rejected, expired, failed, in order; each body signed over its
 * exact bytes with the id in x-tensorseal-event-id; nothing secret in them; M = 1 sends nothing;
 * a receiver that never answers does not hold up or fail a request. And `serve`'s webhook flags.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { encodeX25519Recipient } from "../../src/keys/x25519.js";
import { generateX25519KeyPair } from "../../src/keys/x25519-key.js";
import {
  type Database,
  DEFAULT_POLICIES,
  SIGNATURE_HEADER,
  signBody,
} from "../../src/service/index.js";
import { assertServeRefuses } from "../cli/helpers.js";
import { bearer, inject, server, sqliteDb, type TestDb, token } from "./helpers.js";

const SECRET = Buffer.from("approval-webhook-secret-0123456789");
const HOUR = 3_600_000;

interface Received {
  headers: IncomingHttpHeaders;
  raw: string;
  body: Record<string, unknown> & { event: string; approval: Record<string, unknown> };
}

let receiver: Server;
let hookUrl: string;
const received: Received[] = [];
let tdb: TestDb;
let db: Database;
let app: FastifyInstance;
let clock = Date.parse("2030-01-01T00:00:00Z");
const tok: Record<"a1" | "a2" | "a3", string> = { a1: "", a2: "", a3: "" };

const req = (method: "POST" | "GET", url: string, who: keyof typeof tok, payload?: unknown) =>
  inject(app, method, url, tok[who], payload);

async function newKey(name: string): Promise<void> {
  assert.equal((await req("POST", "/v1/keys", "a1", { name })).statusCode, 200);
  assert.equal((await req("POST", `/v1/keys/${name}/rotate`, "a1")).statusCode, 200);
}

async function requestDestroy(key: string): Promise<string> {
  const r = await req("POST", `/v1/keys/${key}/versions/1/schedule-destroy`, "a1", {});
  assert.equal(r.statusCode, 202, r.body);
  return r.json().approval as string;
}

/** The events received so far for one request, once `n` of them have arrived. */
async function eventsFor(id: string, n: number): Promise<Received[]> {
  const end = Date.now() + 10_000;
  for (;;) {
    const got = received.filter((r) => r.body.approval.id === id);
    if (got.length >= n) return got;
    if (Date.now() > end) assert.fail(`expected ${n} events for ${id}, got ${got.length}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

before(async () => {
  receiver = createServer((q, s) => {
    let raw = "";
    q.on("data", (c) => {
      raw += c;
    });
    q.on("end", () => {
      received.push({ headers: q.headers, raw, body: JSON.parse(raw) });
      s.end("ok");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  tdb = sqliteDb();
  db = await tdb.open();
  app = await server(db, {
    now: () => clock,
    sweepEveryMs: 0,
    approvals: {
      required: { destroy: 3, export: 1, policy: 2 },
      webhook: { url: hookUrl, secret: SECRET },
    },
  });
  tok.a1 = await token(db, "admin");
  tok.a2 = await token(db, "admin");
  tok.a3 = await token(db, "admin");
});

after(async () => {
  await app.close();
  await db.close();
  await tdb.drop();
  await new Promise((r) => receiver.close(r));
});

test("requested, approved, then executed by the third approver: signed events with the request's state", async () => {
  await newKey("m");
  const id = await requestDestroy("m");
  const [requested] = await eventsFor(id, 1);
  assert.equal(requested!.body.event, "requested");
  assert.equal(requested!.body.type, "tensorseal.approval");
  assert.equal(requested!.headers[SIGNATURE_HEADER], signBody(SECRET, requested!.raw));
  assert.equal(requested!.headers["x-tensorseal-event-id"], requested!.body.id);
  assert.match(String(requested!.body.id), /^evt_[0-9a-f]{24}$/);
  assert.deepEqual(
    {
      operation: requested!.body.approval.operation,
      params: requested!.body.approval.params,
      required: requested!.body.approval.required,
      missing: requested!.body.approval.missing,
      state: requested!.body.approval.state,
    },
    {
      operation: "destroy",
      params: { key: "m", version: 1, days: 7 },
      required: 3,
      missing: 2,
      state: "pending",
    },
  );
  assert.equal(requested!.body.by, requested!.body.approval.requester);

  assert.equal((await req("POST", `/v1/approvals/${id}/approve`, "a2")).statusCode, 200);
  const [, approved] = await eventsFor(id, 2);
  assert.deepEqual(
    [approved!.body.event, approved!.body.approval.state, approved!.body.approval.missing],
    ["approved", "pending", 1],
  );
  assert.notEqual(approved!.body.by, requested!.body.by);
  assert.equal((await req("POST", `/v1/approvals/${id}/approve`, "a3")).statusCode, 200);
  const [, , executed] = await eventsFor(id, 3);
  assert.equal(executed!.body.event, "executed");
  assert.equal(executed!.body.approval.state, "executed");
  assert.equal(executed!.body.approval.missing, 0);
  assert.equal((executed!.body.approval.approvers as string[]).length, 3);
  assert.equal(executed!.headers[SIGNATURE_HEADER], signBody(SECRET, executed!.raw));
  // A body edited in transit no longer matches its signature.
  assert.notEqual(
    executed!.headers[SIGNATURE_HEADER],
    signBody(SECRET, executed!.raw.replace('"executed"', '"rejected"')),
  );
  for (const r of received) {
    for (const t of Object.values(tok)) assert.ok(!r.raw.includes(t), "no token in an event");
  }
});

test("rejected and expired requests send their events; M = 1 sends none", async () => {
  await newKey("r");
  const rejectedId = await requestDestroy("r");
  assert.equal((await req("POST", `/v1/approvals/${rejectedId}/reject`, "a2")).statusCode, 200);
  const rej = await eventsFor(rejectedId, 2);
  assert.deepEqual(
    rej.map((e) => [e.body.event, e.body.approval.state]),
    [
      ["requested", "pending"],
      ["rejected", "rejected"],
    ],
  );

  await newKey("e");
  const expiredId = await requestDestroy("e");
  clock += 25 * HOUR;
  assert.equal((await req("GET", "/v1/approvals", "a2")).statusCode, 200); // expires due ones
  const exp = await eventsFor(expiredId, 2);
  assert.deepEqual(
    exp.map((e) => [e.body.event, e.body.by]),
    [
      ["requested", exp[0]!.body.approval.requester],
      ["expired", "system:approvals"],
    ],
  );

  // export needs 1 approval here: the requester alone, dual control off for it, no event.
  const before1 = received.length;
  const r = await req("POST", "/v1/approvals", "a1", {
    operation: "export",
    key: "m",
    version: 2,
    recipient: encodeX25519Recipient(generateX25519KeyPair().publicKey),
  });
  assert.equal(r.json().state, "executed", r.body);
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(received.length, before1);
  assert.ok(!received.some((e) => e.raw.includes("stanza")), "no export result in any event");
});

test("an approved operation that fails on execution sends failed", async () => {
  const files = (text: string) => ({
    "base.cedar": Object.entries(DEFAULT_POLICIES)
      .map(([pid, p]) => `@id("${pid}")\n${p}`)
      .join("\n"),
    "x.cedar": text,
  });
  const a = await req("POST", "/v1/approvals", "a1", { operation: "policy", files: files("// a") });
  const b = await req("POST", "/v1/approvals", "a1", { operation: "policy", files: files("// b") });
  assert.equal((await req("POST", `/v1/approvals/${a.json().id}/approve`, "a2")).statusCode, 200);
  // b was proposed against the policy set a has just replaced: it fails when executed.
  assert.equal((await req("POST", `/v1/approvals/${b.json().id}/approve`, "a2")).statusCode, 409);
  const evs = await eventsFor(b.json().id, 2);
  assert.deepEqual(
    evs.map((e) => [e.body.event, e.body.approval.state]),
    [
      ["requested", "pending"],
      ["failed", "failed"],
    ],
  );
  assert.match(JSON.stringify(evs[1]!.body.approval.outcome), /changed since this proposal/);
});

test("a receiver that never answers does not hold up or fail a request", async () => {
  // Accepts the connection and the body, then says nothing: a delivery the request waited for
  // would take the 5 s attempt timeout.
  let attempts = 0;
  const hung = createServer(() => {
    attempts++;
  });
  await new Promise<void>((r) => hung.listen(0, "127.0.0.1", r));
  const t2 = sqliteDb();
  const db2 = await t2.open();
  const down = await server(db2, {
    now: () => clock,
    sweepEveryMs: 0,
    approvals: {
      required: { destroy: 2 },
      webhook: {
        url: `http://127.0.0.1:${(hung.address() as AddressInfo).port}/hook`,
        secret: SECRET,
      },
    },
  });
  try {
    const admin = await token(db2, "admin");
    const call = (url: string, payload?: unknown) =>
      down.inject({
        method: "POST",
        url,
        headers: bearer(admin),
        ...(payload === undefined ? {} : { payload: payload as object }),
      });
    assert.equal((await call("/v1/keys", { name: "d" })).statusCode, 200);
    assert.equal((await call("/v1/keys/d/rotate")).statusCode, 200);
    const started = Date.now();
    const r = await call("/v1/keys/d/versions/1/schedule-destroy", {});
    assert.equal(r.statusCode, 202, r.body);
    const answeredIn = Date.now() - started;
    while (attempts === 0) await new Promise((res) => setTimeout(res, 20));
    assert.ok(answeredIn < 2000, `answered in ${answeredIn} ms while the delivery hung`);
  } finally {
    await down.close();
    await db2.close();
    await t2.drop();
    hung.closeAllConnections();
    await new Promise((r) => hung.close(r));
  }
});

test("serve checks the webhook flags before anything listens (exit 2)", () => {
  const dir = mkdtempSync(join(tmpdir(), "tensorseal-apwh-"));
  try {
    writeFileSync(join(dir, "short"), "too short\n");
    writeFileSync(join(dir, "secret"), SECRET);
    assertServeRefuses(join(dir, "home"), [
      [["--approval-webhook", "https://hooks.example/x"], /go together/],
      [["--approval-webhook-secret-file", join(dir, "secret")], /go together/],
      [
        [
          "--approval-webhook",
          "http://hooks.example/x",
          "--approval-webhook-secret-file",
          join(dir, "secret"),
        ],
        /--approval-webhook must be https/,
      ],
      [
        [
          "--approval-webhook",
          "https://hooks.example/x",
          "--approval-webhook-secret-file",
          join(dir, "short"),
        ],
        /at least 16 bytes/,
      ],
      [
        [
          "--approval-webhook",
          "https://hooks.example/x",
          "--approval-webhook-secret-file",
          join(dir, "none"),
        ],
        /cannot read --approval-webhook-secret-file/,
      ],
      [
        [
          "--alert-webhook",
          "http://10.0.0.1/x",
          "--alert-webhook-secret-file",
          join(dir, "secret"),
        ],
        /--alert-webhook must be https/,
      ],
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
