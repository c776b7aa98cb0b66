/**
 * Console sessions over the API (inject, no browser): sign-in through the service's own
 * authentication, the cookie authenticates like its token (same principal, same Cedar
 * decisions), CSRF and Origin checks on state changes, sign-out and expiry end the session,
 * refused sign-ins are audited, and the console's security headers.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import type { Database } from "../../src/service/index.js";
import { bearer, server, sqliteDb, type TestDb, token } from "../service/helpers.js";

let tdb: TestDb;
let db: Database;
let app: FastifyInstance;
let admin: string;
let reader: string;
let clock = Date.now();
const ORIGIN = "http://localhost:80";

before(async () => {
  tdb = sqliteDb();
  db = await tdb.open();
  app = await server(db, {
    sweepEveryMs: 0,
    console: { sessions: { idleMs: 60_000, maxMs: 600_000 } },
    now: () => clock,
  });
  admin = await token(db, "admin");
  reader = await token(db, "reader");
  const r = await app.inject({
    method: "POST",
    url: "/v1/keys",
    headers: bearer(admin),
    payload: { name: "m" },
  });
  assert.equal(r.statusCode, 200, r.body);
});

after(async () => {
  await app.close();
  await db.close();
  await tdb.drop();
});

async function signIn(
  tok: string,
): Promise<{ cookie: string; csrf: string; res: LightMyRequestResponse }> {
  const res = await app.inject({
    method: "POST",
    url: "/console/session",
    payload: { token: tok },
  });
  assert.equal(res.statusCode, 200, res.body);
  const c = res.cookies.find((x) => x.name === "tensorseal-console");
  assert.ok(c, "a session cookie");
  return { cookie: `tensorseal-console=${c.value}`, csrf: res.json().csrf, res };
}

const rotate = (headers: Record<string, string>) =>
  app.inject({ method: "POST", url: "/v1/keys/m/rotate", headers });

test("sign-in sets an HttpOnly, SameSite=Strict session cookie; the token is not echoed", async () => {
  const { res } = await signIn(admin);
  const c = res.cookies[0]!;
  assert.equal(c.httpOnly, true);
  assert.equal(c.sameSite, "Strict");
  assert.equal(c.path, "/");
  assert.equal(c.secure, undefined, "no Secure flag on plain HTTP (the TLS test checks it)");
  assert.ok(!res.body.includes(admin), "the token never comes back");
  assert.deepEqual(res.json().roles, ["admin"]);
  assert.equal(res.headers["cache-control"], "no-store");
});

test("the cookie authenticates as the token's principal: reads work, Cedar decides as for the token", async () => {
  const a = await signIn(admin);
  const keys = await app.inject({ method: "GET", url: "/v1/keys", headers: { cookie: a.cookie } });
  assert.equal(keys.statusCode, 200, keys.body);
  const r = await signIn(reader);
  const denied = await app.inject({
    method: "GET",
    url: "/v1/keys",
    headers: { cookie: r.cookie },
  });
  assert.equal(denied.statusCode, 403, "a reader's session may not list keys");
  const me = await app.inject({
    method: "GET",
    url: "/console/session",
    headers: { cookie: r.cookie },
  });
  assert.equal(me.statusCode, 200);
  assert.match(me.json().principal, /^token:/);
  assert.deepEqual(me.json().roles, ["reader"]);
});

test("a state change with the cookie needs the CSRF token and this origin", async () => {
  const { cookie, csrf } = await signIn(admin);
  const none = await rotate({ cookie, origin: ORIGIN });
  assert.equal(none.statusCode, 403);
  assert.match(none.json().message, /CSRF/);
  const wrong = await rotate({ cookie, origin: ORIGIN, "x-csrf-token": `${csrf.slice(0, -2)}AA` });
  assert.equal(wrong.statusCode, 403);
  const foreign = await rotate({ cookie, origin: "https://evil.example", "x-csrf-token": csrf });
  assert.equal(foreign.statusCode, 403);
  assert.match(foreign.json().message, /origin/);
  const noOrigin = await rotate({ cookie, "x-csrf-token": csrf });
  assert.equal(noOrigin.statusCode, 403);
  const ok = await rotate({ cookie, origin: ORIGIN, "x-csrf-token": csrf });
  assert.equal(ok.statusCode, 200, ok.body);
  // Another session's CSRF token does not fit this one.
  const other = await signIn(admin);
  const mixed = await rotate({ cookie, origin: ORIGIN, "x-csrf-token": other.csrf });
  assert.equal(mixed.statusCode, 403);
});

test("refused CSRF requests and refused sign-ins are audited as denied", async () => {
  const { cookie } = await signIn(admin);
  await rotate({ cookie, origin: ORIGIN });
  const bad = await app.inject({
    method: "POST",
    url: "/console/session",
    payload: { token: `tsk_${"A".repeat(43)}` },
  });
  assert.equal(bad.statusCode, 401);
  const audit = await app.inject({
    method: "GET",
    url: "/v1/audit?outcome=denied",
    headers: bearer(admin),
  });
  const entries = audit.json().entries as {
    action: string;
    reason?: string;
    principal: string | null;
  }[];
  assert.ok(entries.some((e) => e.action === "keys.rotate" && /CSRF/.test(e.reason ?? "")));
  assert.ok(
    entries.some((e) => e.action === "console.signin" && /unknown or revoked/.test(e.reason ?? "")),
  );
  const ok = await app.inject({
    method: "GET",
    url: "/v1/audit?action=console.signin&outcome=allowed",
    headers: bearer(admin),
  });
  assert.ok(ok.json().entries.length >= 1);
});

test("sign-out ends the session on the server; the old cookie is refused", async () => {
  const { cookie, csrf } = await signIn(admin);
  const noCsrf = await app.inject({
    method: "DELETE",
    url: "/console/session",
    headers: { cookie, origin: ORIGIN },
  });
  assert.equal(noCsrf.statusCode, 403, "sign-out needs the CSRF token too");
  const out = await app.inject({
    method: "DELETE",
    url: "/console/session",
    headers: { cookie, origin: ORIGIN, "x-csrf-token": csrf },
  });
  assert.equal(out.statusCode, 200, out.body);
  const again = await app.inject({ method: "GET", url: "/v1/keys", headers: { cookie } });
  assert.equal(again.statusCode, 401);
});

test("a session expires after its idle time", async () => {
  const { cookie } = await signIn(admin);
  clock += 61_000;
  const r = await app.inject({ method: "GET", url: "/v1/keys", headers: { cookie } });
  assert.equal(r.statusCode, 401);
  assert.match(r.json().message, /expired or signed out/);
});

test("a forged cookie is refused; an Authorization header wins over a cookie", async () => {
  const forged = await app.inject({
    method: "GET",
    url: "/v1/keys",
    headers: { cookie: "tensorseal-console=abc" },
  });
  assert.equal(forged.statusCode, 401);
  const r = await signIn(reader);
  const both = await app.inject({
    method: "GET",
    url: "/v1/keys",
    headers: { cookie: r.cookie, ...bearer(admin) },
  });
  assert.equal(both.statusCode, 200, "the explicit token decides");
});

test("the console's pages carry a strict CSP and framing, sniffing and referrer headers; no inline script", async () => {
  const r = await app.inject({ method: "GET", url: "/console/" });
  assert.equal(r.statusCode, 200);
  const csp = String(r.headers["content-security-policy"]);
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(r.headers["x-frame-options"], "DENY");
  assert.equal(r.headers["x-content-type-options"], "nosniff");
  assert.equal(r.headers["referrer-policy"], "no-referrer");
  assert.doesNotMatch(r.body, /<script>|<script(?![^>]*\ssrc=)[^>]*>/, "every script has a src");
  assert.doesNotMatch(r.body, /<style|style=/);
  const js = await app.inject({ method: "GET", url: "/console/app.js" });
  assert.equal(js.statusCode, 200);
  assert.match(String(js.headers["content-type"]), /javascript/);
});

test("without ServerOptions.console there is no console and cookies authenticate nothing", async () => {
  const t = sqliteDb();
  const d = await t.open();
  const plain = await server(d, { sweepEveryMs: 0 });
  try {
    assert.equal((await plain.inject({ method: "GET", url: "/console/" })).statusCode, 404);
    const s = await plain.inject({
      method: "POST",
      url: "/console/session",
      payload: { token: admin },
    });
    assert.equal(s.statusCode, 404);
  } finally {
    await plain.close();
    await d.close();
    await t.drop();
  }
});

test("the session routes are in the OpenAPI document; the static files are not", async () => {
  const doc = (await app.inject("/openapi.json")).json();
  assert.deepEqual(Object.keys(doc.paths["/console/session"]).sort(), ["delete", "get", "post"]);
  assert.ok(
    !Object.keys(doc.paths).some((p) => p.startsWith("/console/") && p !== "/console/session"),
  );
});

test("a sign-in posted from another origin is refused (login CSRF); same origin and no Origin pass", async () => {
  const post = (headers: Record<string, string>) =>
    app.inject({ method: "POST", url: "/console/session", headers, payload: { token: admin } });
  const foreign = await post({ origin: "https://evil.example" });
  assert.equal(foreign.statusCode, 403);
  assert.equal(foreign.cookies.length, 0);
  assert.equal((await post({ origin: ORIGIN })).statusCode, 200);
  assert.equal((await post({})).statusCode, 200);
});
