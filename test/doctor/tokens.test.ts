/**
 * service.token-no-expiry, from a real service database made by `service token create`: a
 * live bootstrap token past --token-days is reported (an error with the admin scope), a young
 * or revoked one is not. The doctor's clock is moved with TENSORSEAL_NOW (a test knob).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { doctorJson, of } from "./helpers.js";

let s: Sandbox;
const ids: Record<string, string> = {};
before(() => {
  s = sandbox();
  assert.equal(s.run(["init"]).status, 0);
  for (const [label, scope] of [
    ["ops", "admin"],
    ["trainer", "wrap,unwrap"],
    ["old", "unwrap"],
  ] as const) {
    const r = s.run(["service", "token", "create", "--scope", scope, "--label", label, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    ids[label] = JSON.parse(r.stdout.toString()).id;
  }
  assert.equal(s.run(["service", "token", "revoke", ids.old!]).status, 0);
});
after(() => s.cleanup());

const inDays = (d: number) => ({
  TENSORSEAL_NOW: new Date(Date.now() + d * 86400_000).toISOString(),
});

test("young tokens: nothing; past --token-days: admin an error, others a warning; revoked never", () => {
  assert.deepEqual(of(doctorJson(s, [], inDays(0)), "service.token-no-expiry"), []);
  const f = of(doctorJson(s, [], inDays(100)), "service.token-no-expiry");
  assert.deepEqual(
    f.map((x) => [x.severity, x.message.split(" has ")[0]]),
    [
      ["error", `bootstrap token ${ids.ops} (ops)`],
      ["warning", `bootstrap token ${ids.trainer} (trainer)`],
    ],
  );
  assert.match(f[0]!.evidence, /scopes admin; not revoked; limit 90 days/);
  assert.match(f[0]!.fix, new RegExp(`tensorseal service token revoke ${ids.ops}`));
  // A longer limit, and the same database named with --db.
  const db = `sqlite:${join(s.dir, "home", "service.db")}`;
  assert.deepEqual(
    of(doctorJson(s, ["--db", db, "--token-days", "200"], inDays(100)), "service.token-no-expiry"),
    [],
  );
  const bad = s.run(["doctor", "--token-days", "soon"]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--token-days must be a whole number/);
});
