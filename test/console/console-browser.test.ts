/**
 * The console in a real browser (headless Chromium) against a real key service over HTTPS on
 * loopback: sign-in and cookie flags, find and rotate a key, a destroy requested by admin A and
 * approved by admin B (A's own approval refused), an alert after an unwrap burst and the
 * unblock, audit filters, a reader who sees no admin actions and whom the API refuses, CSP and
 * CSRF enforced in the browser, and axe-core on every view.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { before, describe, test } from "node:test";
import type { Locator, Page } from "playwright-core";
import { type Database, TokenRepo } from "../../src/service/index.js";
import { bearer, token } from "../service/helpers.js";
import { assertAccessible, chromiumSkip, consoleSuite, screenshot } from "./browser.js";

const skip = chromiumSkip("the console tests");

describe("web console in Chromium", { skip }, () => {
  const web = consoleSuite({
    approvals: { required: { destroy: 2 } },
    // A burst of 5 keys in a minute alerts and blocks (no warm-up, no first-seen alerts).
    anomaly: { warmupMinutes: 0, minRate: 5, rateFactor: 2, firstSeen: false, autoBlock: true },
  });
  let db: Database;
  let adminA: string;
  let adminB: string;
  let reader: string;
  let auditor: string;
  let unwrapper: string;

  before(async () => {
    db = web.svc.db;
    adminA = await token(db, "admin");
    adminB = await token(db, "admin");
    reader = await token(db, "reader");
    auditor = await token(db, "audit");
    unwrapper = await token(db, "wrap,unwrap,writer");
    for (const name of ["model-a", "model-b"]) await post("/v1/keys", adminA, { name });
    await post("/v1/artifacts", unwrapper, {
      id: "llama-7b",
      digest: `sha256:${createHash("sha256").update("llama").digest("hex")}`,
      key: "model-a",
      version: 1,
      labels: { team: "ml" },
      location: "s3://models/llama-7b.tseal",
    });
  });

  const post = (url: string, tok: string, payload: object = {}) =>
    web.api("POST", url, tok, payload);
  const signedIn = (tok: string) => web.signedIn(tok);

  /** A fetch from the page itself (same origin, the session cookie; CSRF only if asked). */
  async function pageFetch(page: Page, method: string, path: string, withCsrf: boolean) {
    return page.evaluate(
      async ({ method, path, withCsrf }) => {
        const s = (await (await fetch("/console/session")).json()) as { csrf: string };
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (withCsrf) headers["x-csrf-token"] = s.csrf;
        const r = await fetch(path, { method, headers, body: "{}" });
        return { status: r.status, body: await r.text() };
      },
      { method, path, withCsrf },
    );
  }

  test("sign-in: the session cookie is HttpOnly, Secure, SameSite=Strict, __Host-; no token in storage", async () => {
    const page = await signedIn(adminA);
    const cookies = await page.context().cookies();
    assert.equal(cookies.length, 1);
    const c = cookies[0]!;
    assert.equal(c.name, "__Host-tensorseal-console");
    assert.equal(c.httpOnly, true);
    assert.equal(c.secure, true);
    assert.equal(c.sameSite, "Strict");
    assert.equal(c.path, "/");
    const stored = (await page.evaluate(
      "JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie",
    )) as string;
    assert.ok(!stored.includes("tsk_"), "no token in web storage or script-readable cookies");
    await assertAccessible(page, "overview");
    await screenshot(page, "overview");
  });

  test("the sign-in page is accessible, and a wrong token is refused", async () => {
    const page = await web.page();
    await page.goto(`${web.base}/console/`);
    await assertAccessible(page, "sign-in");
    await screenshot(page, "signin");
    await page.getByLabel("API token", { exact: true }).fill(`tsk_${"B".repeat(43)}`);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "unknown or revoked token" }).waitFor();
    assert.deepEqual(await page.context().cookies(), []);
  });

  test("a link followed the moment the shell appears is not lost (before the route listens)", async () => {
    const page = await web.page();
    // Runs as a microtask right after the render that shows the shell: before Preact's effects,
    // where the router used to attach its hashchange listener, so the change went unseen.
    await page.addInitScript(`
      new MutationObserver((_, obs) => {
        if (!document.querySelector('[data-testid="principal"]')) return;
        obs.disconnect();
        location.hash = "#/keys/model-a";
      }).observe(document, { childList: true, subtree: true });
    `);
    await page.goto(`${web.base}/console/`);
    await page.getByLabel("API token", { exact: true }).fill(adminA);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { level: 1, name: "Key model-a" }).waitFor({ timeout: 5000 });
  });

  test("CSP and headers are served, inline script is blocked, every script has a src", async () => {
    const page = await web.page();
    const res = await page.goto(`${web.base}/console/`);
    const h = res!.headers();
    assert.match(h["content-security-policy"] ?? "", /default-src 'self'.*frame-ancestors 'none'/);
    assert.equal(h["x-frame-options"], "DENY");
    assert.equal(h["x-content-type-options"], "nosniff");
    assert.ok(h["strict-transport-security"]);
    assert.equal(
      await page.$$eval("script", (s) =>
        (s as unknown as { src: string }[]).every((x) => x.src !== ""),
      ),
      true,
    );
    // Evaluated over the DevTools protocol (not subject to the CSP); the script element it
    // adds is subject to it.
    const ran = await page.evaluate(`(async () => {
      const violated = new Promise((r) => {
        document.addEventListener("securitypolicyviolation", () => r(true), { once: true });
        setTimeout(() => r(false), 1000);
      });
      const s = document.createElement("script");
      s.textContent = "window.injected = true";
      document.body.append(s);
      return { injected: window.injected === true, violated: await violated };
    })()`);
    assert.deepEqual(ran, { injected: false, violated: true });
  });

  test("create a key, find a key and rotate it", async () => {
    const page = await signedIn(adminA);
    await page.getByRole("link", { name: "Keys", exact: true }).click();
    await page.getByLabel("New key name", { exact: true }).fill("model-c");
    await page.getByLabel("Sensitivity", { exact: true }).selectOption("confidential");
    await page.getByRole("button", { name: "Create key" }).click();
    await page.getByRole("status").filter({ hasText: "Created model-c at v1" }).waitFor();
    await page.getByRole("link", { name: "model-c" }).first().waitFor();
    await page.getByLabel("Find a key", { exact: true }).fill("model-a");
    await assertAccessible(page, "keys");
    await screenshot(page, "keys");
    await page.getByRole("link", { name: "model-a" }).click();
    assert.equal(await page.getByTestId("primary").textContent(), "v1");
    await page.getByRole("button", { name: "Rotate" }).click();
    await page.getByRole("button", { name: "Confirm rotation" }).click();
    await page.getByRole("status").filter({ hasText: "Rotated: primary is now v2" }).waitFor();
    await page.getByTestId("primary").filter({ hasText: "v2" }).waitFor();
    assert.equal(
      await page.getByTestId("version-1").locator("td").nth(3).textContent(),
      "1",
      "one registered file on v1",
    );
    await assertAccessible(page, "key detail");
    await screenshot(page, "key-detail");
  });

  test("CSRF: a state-changing fetch from the page without the CSRF token is refused", async () => {
    const page = await signedIn(adminA);
    const no = await pageFetch(page, "POST", "/v1/keys/model-b/rotate", false);
    assert.equal(no.status, 403, no.body);
    assert.match(no.body, /CSRF/);
    const yes = await pageFetch(page, "POST", "/v1/keys/model-b/rotate", true);
    assert.equal(yes.status, 200, yes.body);
  });

  test("destroy under dual control: A requests, A's own approval is refused, B approves with a comment", async () => {
    const a = await signedIn(adminA);
    await a.goto(`${web.base}/console/#/keys/model-b`);
    await a.getByRole("button", { name: "Schedule destroy v1" }).click();
    await a.getByRole("button", { name: "Confirm destroy" }).click();
    const msg = await a.getByRole("status").filter({ hasText: "Approval request" }).textContent();
    const id = /(apr_[0-9a-f]{24})/.exec(msg ?? "")?.[1];
    assert.ok(id, msg ?? "");
    assert.match(msg!, /needs 2 approvals/);
    await a.getByRole("link", { name: "Approvals" }).click();
    const card = a.getByTestId(`approval-${id}`);
    await card.getByText("Your own request").waitFor();
    assert.equal(await card.getByRole("button", { name: "Approve" }).count(), 0);
    const self = await pageFetch(a, "POST", `/v1/approvals/${id}/approve`, true);
    assert.notEqual(self.status, 200);
    assert.match(self.body, /own approval/);

    const b = await signedIn(adminB);
    await b.getByRole("link", { name: "Approvals" }).click();
    const bc = b.getByTestId(`approval-${id}`);
    const aPrincipal = await a.getByTestId("principal").textContent();
    assert.equal(await bc.getByTestId("requester").textContent(), aPrincipal);
    await assertAccessible(b, "approvals");
    await screenshot(b, "approvals");
    await bc
      .getByLabel("Comment (recorded in the audit log)", { exact: true })
      .fill("checked with the model owner");
    await bc.getByRole("button", { name: "Approve" }).click();
    await b
      .getByRole("status")
      .filter({ hasText: `Approved ${id}: now executed` })
      .waitFor();
    const key = await web.svc.app.inject({
      method: "GET",
      url: "/v1/keys/model-b",
      headers: bearer(adminA),
    });
    assert.equal(key.json().versions[0].state, "scheduled");
  });

  test("audit: filter by key and action finds the approval with its comment; a page downloads", async () => {
    const page = await signedIn(adminB);
    await page.getByRole("link", { name: "Audit" }).click();
    // Exact labels, here and in every console test: right after the click the overview may
    // still be shown, and a substring "Key" matched its "Keys due for rotation" section (failed
    // once in CI: fill() on a <section>). An exact label waits for the audit form's field.
    await page.getByLabel("Key", { exact: true }).fill("model-b");
    await page.getByLabel("Action", { exact: true }).fill("approvals.approve");
    await page.getByRole("button", { name: "Search" }).click();
    const table = page.getByTestId("audit-table");
    // The unfiltered table may already show the comment: wait for the search's own rows.
    await settledColumn(table, 3, (x) => x === "approvals.approve");
    await table.getByText("checked with the model owner").waitFor();
    await page.getByLabel("Outcome", { exact: true }).selectOption("denied");
    await page.getByLabel("Action", { exact: true }).fill("");
    await page.getByLabel("Key", { exact: true }).fill("");
    await page.getByRole("button", { name: "Search" }).click();
    const outcomes = await settledColumn(table, 4, (x) => x === "denied");
    // The CSRF refusal of an earlier test is on record as denied.
    await table.getByText("missing or wrong CSRF token").first().waitFor();
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download this page (JSON Lines)" }).click(),
    ]);
    const lines = readFileSync((await download.path())!, "utf8")
      .trim()
      .split("\n");
    assert.equal(lines.length, outcomes.length);
    assert.ok(lines.every((l) => JSON.parse(l).outcome === "denied"));
    await assertAccessible(page, "audit");
    await screenshot(page, "audit");
  });

  test("audit: the pager goes to the next page of 50 and back", async () => {
    // More than a page of entries, whatever came before: each key listing is audited.
    for (let i = 0; i < 50; i++) await web.api("GET", "/v1/keys", adminB);
    const page = await signedIn(adminB);
    await page.getByRole("link", { name: "Audit" }).click();
    const caption = page.getByTestId("audit-table").locator("caption");
    const previous = page.getByRole("button", { name: "Previous page" });
    const next = page.getByRole("button", { name: "Next page" });
    await caption.getByText("Entries after seq 0 (50 shown, more after)").waitFor();
    assert.equal(await previous.isDisabled(), true);
    await next.click();
    await caption.getByText(/^Entries after seq [1-9]\d* \(/).waitFor();
    assert.equal(await previous.isDisabled(), false);
    await previous.click();
    await caption.getByText("Entries after seq 0 (50 shown, more after)").waitFor();
    assert.equal(await previous.isDisabled(), true);
  });

  test("an unwrap burst raises an alert and blocks the principal; an admin unblocks it", async () => {
    const g = await post("/v1/datakeys/generate", unwrapper, { key: "model-a" });
    for (let i = 0; i < 6; i++) {
      const r = await web.svc.app.inject({
        method: "POST",
        url: "/v1/datakeys/unwrap",
        headers: bearer(unwrapper),
        payload: { stanza: g.stanza },
      });
      if (r.statusCode === 403) break; // blocked by the alert
    }
    assert.ok(await web.svc.app.tensorseal.drainAlerts(5000));
    const page = await signedIn(adminA);
    await page.getByRole("link", { name: "Alerts & principals" }).click();
    await page.getByTestId("alerts-table").getByText("alert.rate").waitFor();
    const blocked = page.getByTestId("blocked");
    await blocked.first().waitFor();
    await assertAccessible(page, "alerts");
    await screenshot(page, "alerts");
    await page.getByRole("button", { name: /^Unblock token:/ }).click();
    await page.getByRole("button", { name: "Confirm unblock" }).click();
    await page.getByText("No principal is blocked.").waitFor();
    await page.getByRole("link", { name: "Overview" }).click();
    assert.match((await page.getByTestId("alert-count").textContent()) ?? "", /^[1-9]/);
    await page.getByTestId("checkpoint-seq").waitFor();
    await screenshot(page, "overview");
  });

  test("an admin blocks a principal (form and alert row); the incidents view follows the containment", async () => {
    const v = await new TokenRepo(db).create(["unwrap"]);
    const victim = `token:${v.id}`;
    const page = await signedIn(adminA);
    await page.getByRole("link", { name: "Alerts & principals" }).click();
    await page.getByTestId("alerts-table").getByText("alert.rate").first().waitFor();
    await page.getByLabel("Principal id", { exact: true }).fill(victim);
    await page
      .getByLabel("Reason (kept in the audit)", { exact: true })
      .fill("incident inc-console-1");
    await page.getByRole("button", { name: "Block principal" }).click();
    await page.getByRole("button", { name: "Confirm block" }).click();
    await page.getByTestId("blocked").filter({ hasText: victim }).waitFor();
    // The service refuses the blocked principal at once.
    const refused = await web.svc.app.inject({
      method: "GET",
      url: "/v1/keys",
      headers: bearer(v.token),
    });
    assert.equal(refused.statusCode, 403);
    assert.match(refused.body, /blocked/);
    const e = JSON.parse(
      (
        await db.db
          .selectFrom("audit")
          .select("entry")
          .where("action", "=", "principals.block")
          .orderBy("seq", "desc")
          .limit(1)
          .executeTakeFirstOrThrow()
      ).entry,
    );
    assert.deepEqual(e.resource, { principal: victim, reason: "incident inc-console-1" });
    // From an alert's row: the principal the alert names (unblocked by the test before).
    const rowBlock = page
      .getByTestId("alerts-table")
      .getByRole("button", { name: /^Block token:/ });
    const who = ((await rowBlock.first().textContent()) ?? "").replace(/^Block /, "");
    await rowBlock.first().click();
    await page.getByRole("button", { name: "Confirm block" }).click();
    await page.getByTestId("blocked").filter({ hasText: who }).waitFor();
    assert.equal(await rowBlock.count(), 0, "no block button for a blocked principal");
    await assertAccessible(page, "alerts with the block form");
    // The incidents view: the incident the block's reason names, still blocked.
    await page.getByRole("link", { name: "Incidents & drills" }).click();
    const inc = page.getByTestId("incident").filter({ hasText: "inc-console-1" });
    await inc.getByText("still blocked").waitFor();
    assert.match((await inc.textContent()) ?? "", new RegExp(victim));
    await page.getByTestId("response-table").getByText("principals.block").first().waitFor();
    await page.getByText("No drill recorded on this service.").waitFor();
    await assertAccessible(page, "incidents");
    await screenshot(page, "incidents");
    // Lift both blocks; the incident shows the block lifted.
    await page.getByRole("link", { name: "Alerts & principals" }).click();
    for (const p of [victim, who]) {
      await page.getByRole("button", { name: `Unblock ${p}` }).click();
      await page.getByRole("button", { name: "Confirm unblock" }).click();
      await page.getByTestId("blocked").filter({ hasText: p }).waitFor({ state: "detached" });
    }
    await page.getByRole("link", { name: "Incidents & drills" }).click();
    await inc.getByText(/block lifted/).waitFor();
    // An auditor follows the incident too, without any block action.
    const aud = await signedIn(auditor);
    await aud.getByRole("link", { name: "Incidents & drills" }).click();
    await aud.getByTestId("incident").filter({ hasText: "inc-console-1" }).waitFor();
    await aud.getByRole("link", { name: "Alerts & principals" }).click();
    await aud.getByTestId("alerts-table").getByText("alert.rate").first().waitFor();
    assert.equal(await aud.getByRole("button", { name: /^Block/ }).count(), 0);
  });

  test("artifacts: the inventory lists the registered file and links to its audit trail", async () => {
    const page = await signedIn(reader);
    await page.getByRole("link", { name: "Artifacts" }).click();
    await page.getByTestId("artifacts-table").getByText("s3://models/llama-7b.tseal").waitFor();
    await assertAccessible(page, "artifacts");
    await screenshot(page, "artifacts");
  });

  test("a reader sees no admin actions, and the API refuses them", async () => {
    const page = await signedIn(reader);
    const denied = () =>
      page.getByRole("main").getByText("Not permitted for your identity").first();
    await page.getByRole("link", { name: "Keys", exact: true }).click();
    await page.getByRole("heading", { level: 1, name: "Keys" }).waitFor();
    await denied().waitFor();
    assert.equal(await page.getByRole("button", { name: "Create key" }).count(), 0);
    const create = await page.evaluate(async () => {
      const s = (await (await fetch("/console/session")).json()) as { csrf: string };
      const r = await fetch("/v1/keys", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": s.csrf },
        body: JSON.stringify({ name: "by-reader" }),
      });
      return r.status;
    });
    assert.equal(create, 403);
    await page.goto(`${web.base}/console/#/keys/model-a`);
    await page.getByRole("heading", { level: 1, name: "Key model-a" }).waitFor();
    await denied().waitFor();
    assert.equal(await page.getByRole("button", { name: "Rotate" }).count(), 0);
    await page.getByRole("link", { name: "Approvals" }).click();
    await page.getByRole("heading", { level: 1, name: "Approvals" }).waitFor();
    await denied().waitFor();
    assert.equal(await page.getByRole("button", { name: "Approve" }).count(), 0);
    await page.getByRole("link", { name: "Alerts & principals" }).click();
    await page.getByRole("heading", { level: 1, name: "Alerts and principals" }).waitFor();
    await denied().waitFor();
    assert.equal(await page.getByRole("button", { name: /^Unblock/ }).count(), 0);
    const rotate = await pageFetch(page, "POST", "/v1/keys/model-a/rotate", true);
    assert.equal(rotate.status, 403, rotate.body);
    const unblock = await pageFetch(page, "POST", "/v1/principals/x/unblock", true);
    assert.equal(unblock.status, 403, unblock.body);
    assert.equal(await page.getByRole("button", { name: /^Block/ }).count(), 0);
    const block = await pageFetch(page, "POST", "/v1/principals/x/block", true);
    assert.equal(block.status, 403, block.body);
    // The summary leaves out every section a reader may not read, and says so.
    await page.getByRole("link", { name: "Overview" }).click();
    for (const s of ["keys", "approvals", "alerts", "blocked", "chain", "findings"])
      await page.getByTestId(`omitted-${s}`).waitFor();
    assert.equal(await page.getByTestId("pending-count").count(), 0);
    assert.equal(await page.getByTestId("checkpoint-seq").count(), 0);
    await page.getByRole("link", { name: "Incidents & drills" }).click();
    await page.getByRole("heading", { level: 1, name: "Incidents and drills" }).waitFor();
    await denied().waitFor();
  });

  test("sign-out ends the session: the cookie no longer reads the API", async () => {
    const page = await signedIn(adminA);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API token", { exact: true }).waitFor();
    const r = await page.evaluate(async () => (await fetch("/v1/keys")).status);
    assert.equal(r, 401);
  });
});

/**
 * Column `col`'s texts once the table has rows and every one passes `ok` (a search's results
 * replaced what was shown), failing with what it showed if that does not happen in 10 s.
 */
async function settledColumn(
  table: Locator,
  col: number,
  ok: (text: string) => boolean,
): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const texts = await table.locator(`tbody tr td:nth-child(${col})`).allTextContents();
    if (texts.length >= 1 && texts.every(ok)) return texts;
    if (Date.now() > deadline) assert.fail(`column ${col} never settled: ${texts.join()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
