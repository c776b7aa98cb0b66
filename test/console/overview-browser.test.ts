/**
 * The Overview's doctor findings in headless Chromium against a real key service over HTTPS on
 * loopback: an admin bootstrap token 100 days old and a key past its rotation period show up
 * (and, served without --approvals, dual control off) with their severity, message and fix (axe-core on the view); no bearer token is on the page;
 * a reader's Overview says the section is not permitted. The open incidents (one of two; the
 * other closed) are counted and link to the Incidents view, for the admin and the reader.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { type Database, TokenRepo } from "../../src/service/index.js";
import { bearer, token } from "../service/helpers.js";
import { assertAccessible, chromiumSkip, consoleSuite, screenshot } from "./browser.js";

const skip = chromiumSkip("the overview findings test");

describe("Overview doctor findings in Chromium", { skip }, () => {
  const web = consoleSuite();
  let db: Database;
  let admin: string;
  let reader: string;
  let old: { id: string; token: string };

  before(async () => {
    db = web.svc.db;
    admin = await token(db, "admin");
    reader = await token(db, "reader");
    for (const [method, url, payload] of [
      ["POST", "/v1/keys", { name: "weights" }],
      ["PATCH", "/v1/keys/weights", { rotationPeriod: 86_400 }],
    ] as const) {
      const r = await web.svc.app.inject({ method, url, headers: bearer(admin), payload });
      assert.ok(r.statusCode < 300, r.body);
    }
    for (const title of ["leaked token", "lost laptop"]) {
      const r = await web.svc.app.inject({
        method: "POST",
        url: "/v1/incidents",
        headers: bearer(admin),
        payload: {
          title,
          severity: "high",
          scope: [{ kind: "key", value: "weights" }],
          summary: "s",
        },
      });
      assert.equal(r.statusCode, 200, r.body);
      if (title === "lost laptop") {
        const c = await web.svc.app.inject({
          method: "POST",
          url: `/v1/incidents/${r.json().id}/close`,
          headers: bearer(admin),
          payload: { resolution: "found" },
        });
        assert.equal(c.statusCode, 200, c.body);
      }
    }
    const ago = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
    await db.db
      .updateTable("key_versions")
      .set({ created: ago(3) })
      .execute();
    old = await new TokenRepo(db).create(["admin"], "ci-bot");
    await db.db
      .updateTable("tokens")
      .set({ created: ago(100) })
      .where("id", "=", old.id)
      .execute();
  });

  const signedIn = (tok: string) => web.signedIn(tok);

  test("an admin sees each finding's severity, message and fix; the view is accessible", async () => {
    const page = await signedIn(admin);
    const list = page.getByTestId("findings");
    await list.waitFor();
    const tok = list.locator('[data-finding="service.token-no-expiry"]');
    const key = list.locator('[data-finding="service.key-rotation-overdue"]');
    const tokText = (await tok.textContent()) ?? "";
    assert.match(tokText, /^error/);
    assert.match(tokText, new RegExp(`bootstrap token ${old.id} \\(ci-bot\\)`));
    assert.match(tokText, new RegExp(`Fix: .*token revoke ${old.id}`));
    const keyText = (await key.textContent()) ?? "";
    assert.match(keyText, /^warning/);
    assert.match(keyText, /service key weights: primary version 1 is 3 days old/);
    assert.match(keyText, /Fix: tensorseal service keys rotate-due/);
    // Served without --approvals: destroy and export run on one admin's word.
    const dual = list.locator('[data-finding="service.dual-control-off"]');
    assert.match((await dual.textContent()) ?? "", /^warning.*destroy and export.*--approvals/);
    const html = await page.content();
    for (const secret of [old.token, admin])
      assert.ok(!html.includes(secret), "no bearer token on the page");
    await assertAccessible(page, "overview with findings");
    await screenshot(page, "overview-findings");
  });

  test("the open incidents are counted and link to the Incidents view", async () => {
    for (const tok of [admin, reader]) {
      const page = await signedIn(tok);
      const link = page.getByTestId("incident-count");
      await link.waitFor();
      assert.equal((await link.textContent())?.trim(), "1 open", "two opened, one closed");
      assert.equal(await link.getAttribute("href"), "#/incidents");
      await link.click();
      await page.getByTestId("service-incidents").waitFor();
      const rows = page.getByTestId("service-incident");
      assert.match((await rows.first().textContent()) ?? "", /lost laptop|leaked token/);
    }
  });

  test("a reader's Overview says the findings are not permitted", async () => {
    const page = await signedIn(reader);
    await page.getByTestId("omitted-findings").waitFor();
    assert.equal(await page.getByTestId("findings").count(), 0);
  });
});
