/**
 * `tensorseal incident` with --server mirrors the incident on the key service (the console's
 * record): open records it under the same id, contain adds a timeline note, close closes it
 * with the note as resolution. A token the service refuses (a reader) still opens the incident
 * locally, with a warning (the response is never held up by the console's record).
 * `drill run` with a server records its results there (GET /v1/drills), `--no-record` nowhere.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { bearer } from "../service/helpers.js";
import { type IncidentService, startIncidentService } from "./fixture.js";

let fx: IncidentService;
before(async () => {
  const r = await startIncidentService({
    db: "SQLite",
    tokens: { admin: ["admin", "wrap", "unwrap", "audit"], writer: ["wrap"], reader: ["reader"] },
    key: "weights",
    models: [],
    modelBytes: 0,
  });
  assert.notEqual(typeof r, "string", String(r));
  fx = r as IncidentService;
});
after(async () => {
  await fx?.close();
});

const show = async (id: string) => {
  const r = await fx.app.inject({
    method: "GET",
    url: `/v1/incidents/${id}`,
    headers: bearer(fx.tok.reader!.token),
  });
  return { status: r.statusCode, body: r.json() };
};

test("open, contain and close with --server: the service's incident follows the local one", async () => {
  const opened = await fx.ok([
    "incident",
    "open",
    "--scope",
    `principal:${fx.tok.writer!.id}`,
    "--reason",
    "token in a public log",
  ]);
  const id = opened.stdout.trim();
  assert.doesNotMatch(opened.stderr, /warning/);
  let s = await show(id);
  assert.equal(s.status, 200);
  assert.equal(s.body.incident.title, `credential-compromise: principal:${fx.tok.writer!.id}`);
  assert.equal(s.body.incident.summary, "token in a public log");
  assert.equal(s.body.incident.severity, "high");
  assert.equal(s.body.incident.openedBy, fx.tok.admin!.id, "opened by the responder's token");

  await fx.ok(["incident", "contain", id]);
  s = await show(id);
  assert.equal(s.body.notes.length, 1);
  assert.match(s.body.notes[0].text, /^contained at .*block/);

  await fx.ok(["incident", "close", id, "--force", "--note", "token revoked, nothing opened"]);
  s = await show(id);
  assert.equal(s.body.incident.state, "closed");
  assert.equal(s.body.incident.resolution, "token revoked, nothing opened");
  assert.equal(fx.record(id).state, "closed");
});

test("a token the service refuses: the incident opens locally, with a warning", async () => {
  const r = await fx.cli(
    ["incident", "open", "--scope", "principal:token:someone", "--reason", "suspected"],
    "reader",
  );
  assert.equal(r.status, 0, r.stderr);
  const id = r.stdout.trim();
  assert.equal(fx.record(id).state, "open");
  assert.match(r.stderr, /warning: not recorded on the key service .*\/v1\/incidents/);
  assert.equal((await show(id)).status, 404);
});

test("drill run with a server records on it; --no-record records nowhere", async () => {
  const list = async () =>
    (
      await fx.app.inject({
        method: "GET",
        url: "/v1/drills",
        headers: bearer(fx.tok.reader!.token),
      })
    ).json().drills as { scenario: string; result: string; recordedBy: string }[];
  await fx.ok(["drill", "run", "stolen-version", "--no-record"]);
  assert.equal((await list()).length, 0);
  const r = await fx.ok(["drill", "run", "stolen-version"]);
  assert.match(r.stdout, /recorded on https:\/\/127\.0\.0\.1:/);
  const drills = await list();
  assert.equal(drills.length, 1);
  assert.equal(drills[0]!.scenario, "stolen-version");
  assert.equal(drills[0]!.result, "pass");
  assert.equal(drills[0]!.recordedBy, fx.tok.admin!.id);
});
