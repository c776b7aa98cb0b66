/**
 * `tensorseal serve` (a real process over HTTPS on loopback) serves the console by default and
 * says where; `--no-console` serves neither its files nor its session routes.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { httpsStatus, startServe } from "../service/serve-process.js";

let sb: Sandbox;

before(() => {
  sb = sandbox();
});

after(() => sb.cleanup());

test("serve: the console is on by default, at /console/, with its CSP; the start-up says where", async () => {
  const s = await startServe(sb);
  try {
    assert.equal(await httpsStatus(s, "GET", "/console/"), 200);
    assert.equal(await httpsStatus(s, "GET", "/console/app.js"), 200);
    assert.equal(await httpsStatus(s, "GET", "/console/session"), 401);
    assert.match(s.stderr(), /web console: https:\/\/127\.0\.0\.1:\d+\/console\//);
  } finally {
    assert.equal(await s.stop(), 0);
  }
});

test("serve --no-console: no console files and no session routes", async () => {
  const s = await startServe(sb, ["--no-console"]);
  try {
    assert.equal(await httpsStatus(s, "GET", "/console/"), 404);
    const signIn = await httpsStatus(s, "POST", "/console/session", {}, '{"token":"x"}');
    assert.equal(signIn, 404);
    assert.match(s.stderr(), /web console off/);
  } finally {
    assert.equal(await s.stop(), 0);
  }
});

test("serve --console-oidc without the --oidc-* flags, or with --no-console, is refused", async () => {
  const base = ["serve", "--dev", "--listen", "127.0.0.1:0"];
  const alone = await sb.runAsync([...base, "--console-oidc"]);
  assert.equal(alone.status, 2, alone.stderr);
  assert.match(alone.stderr, /--console-oidc needs --oidc-issuer/);
  const secret = await sb.runAsync([...base, "--console-oidc-client-secret-file", "x"]);
  assert.equal(secret.status, 2, secret.stderr);
  assert.match(secret.stderr, /needs --console-oidc/);
});
