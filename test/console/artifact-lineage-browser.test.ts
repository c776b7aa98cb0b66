/**
 * The artifact inventory's reseal lineage in headless Chromium against a real key service over
 * HTTPS on loopback: a file registered, then resealed and registered as its successor
 * (POST /v1/artifacts/successors); the old row says "superseded by" the new id, the new row
 * "supersedes" the old, each linking to that artifact's audit trail; axe-core on the view.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { sealFile } from "../../src/engine/index.js";
import { parseHeader } from "../../src/format/header.js";
import type { Recipient } from "../../src/format/stanza.js";
import {
  SERVICE_STANZA,
  serviceStanzaDigest,
  stanzaFromWire,
  stanzaToWire,
} from "../../src/keys/service/index.js";
import { headerBase64 } from "../../src/keys/service/registry.js";
import { bearer, token } from "../service/helpers.js";
import { assertAccessible, chromiumSkip, consoleSuite, screenshot } from "./browser.js";

const skip = chromiumSkip("the artifact lineage test");

describe("Artifact lineage in Chromium", { skip }, () => {
  const web = consoleSuite();
  let admin: string;
  let oldId: string;
  let newId: string;

  const post = async (url: string, payload: object) => {
    const r = await web.svc.app.inject({ method: "POST", url, headers: bearer(admin), payload });
    assert.equal(r.statusCode, 200, r.body);
    return r.json();
  };

  /** A file sealed to the service key `m` in-process; its header (base64) and service stanza. */
  async function sealed(name: string) {
    const service: Recipient = {
      id: "service:m",
      matches: () => false,
      wrap: async (fk) =>
        stanzaFromWire(
          (
            await post("/v1/datakeys/wrap", {
              key: "m",
              fileKey: Buffer.from(fk).toString("base64"),
            })
          ).stanza,
        ),
    };
    const input = join(web.sb.dir, name);
    writeFileSync(input, randomBytes(1000));
    await sealFile(input, `${input}.tseal`, { recipients: [service] });
    const header = await headerBase64(`${input}.tseal`);
    const s = parseHeader(Buffer.from(header, "base64")).stanzas.find(
      (x) => x.type === SERVICE_STANZA,
    )!;
    return { header, stanza: stanzaToWire(s), digest: serviceStanzaDigest(s) };
  }

  before(async () => {
    admin = await token(web.svc.db, "admin,wrap,unwrap");
    await post("/v1/keys", { name: "m" });
    const v1 = await sealed("model-v1");
    oldId = (
      await post("/v1/artifacts", {
        digest: `sha256:${"c".repeat(64)}`,
        key: "m",
        version: 1,
        labels: { team: "ml" },
        stanzaDigest: v1.digest,
        location: "/models/m.tseal",
      })
    ).id;
    const v2 = await sealed("model-v2");
    const next = await post("/v1/artifacts/successors", {
      from: v1.stanza,
      header: v2.header,
      location: "/models/m-resealed.tseal",
    });
    assert.equal(next.supersedes, oldId);
    newId = next.id;
  });

  test("the old artifact is marked superseded by the new one, the new one supersedes it", async () => {
    const page = await web.signedIn(admin);
    await page.getByRole("link", { name: "Artifacts" }).click();
    const table = page.getByTestId("artifacts-table");
    await table.waitFor();
    // A row by its own id (the header cell), not by an id in another row's lineage.
    const row = (id: string) =>
      table.locator("tbody tr", { has: page.locator("th", { hasText: id }) });
    const was = row(oldId).getByTestId("superseded-by");
    assert.match((await was.textContent()) ?? "", new RegExp(`^superseded by ${newId}`));
    assert.equal(
      await was.getByRole("link").getAttribute("href"),
      `#/audit?artifact=${encodeURIComponent(newId)}`,
    );
    assert.match((await row(oldId).getAttribute("class")) ?? "", /superseded/);
    const is = table.getByTestId("supersedes");
    assert.equal(await is.count(), 1);
    assert.equal((await is.textContent())?.trim(), `supersedes ${oldId}`);
    assert.equal(await table.getByTestId("superseded-by").count(), 1, "the new one is current");
    await assertAccessible(page, "artifacts with lineage");
    await screenshot(page, "artifacts-lineage");
  });
});
