/**
 * `tensorseal doctor --format sarif` validates against the SARIF 2.1.0 JSON schema (the OASIS
 * "rtm.5" schema, test/fixtures/sarif/SOURCE.md) with Ajv, for a report with findings of every
 * severity and for an empty one; and carries what code scanning needs: every rule in
 * tool.driver.rules, each result's ruleId/ruleIndex/level/message, file URIs as locations.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import AjvModule from "ajv";
import formatsModule from "ajv-formats";
import { RULES } from "../../src/doctor/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { notRuntime, sealOne } from "./helpers.js";

const REPO = new URL("../../../", import.meta.url);
const Ajv = AjvModule.default;
const addFormats = formatsModule.default;

function validator() {
  const schema = JSON.parse(
    readFileSync(new URL("test/fixtures/sarif/sarif-2.1.0-rtm.5.json", REPO), "utf8"),
  );
  // A draft-04 document whose only draft-04 keyword is its top-level `id` (SOURCE.md).
  const { $schema: _draft, id, ...rest } = schema;
  // The schema's language pattern is not valid under the `u` flag Ajv uses by default.
  const ajv = new Ajv({ strict: false, allErrors: true, unicodeRegExp: false });
  addFormats(ajv);
  return ajv.compile({ $id: id, ...rest });
}

let s: Sandbox;
before(() => {
  s = sandbox();
  assert.equal(s.run(["init"]).status, 0);
});
after(() => s.cleanup());

test("the schema validator rejects what is not SARIF (sanity)", () => {
  const validate = validator();
  assert.equal(validate({ version: "2.1.0", runs: [{}] }), false);
  assert.equal(validate({ version: "2.1.0", runs: [{ tool: { driver: {} } }] }), false);
  assert.equal(validate({ version: "2.1.0", runs: [{ tool: { driver: { name: "x" } } }] }), true);
});

test("a report with findings and an empty one both validate; rules, levels and file URIs", () => {
  const validate = validator();
  const dir = join(s.dir, "models");
  mkdirSync(dir, { recursive: true });
  const weak = sealOne(s, dir, "weak", ["--passphrase"], {
    TENSORSEAL_PASSPHRASE: "pw",
    TENSORSEAL_SCRYPT_WORK_FACTOR: "10",
  });
  const broken = join(dir, "broken.tseal");
  writeFileSync(broken, "not sealed");
  chmodSync(s.env.TENSORSEAL_ROOT_KEY_FILE!, 0o644);
  let log: {
    runs: {
      tool: { driver: { rules: { id: string; defaultConfiguration: { level: string } }[] } };
      results: {
        ruleId: string;
        ruleIndex: number;
        level: string;
        message: { text: string };
        locations?: { physicalLocation: { artifactLocation: { uri: string } } }[];
      }[];
    }[];
  };
  try {
    const r = s.run(["doctor", "--format", "sarif", "--server", "http://keys.example.com", dir]);
    assert.equal(r.status, 23, r.stderr); // critical: the readable root key
    log = JSON.parse(r.stdout.toString("utf8"));
  } finally {
    chmodSync(s.env.TENSORSEAL_ROOT_KEY_FILE!, 0o600);
  }
  assert.equal(validate(log), true, JSON.stringify(validate.errors, null, 2));
  const run = log.runs[0]!;
  const rules = run.tool.driver.rules;
  assert.deepEqual(
    rules.map((x) => x.id),
    Object.keys(RULES),
  );
  const byRule = Object.fromEntries(run.results.map((x) => [x.ruleId, x]));
  // runtime.end-of-life depends on the Node.js running the test: runtime.test.ts.
  assert.deepEqual(Object.keys(byRule).filter(notRuntime).sort(), [
    "file.unreadable-header",
    "file.weak-passphrase",
    "perm.root-key-readable",
    "service.plaintext-http",
  ]);
  for (const res of run.results) assert.equal(rules[res.ruleIndex]!.id, res.ruleId);
  assert.equal(byRule["perm.root-key-readable"]!.level, "error"); // critical: SARIF's error
  assert.equal(byRule["file.weak-passphrase"]!.level, "warning");
  assert.equal(
    byRule["file.weak-passphrase"]!.locations![0]!.physicalLocation.artifactLocation.uri,
    pathToFileURL(weak).href,
  );
  assert.equal(
    byRule["file.unreadable-header"]!.locations![0]!.physicalLocation.artifactLocation.uri,
    pathToFileURL(broken).href,
  );
  // Not about a file: no location.
  assert.equal(byRule["service.plaintext-http"]!.locations, undefined);
  assert.match(byRule["service.plaintext-http"]!.message.text, /plain HTTP.*Fix: /);

  const empty = s.run(["doctor", "--format", "sarif", join(s.dir, "nothing-here")]);
  assert.equal(empty.status, 7); // a missing path is an error, not an empty report
  mkdirSync(join(s.dir, "empty"));
  const clean = s.run(["doctor", "--format", "sarif", join(s.dir, "empty")]);
  assert.equal(clean.status, 0, clean.stderr);
  const cleanLog = JSON.parse(clean.stdout.toString("utf8"));
  assert.equal(validate(cleanLog), true, JSON.stringify(validate.errors, null, 2));
  assert.deepEqual(
    cleanLog.runs[0].results.map((x: { ruleId: string }) => x.ruleId).filter(notRuntime),
    [],
  );
});
