/**
 * Endpoint and artifact incidents against a key service on loopback (HTTPS, dev CA, SQLite):
 * an endpoint incident blocks every principal that received file keys from the address and
 * reseals what they opened; an artifact incident (a file key seen in a log) reseals that one
 * artifact and leaves the others alone.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type IncidentService, startIncidentService } from "./fixture.js";

let fx: IncidentService;

before(async () => {
  const r = await startIncidentService({
    db: "SQLite",
    tokens: { admin: ["admin", "wrap", "unwrap", "rewrap", "audit"], writer: ["wrap", "unwrap"] },
    key: "w",
    models: ["a", "b"],
    modelBytes: 30_000,
  });
  assert.equal(typeof r, "object", String(r));
  fx = r as IncidentService;
});

after(() => fx.close());

test("artifact scope: only that artifact is resealed", async () => {
  const { files, dir, ok, record } = fx;
  const id = (
    await ok([
      "incident",
      "open",
      "--scope",
      `artifact:${files.a!.artifact}`,
      "--reason",
      "key in a log",
    ])
  ).stdout.trim();
  assert.equal(record(id).severity, "medium");
  await ok(["incident", "contain", id]);
  assert.equal(record(id).actions[0].id, "note");
  const a = JSON.parse((await ok(["incident", "assess", id, dir, "--json"])).stdout);
  assert.deepEqual(
    a.files.map((f: { file: string; class: string }) => [f.file, f.class]),
    [[files.a!.path, "exposed"]],
  );
  const bBefore = readFileSync(files.b!.path);
  await ok(["incident", "eradicate", id, dir]);
  assert.deepEqual(
    record(id).files.map((f: { file: string; outcome: string }) => [f.file, f.outcome]),
    [[files.a!.path, "resealed"]],
  );
  assert.deepEqual(readFileSync(files.b!.path), bBefore, "the other artifact is untouched");
  assert.equal(record(id).state, "eradicated");
  // The registry followed the reseal: the artifact is kept, superseded by the resealed file,
  // and a new assessment of it finds that file resealed since, not exposed.
  const shown = JSON.parse(
    (await ok(["service", "artifacts", "show", files.a!.artifact, "--json"])).stdout,
  );
  assert.ok(shown.supersededBy, "superseded by the resealed file");
  const again = (
    await ok(["incident", "open", "--scope", `artifact:${files.a!.artifact}`, "--reason", "again"])
  ).stdout.trim();
  await ok(["incident", "contain", again]);
  const a2 = JSON.parse((await ok(["incident", "assess", again, dir, "--json"])).stdout);
  assert.deepEqual(a2.files, [], "the resealed file is not the one whose key was released");
});

test("endpoint scope: every principal that got keys from the address is blocked", async () => {
  const { tok, files, s, dir, ok, cli, record } = fx;
  await ok(["open", files.b!.path, "-o", join(s.dir, "b.out")], "writer");
  const id = (
    await ok(["incident", "open", "--scope", "endpoint:127.0.0.1", "--reason", "host compromised"])
  ).stdout.trim();
  await ok(["incident", "contain", id]);
  const act = record(id).actions.find((x: { id: string }) => x.id === "contain:principals");
  // The writer received keys from there; the responder (admin) resealed `a` from there too,
  // and cannot contain itself: left out and named, not a failure.
  assert.equal(act.state, "done");
  assert.deepEqual(act.detail.principals.sort(), [tok.admin!.id, tok.writer!.id].sort());
  assert.deepEqual(act.detail.skipped, [tok.admin!.id]);
  assert.deepEqual(
    act.detail.contained.map((c: { principal: string; tokenRevoked: boolean }) => [
      c.principal,
      c.tokenRevoked,
    ]),
    [[tok.writer!.id, true]],
  );
  const refused = await cli(["open", files.b!.path, "-o", join(s.dir, "b2.out")], "writer");
  assert.equal(refused.status, 8);
  const a = JSON.parse((await ok(["incident", "assess", id, dir, "--json"])).stdout);
  assert.ok(a.principals.includes(tok.writer!.id));
  assert.deepEqual(a.endpoints, ["127.0.0.1"]);
  await ok(["incident", "eradicate", id, dir]);
  assert.equal(record(id).state, "eradicated");
});
