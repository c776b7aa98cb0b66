/**
 * `doctor --server` asks the service's API through one client per run: every API check (keys,
 * overview findings, policies, audit) goes over one TLS connection, counted on a real loopback
 * service; the certificate check (check-tls.ts) makes its own, the only other one.
 */
import assert from "node:assert/strict";
import type { Server } from "node:https";
import { after, before, test } from "node:test";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { type CliService, cliService, token } from "../service/helpers.js";

let s: Sandbox;
let svc: CliService;
before(async () => {
  s = sandbox();
  svc = await cliService(s);
});
after(async () => {
  await svc?.close();
  s.cleanup();
});

test("doctor --server: one TLS connection for all API checks (plus the certificate probe)", async () => {
  const server = svc.app.server as Server;
  let handshakes = 0;
  const paths: string[] = [];
  const onTls = () => handshakes++;
  const onRequest = (req: { url?: string }) => paths.push(String(req.url));
  server.on("secureConnection", onTls);
  server.on("request", onRequest);
  try {
    const env = { ...svc.env, TENSORSEAL_SERVER_TOKEN: await token(svc.db, "admin") };
    const r = await s.runAsync(["doctor", "--json", "--fail-on", "none"], env);
    assert.equal(r.status, 0, r.stderr);
    // Every API check did ask the service: the count is low because they share, not skip.
    for (const p of ["/v1/keys", "/v1/overview", "/v1/policies", "/v1/audit/checkpoints"])
      assert.ok(
        paths.some((q) => q.startsWith(p)),
        `${p} was asked (${paths.join(" ")})`,
      );
    assert.ok(paths.length >= 4);
    assert.equal(handshakes, 2, `${handshakes} TLS connections for ${paths.length} requests`);
  } finally {
    server.off("secureConnection", onTls);
    server.off("request", onRequest);
  }
});
