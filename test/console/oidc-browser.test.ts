/**
 * Console sign-in with OIDC (authorization code + PKCE) against a real OIDC provider
 * (`oidc-provider`) on loopback, in headless Chromium: the session's principal is the ID
 * token's subject with its roles, as the service's JWT authenticator sees it; a callback with a
 * state this browser did not start is refused.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { createRemoteJWKSet } from "jose";
import Provider from "oidc-provider";
import type { Browser } from "playwright-core";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { type CliService, cliService } from "../service/helpers.js";
import { chromiumSkip, launch } from "./browser.js";

const skip = chromiumSkip("the OIDC sign-in test");

describe("console OIDC sign-in in Chromium", { skip }, () => {
  let sb: Sandbox;
  let svc: CliService;
  let idp: Server;
  let browser: Browser;
  let base: string;

  before(async () => {
    idp = createServer();
    await new Promise<void>((r) => idp.listen(0, "127.0.0.1", r));
    const issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
    sb = sandbox();
    // The service's port is known only once it listens; the client is registered after.
    const clients: object[] = [];
    svc = await cliService(sb, {
      jwt: { issuer, audience: "console", keys: createRemoteJWKSet(new URL(`${issuer}/jwks`)) },
      console: {
        oidc: { issuer, clientId: "console", clientSecret: "console-test-secret-0123456789" },
      },
    });
    base = svc.env.TENSORSEAL_SERVER!;
    clients.push({
      client_id: "console",
      client_secret: "console-test-secret-0123456789",
      redirect_uris: [`${base}/console/oidc/callback`],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    });
    const provider = new Provider(issuer, {
      clients: clients as never,
      findAccount: async (_ctx: unknown, sub: string) => ({
        accountId: sub,
        claims: async () => ({ sub, roles: ["admin"] }),
      }),
      claims: { openid: ["sub", "roles"] },
      conformIdTokenClaims: false,
      pkce: { required: () => true },
    } as never);
    idp.on("request", provider.callback());
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await svc?.close();
    idp?.close();
    sb?.cleanup();
  });

  test("authorization code + PKCE: signed in as the ID token's subject with its roles", async () => {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    ctx.setDefaultTimeout(20_000);
    const page = await ctx.newPage();
    await page.goto(`${base}/console/`);
    await page.getByRole("link", { name: "Sign in with your identity provider" }).click();
    await page.locator('input[name="login"]').fill("alice");
    await page.locator('input[name="password"]').fill("any");
    await page.locator('button[type="submit"]').click();
    await page.locator('button[type="submit"]').click(); // consent
    await page.getByTestId("principal").waitFor();
    assert.equal(await page.getByTestId("principal").textContent(), "jwt:alice");
    const keys = await page.evaluate(async () => (await fetch("/v1/keys")).status);
    assert.equal(keys, 200, "the ID token's admin role applies");
    const c = (await ctx.cookies()).find((x) => x.name === "__Host-tensorseal-console");
    assert.ok(c?.httpOnly && c.secure && c.sameSite === "Strict");
    await ctx.close();
  });

  test("a callback whose state this browser did not start is refused", async () => {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    const r = await page.goto(`${base}/console/oidc/callback?code=x&state=forged`);
    assert.equal(r?.status(), 401);
    assert.deepEqual(
      (await ctx.cookies()).filter((x) => x.name.includes("tensorseal-console")),
      [],
    );
    await ctx.close();
  });
});
