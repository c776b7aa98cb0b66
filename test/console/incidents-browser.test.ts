/**
 * Incidents and drills in the console, in headless Chromium against a real key service over
 * HTTPS on loopback: an admin opens an incident with the form, adds a note, closes it with a
 * resolution and sees it closed in the list, next to the drill history; a reader sees the same
 * incidents and drills but no Open, Add note or Close, and the API refuses the reader's change
 * and a change without the CSRF token (nothing changed). axe-core on the list and the detail.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import type { Page } from "playwright-core";
import { token } from "../service/helpers.js";
import { assertAccessible, chromiumSkip, consoleSuite, screenshot } from "./browser.js";

const skip = chromiumSkip("the console tests");

describe("incidents and drills in the console (Chromium)", { skip }, () => {
  const web = consoleSuite();
  let admin: string;
  let reader: string;

  before(async () => {
    admin = await token(web.svc.db, "admin");
    reader = await token(web.svc.db, "reader");
    await web.api("POST", "/v1/drills", admin, {
      records: [
        {
          scenario: "insider-burst",
          result: "pass",
          detectMs: 31.2,
          containMs: 33.9,
          durationMs: 1200,
          time: "2026-12-05T08:00:00.000Z",
          version: "0.1.0",
          database: "sqlite",
          checks: { passed: 4, total: 4 },
          failed: [],
        },
      ],
    });
  });

  const signedIn = (tok: string) => web.signedIn(tok, { width: 1280, height: 900 });

  /** A POST from the page itself (same origin, the session cookie; the CSRF token if asked). */
  function pagePost(page: Page, path: string, body: object, withCsrf: boolean) {
    return page.evaluate(
      async ({ path, body, withCsrf }) => {
        const s = (await (await fetch("/console/session")).json()) as { csrf: string };
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (withCsrf) headers["x-csrf-token"] = s.csrf;
        const r = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
        return { status: r.status, body: await r.text() };
      },
      { path, body, withCsrf },
    );
  }

  test("an admin opens an incident, adds a note, closes it; the list shows it closed", async () => {
    const page = await signedIn(admin);
    await page.getByRole("link", { name: "Incidents & drills" }).click();
    await page.getByRole("heading", { level: 1, name: "Incidents and drills" }).waitFor();
    await page.getByTestId("drill").filter({ hasText: "insider-burst" }).waitFor();
    await page.getByLabel("Title", { exact: true }).fill("Leaked deploy token");
    await page.getByLabel("Severity", { exact: true }).selectOption("critical");
    await page.getByLabel(/^Scope/).fill("principal:token:deploy\nkey:model-a@2");
    await page
      .getByLabel("Summary", { exact: true })
      .fill("The deploy token was printed in a public build log.");
    await assertAccessible(page, "incidents with the open form");
    await page.getByRole("button", { name: "Open incident" }).click();
    await page.getByRole("link", { name: "Follow it" }).click();

    const h1 = page.getByRole("heading", { level: 1, name: /^Incident inc-\d{8}-[0-9a-f]{8}$/ });
    await h1.waitFor();
    const id = (await h1.textContent())!.replace("Incident ", "");
    assert.equal(await page.getByTestId("incident-state").textContent(), "open");
    await page.getByLabel("Note", { exact: true }).fill("Token revoked; rotating model-a.");
    await page.getByRole("button", { name: "Add note" }).click();
    await page
      .getByTestId("note")
      .filter({ hasText: "Token revoked; rotating model-a." })
      .waitFor();
    await page
      .getByLabel("Resolution", { exact: true })
      .fill("Token revoked, model-a rotated, files resealed.");
    await assertAccessible(page, "incident detail");
    await page.getByRole("button", { name: "Close incident" }).click();
    await page.getByTestId("closed").filter({ hasText: "files resealed" }).waitFor();
    assert.equal(await page.getByTestId("incident-state").textContent(), "closed");
    assert.equal(await page.getByRole("button", { name: "Add note" }).count(), 0);
    await screenshot(page, "incident-detail");

    // On the service, as the API tells it: the record, the note, who did what.
    const shown = await web.api("GET", `/v1/incidents/${id}`, reader);
    assert.equal(shown.incident.state, "closed");
    assert.equal(shown.incident.severity, "critical");
    assert.deepEqual(shown.incident.scope, [
      { kind: "principal", value: "token:deploy" },
      { kind: "key", value: "model-a", version: 2 },
    ]);
    assert.equal(shown.notes.length, 1);

    await page.getByRole("link", { name: "← Incidents and drills" }).click();
    const row = page.getByTestId("service-incident").filter({ hasText: id });
    await row.waitFor();
    assert.equal(await row.getByTestId("state").textContent(), "closed");
    await screenshot(page, "incidents-service");

    // A change without the CSRF token is refused, and changes nothing.
    const open = await web.api("POST", "/v1/incidents", admin, {
      title: "second",
      severity: "medium",
      scope: [],
      summary: "still open",
    });
    const noCsrf = await pagePost(page, `/v1/incidents/${open.id}/notes`, { text: "x" }, false);
    assert.equal(noCsrf.status, 403, noCsrf.body);
    assert.match(noCsrf.body, /CSRF/);
    assert.equal((await web.api("GET", `/v1/incidents/${open.id}`, admin)).notes.length, 0);
  });

  test("a reader sees incidents and drills but no Open, Add note or Close; the API refuses them", async () => {
    const open = await web.api("POST", "/v1/incidents", admin, {
      title: "for the reader",
      severity: "high",
      scope: [{ kind: "key", value: "model-b" }],
      summary: "open, so an admin would see the forms",
    });
    const page = await signedIn(reader);
    await page.getByRole("link", { name: "Incidents & drills" }).click();
    await page.getByTestId("service-incident").filter({ hasText: open.id }).waitFor();
    await page.getByTestId("drill").filter({ hasText: "insider-burst" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Open incident" }).count(), 0);
    assert.equal(await page.getByRole("heading", { name: "Open an incident" }).count(), 0);

    await page.getByRole("link", { name: open.id }).click();
    await page.getByRole("heading", { level: 1, name: `Incident ${open.id}` }).waitFor();
    assert.equal(await page.getByTestId("incident-state").textContent(), "open");
    assert.equal(await page.getByRole("button", { name: "Add note" }).count(), 0);
    assert.equal(await page.getByRole("button", { name: "Close incident" }).count(), 0);
    await assertAccessible(page, "incident detail (reader)");

    const post = (path: string, body: object) => pagePost(page, path, body, true);
    const refused = [
      await post("/v1/incidents", { title: "r", severity: "high", scope: [], summary: "r" }),
      await post(`/v1/incidents/${open.id}/notes`, { text: "from a reader" }),
      await post(`/v1/incidents/${open.id}/close`, { resolution: "reader" }),
    ];
    for (const r of refused) assert.equal(r.status, 403, r.body);
    const after_ = await web.api("GET", `/v1/incidents/${open.id}`, admin);
    assert.equal(after_.incident.state, "open");
    assert.equal(after_.notes.length, 0);
  });
});
