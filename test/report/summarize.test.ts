/**
 * The report's audit fold: entries are added one at a time (never held in memory), and the
 * sections it gives are those of the whole window.
 */
import assert from "node:assert/strict";
import test from "node:test";
import { AuditSummary, type Entry, MAX_DENIED_SHOWN } from "../../src/report/summarize.js";

const at = (i: number) => new Date(Date.UTC(2026, 11, 1, 0, 0, i)).toISOString();

test("denials: the total counts all of them, the shown list keeps the latest, oldest first", () => {
  const s = new AuditSummary();
  const n = 3 * MAX_DENIED_SHOWN + 7;
  for (let i = 1; i <= n; i++)
    s.add({ seq: i, ts: at(i), action: "datakeys.unwrap", outcome: "denied", principal: "p" });
  const d = s.denied();
  assert.equal(d.total, n);
  assert.equal(d.shown.length, MAX_DENIED_SHOWN);
  assert.equal(d.shown[0]?.seq, n - MAX_DENIED_SHOWN + 1);
  assert.equal(d.shown.at(-1)?.seq, n);
});

test("releases: batch items count one each, failed items and denials do not", () => {
  const s = new AuditSummary();
  const e = (seq: number, action: string, resource: Record<string, unknown>, outcome = "allowed") =>
    ({ seq, ts: at(seq), action, outcome, principal: "alice", resource }) as Entry;
  s.add(e(1, "datakeys.unwrap", { key: "w", version: 2, artifact: "a1" }));
  s.add(
    e(2, "datakeys.unwrap-batch", {
      items: [
        { key: "w", version: 2, artifact: "a2" },
        { key: "w", version: 1, artifact: "a3", ok: false },
      ],
    }),
  );
  s.add(e(3, "datakeys.unwrap", { key: "w", version: 2, artifact: "a1" }, "denied"));
  s.add(e(4, "keys.rotate", { key: "w" }));
  const r = s.releases();
  assert.equal(r.total, 2);
  assert.deepEqual(
    r.byKey.map((c) => [c.name, c.count]),
    [["w@2", 2]],
  );
  assert.deepEqual(r.byArtifact.map((c) => c.name).sort(), ["a1", "a2"]);
  assert.deepEqual([...s.rotations()], [["w", [at(4)]]]);
});

test("approvals keep each request's latest state; an edited entry without fields is skipped", () => {
  const s = new AuditSummary();
  s.add({} as Entry);
  const r = { approval: "ap1", operation: "destroy", key: "w", requester: "alice" };
  s.add({
    seq: 1,
    ts: at(1),
    action: "approvals.create",
    outcome: "allowed",
    principal: "alice",
    resource: { ...r, state: "pending" },
  });
  s.add({
    seq: 2,
    ts: at(2),
    action: "approvals.approve",
    outcome: "allowed",
    principal: "bob",
    resource: { approval: "ap1", approvers: ["bob"], state: "approved" },
  });
  s.add({
    seq: 3,
    ts: at(3),
    action: "approvals.execute",
    outcome: "allowed",
    principal: "alice",
    resource: { approval: "ap1" },
  });
  const [line, ...rest] = s.approvals();
  assert.equal(rest.length, 0);
  assert.equal(line?.operation, "destroy");
  assert.equal(line?.requester, "alice");
  assert.deepEqual(line?.approvers, ["bob"]);
  assert.equal(line?.state, "executed");
  assert.equal(line?.requested, at(1));
  assert.equal(line?.updated, at(3));
  assert.equal(s.denied().total, 0);
});
