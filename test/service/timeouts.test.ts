/**
 * Slow clients cannot hold connections: a body trickled a byte at a time, or headers that never
 * end, are cut at the request / headers timeout and the connection is freed — for an
 * unauthenticated request and for an authenticated one alike. The trickle would take 30 s;
 * the server is set to give up after 1 s, so "cut before the body was complete" has a wide margin.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import type { Database } from "../../src/service/index.js";
import { server, sqliteDb, type TestDb, token } from "./helpers.js";

let tdb: TestDb;
let db: Database;
let app: FastifyInstance;
let port: number;
let admin: string;

before(async () => {
  tdb = sqliteDb();
  db = await tdb.open();
  app = await server(db, {
    timeouts: { requestMs: 1000, headersMs: 1000, idleMs: 60_000, keepAliveMs: 1000 },
  });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  port = Number(new URL(url).port);
  admin = await token(db, "admin");
});
after(async () => {
  await app.close();
  await db.close();
  await tdb.drop();
});

const BODY = 300;

/**
 * Sends `head`, then trickles `rest` one byte per 100 ms until the server closes the socket
 * or everything was sent. Returns how many bytes of `rest` went out and what came back.
 */
function trickle(head: string, rest: string): Promise<{ sent: number; reply: string }> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect(port, "127.0.0.1");
    let sent = 0;
    let reply = "";
    let timer: NodeJS.Timeout | undefined;
    s.on("data", (d) => {
      reply += d.toString("latin1");
    });
    s.on("error", () => {}); // a write after the server closed: EPIPE/ECONNRESET
    s.on("close", () => {
      clearInterval(timer);
      resolve({ sent, reply });
    });
    s.on("connect", () => {
      s.write(head);
      timer = setInterval(() => {
        if (sent >= rest.length) {
          clearInterval(timer);
          s.destroy();
          reject(new Error("the whole request went out: the server never cut it"));
          return;
        }
        if (!s.destroyed) s.write(rest[sent++]!);
      }, 100);
    });
  });
}

async function connectionsFreed(): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const n = await new Promise<number>((r, j) =>
      app.server.getConnections((e, c) => (e ? j(e) : r(c))),
    );
    if (n === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail("the server still holds a connection");
}

const body = `{"name":"${"a".repeat(BODY - 11)}"}`;

test("an authenticated request whose body trickles is cut with 408 and its connection freed", async () => {
  const head = `POST /v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  const r = await trickle(head, body);
  assert.ok(r.sent < body.length, `${r.sent} of ${body.length} bytes`);
  assert.match(r.reply, /^HTTP\/1\.1 408 /);
  await connectionsFreed();
});

test("an unauthenticated request whose body trickles is cut too", async () => {
  const head = `POST /v1/datakeys/unwrap HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  const r = await trickle(head, body);
  assert.ok(r.sent < body.length, `${r.sent} of ${body.length} bytes`);
  await connectionsFreed();
});

test("headers that never end are cut", async () => {
  const r = await trickle("GET /healthz HTTP/1.1\r\n", `X-Slow: ${"a".repeat(BODY)}`);
  assert.ok(r.sent < BODY, `${r.sent} header bytes`);
  await connectionsFreed();
});
