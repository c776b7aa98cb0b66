/**
 * Incidents and drill history on the service, on SQLite and PostgreSQL: an admin opens an
 * incident, follows it with notes and closes it; the list pages newest first; a reader sees
 * everything and is refused every change (403, audited, nothing changed); a closed incident
 * takes no note and no second close; drill results recorded and listed. Every change audited.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { bearer, describeEachDb, lastAuditEntry, server, token } from "./helpers.js";

const drillRecord = (scenario: string, result: "pass" | "fail", time: string) => ({
  format: "tensorseal-drill/1",
  scenario,
  result,
  detectMs: 12.5,
  containMs: result === "pass" ? 40 : null,
  durationMs: 900,
  time,
  version: "0.1.0",
  database: "sqlite",
  checks: { passed: result === "pass" ? 3 : 2, total: 3 },
  failed: result === "pass" ? [] : ["blocked"],
});

describeEachDb("incidents and drills on the service", (suite) => {
  let app: FastifyInstance;
  let admin: string;
  let reader: string;
  let clock = Date.parse("2026-11-30T09:00:00Z");
  const call = (method: "GET" | "POST", url: string, tok: string, payload?: object) =>
    app.inject({ method, url, headers: bearer(tok), ...(payload ? { payload } : {}) });
  const open = (tok: string, title = "leaked CI token") =>
    call("POST", "/v1/incidents", tok, {
      title,
      severity: "high",
      scope: [
        { kind: "principal", value: "ci:deploy" },
        { kind: "key", value: "models", version: 2 },
      ],
      summary: "the deploy token was printed in a public build log",
    });

  before(async () => {
    if (suite.skip) return;
    app = await server(suite.db, { sweepEveryMs: 0, now: () => clock });
    admin = await token(suite.db, "admin");
    reader = await token(suite.db, "reader");
  });
  after(async () => {
    if (suite.skip) return;
    await app.close();
  });

  test("open, follow with notes, close: the record, its timeline and the audit", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    const o = await open(admin);
    assert.equal(o.statusCode, 200, o.body);
    const inc = o.json();
    assert.match(inc.id, /^inc-20261130-[0-9a-f]{8}$/);
    assert.equal(inc.state, "open");
    assert.deepEqual(inc.scope[1], { kind: "key", value: "models", version: 2 });
    const opened = await lastAuditEntry<{ action: string; resource: Record<string, unknown> }>(
      suite.db,
    );
    assert.equal(opened.action, "incidents.open");
    assert.equal(opened.resource.incident, inc.id);

    clock += 60_000;
    const n = await call("POST", `/v1/incidents/${inc.id}/notes`, admin, {
      text: "token revoked; rotating models",
    });
    assert.equal(n.statusCode, 200, n.body);
    assert.equal(n.json().at, "2026-11-30T09:01:00.000Z");
    assert.equal((await lastAuditEntry<{ action: string }>(suite.db)).action, "incidents.note");

    clock += 60_000;
    const cl = await call("POST", `/v1/incidents/${inc.id}/close`, admin, {
      resolution: "token revoked, key rotated, files resealed",
    });
    assert.equal(cl.statusCode, 200, cl.body);
    assert.equal(cl.json().state, "closed");
    assert.equal(cl.json().closed, "2026-11-30T09:02:00.000Z");
    assert.equal((await lastAuditEntry<{ action: string }>(suite.db)).action, "incidents.close");

    const show = await call("GET", `/v1/incidents/${inc.id}`, reader);
    assert.equal(show.statusCode, 200, show.body);
    assert.equal(show.json().incident.resolution, "token revoked, key rotated, files resealed");
    assert.deepEqual(
      show.json().notes.map((x: { text: string }) => x.text),
      ["token revoked; rotating models"],
    );

    // Closed: no more notes, no second close (409), and the record is unchanged.
    const late = await call("POST", `/v1/incidents/${inc.id}/notes`, admin, { text: "late" });
    assert.equal(late.statusCode, 409, late.body);
    const again = await call("POST", `/v1/incidents/${inc.id}/close`, admin, {
      resolution: "again",
    });
    assert.equal(again.statusCode, 409, again.body);
    const after_ = (await call("GET", `/v1/incidents/${inc.id}`, admin)).json();
    assert.equal(after_.notes.length, 1);
    assert.equal(after_.incident.resolution, "token revoked, key rotated, files resealed");
  });

  test("a reader lists and shows but cannot open, note or close: 403, audited, nothing changed", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    const inc = (await open(admin, "reader target")).json();
    const before_ = (await call("GET", "/v1/incidents", reader)).json().incidents.length;

    const refused = [
      await open(reader, "by a reader"),
      await call("POST", `/v1/incidents/${inc.id}/notes`, reader, { text: "from a reader" }),
      await call("POST", `/v1/incidents/${inc.id}/close`, reader, { resolution: "reader" }),
    ];
    for (const r of refused) {
      assert.equal(r.statusCode, 403, r.body);
      const e = await lastAuditEntry<{ outcome: string; authz: { decision: string } }>(suite.db);
      assert.equal(e.outcome, "denied");
      assert.equal(e.authz.decision, "deny");
    }
    const list = (await call("GET", "/v1/incidents", reader)).json().incidents;
    assert.equal(list.length, before_, "no incident opened by the reader");
    const show = (await call("GET", `/v1/incidents/${inc.id}`, reader)).json();
    assert.equal(show.incident.state, "open");
    assert.deepEqual(show.notes, []);
  });

  test("the list pages newest first and filters by state; unknown ids are 404, bad ones 400", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      clock += 1000;
      ids.push((await open(admin, `paged ${i}`)).json().id);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const r = await call(
        "GET",
        `/v1/incidents?state=open&limit=2${cursor ? `&cursor=${cursor}` : ""}`,
        reader,
      );
      assert.equal(r.statusCode, 200, r.body);
      const page = r.json();
      assert.ok(page.incidents.length <= 2);
      seen.push(...page.incidents.map((x: { id: string }) => x.id));
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(seen.slice(0, 5), [...ids].reverse(), "newest first, each once");
    assert.equal(new Set(seen).size, seen.length);
    const closed = (await call("GET", "/v1/incidents?state=closed", reader)).json().incidents;
    assert.ok(closed.every((x: { state: string }) => x.state === "closed"));
    assert.ok(closed.length >= 1);

    assert.equal((await call("GET", "/v1/incidents/inc-20260101-00000000", admin)).statusCode, 404);
    assert.equal((await call("GET", "/v1/incidents/..%2Fkeys", admin)).statusCode, 400);
    const blank = await call("POST", "/v1/incidents", admin, {
      title: "   ",
      severity: "high",
      scope: [],
      summary: "x",
    });
    assert.equal(blank.statusCode, 400, "a title of blanks only is refused");
    const nul = await call("POST", "/v1/incidents", admin, {
      title: "a\u0000b",
      severity: "high",
      scope: [],
      summary: "x",
    });
    assert.equal(nul.statusCode, 400, "a NUL (which PostgreSQL cannot store) is a bad request");
    const dup = await call("POST", "/v1/incidents", admin, {
      id: ids[0],
      title: "dup",
      severity: "medium",
      scope: [],
      summary: "x",
    });
    assert.equal(dup.statusCode, 409, "an existing id is not overwritten");
  });

  test("drill results: an admin records, a reader lists newest first and cannot record", async (c) => {
    if (suite.skip) return c.skip(suite.skip);
    const r = await call("POST", "/v1/drills", admin, {
      records: [
        drillRecord("stolen-version", "pass", "2026-12-04T10:00:00.000Z"),
        drillRecord("insider-burst", "fail", "2026-12-05T08:00:00.000Z"),
      ],
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().ids.length, 2);
    assert.equal((await lastAuditEntry<{ action: string }>(suite.db)).action, "drills.record");

    const denied = await call("POST", "/v1/drills", reader, {
      records: [drillRecord("stolen-version", "pass", "2026-12-05T09:00:00.000Z")],
    });
    assert.equal(denied.statusCode, 403, denied.body);

    const list = await call("GET", "/v1/drills", reader);
    assert.equal(list.statusCode, 200, list.body);
    const drills = list.json().drills;
    assert.deepEqual(
      drills.map((d: { scenario: string }) => d.scenario),
      ["insider-burst", "stolen-version"],
      "newest first; the reader's record is not there",
    );
    assert.equal(drills[0].result, "fail");
    assert.equal(drills[0].containMs, null);
    assert.deepEqual(drills[0].failed, ["blocked"]);
    assert.equal(drills[1].detectMs, 12.5);
    assert.match(drills[1].recordedBy, /^token:/);
    const page = (await call("GET", "/v1/drills?limit=1", reader)).json();
    assert.equal(page.drills.length, 1);
    const next = (await call("GET", `/v1/drills?limit=1&cursor=${page.nextCursor}`, reader)).json();
    assert.equal(next.drills[0].scenario, "stolen-version");
    const bad = await call("POST", "/v1/drills", admin, {
      records: [{ ...drillRecord("x", "pass", "yesterday") }],
    });
    assert.equal(bad.statusCode, 400, "a time that is not ISO 8601 is refused");
  });
});
