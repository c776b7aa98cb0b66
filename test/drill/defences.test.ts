/**
 * A drill that passes without its defence is worthless: each scenario is run with one of its
 * defences switched off (an injected misconfiguration) and must then FAIL, naming the check
 * that did not hold. Run in-process (the sandboxes' services listen on loopback).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { runScenario, SCENARIOS, scenarioNamed } from "../../src/drill/index.js";

const CASES: [scenario: string, weakening: string, failing: RegExp][] = [
  ["stolen-version", "no-min-version", /^service: version 1 is refused/],
  ["stolen-version", "no-rewrap", /^local: the stolen version 1 no longer opens/],
  ["insider-burst", "no-auto-block", /^the principal is blocked$/],
  ["insider-burst", "no-anomaly", /^a rate alert within/],
  ["unknown-endpoint", "no-attestation-policy", /^a plain unwrap from the unknown endpoint/],
  ["unknown-endpoint", "no-first-seen", /^a first-seen alert/],
  ["audit-rollback", "no-anchor", /^the rollback from entry \d+ to \d+ is reported$/],
  ["leaked-file-key", "rewrap-instead", /^the leaked file key opens no current file$/],
  [
    "leaked-file-key",
    "no-contain",
    /^the compromised partner.s token is refused after containment$/,
  ],
];

test("every weakening a scenario declares is covered here", () => {
  const declared = SCENARIOS.flatMap((s) => Object.keys(s.weakenings).map((w) => `${s.name}/${w}`));
  assert.deepEqual(declared.sort(), CASES.map(([s, w]) => `${s}/${w}`).sort());
});

for (const [name, weakening, failing] of CASES) {
  test(`${name} FAILS with ${weakening}`, async () => {
    const r = await runScenario(scenarioNamed(name)!, { weaken: { [name]: [weakening] } });
    assert.equal(r.error, undefined, r.error);
    assert.equal(r.result, "fail", JSON.stringify(r.checks));
    assert.deepEqual(r.weakened, [weakening]);
    const notHeld = r.checks.filter((c) => !c.ok).map((c) => c.name);
    assert.ok(
      notHeld.some((c) => failing.test(c)),
      `expected a failed check matching ${failing}: ${JSON.stringify(notHeld)}`,
    );
    // The drill is genuine: the checks that show the attack is real still held.
    for (const c of r.checks.filter((x) => /the attack is real/.test(x.name)))
      assert.ok(c.ok, c.name);
  });
}

test("an unknown weakening is refused", async () => {
  await assert.rejects(
    runScenario(scenarioNamed("lost-root")!, { weaken: { "lost-root": ["nope"] } }),
    /no defence named nope/,
  );
});
