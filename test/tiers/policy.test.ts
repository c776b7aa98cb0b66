/**
 * src/tiers/policy.ts: recipient and stanza kinds, the built-in tiers' rules, rotation, and the
 * refusal (E_USAGE naming every violation). The CLI and doctor tests cover the wiring.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { isTensorSealError } from "../../src/format/errors.js";
import type { Stanza } from "../../src/format/stanza.js";
import {
  BUILTIN_TIERS,
  builtinTierConfig,
  kindViolations,
  recipientKind,
  refuseViolations,
  rotationViolation,
  stanzaKind,
  tierEncrypts,
  tierPolicy,
} from "../../src/tiers/policy.js";

const tier = (name: string) => tierPolicy(builtinTierConfig(), name);
const stanza = (type: string, first = ""): Stanza => ({
  type,
  fields: [Buffer.from(first, "latin1")],
});

test("recipient kinds as the CLI names recipients, and stanza kinds", () => {
  assert.equal(recipientKind("passphrase"), "passphrase");
  assert.equal(recipientKind("tseal1pq1qqqq"), "mlkem768x25519", "pq tested before x25519");
  assert.equal(recipientKind("TSEAL1QQQQ"), "x25519");
  assert.equal(recipientKind("kek:default"), "kek");
  assert.equal(recipientKind("pkcs11:hsm/models"), "pkcs11");
  assert.equal(recipientKind("aws-kms:arn:aws:kms:eu-west-1:1:key/x"), "aws-kms");
  assert.equal(recipientKind("service:weights"), "service");
  assert.equal(stanzaKind(stanza("kms", "aws-kms")), "aws-kms");
  assert.equal(stanzaKind(stanza("kms", "pkcs11")), "pkcs11");
  assert.equal(stanzaKind(stanza("mlkem768x25519")), "mlkem768x25519");
  assert.equal(stanzaKind(stanza("future-kms")), "future-kms");
});

test("built-in tiers: what each allows", () => {
  assert.deepEqual(
    BUILTIN_TIERS.map((t) => t.name),
    ["public", "internal", "confidential", "restricted"],
  );
  const all = ["passphrase", "x25519", "mlkem768x25519", "kek", "pkcs11", "aws-kms", "service"];
  assert.deepEqual(kindViolations(tier("public"), all), []);
  assert.deepEqual(kindViolations(tier("internal"), all), []);
  assert.deepEqual(
    kindViolations(tier("confidential"), all).map((m) => m.split(" ")[5]),
    ["passphrase"],
  );
  assert.deepEqual(
    kindViolations(tier("restricted"), [...all, "future-kms", "passphrase"]).map(
      (m) => m.split(" ")[5],
    ),
    ["passphrase", "x25519", "kek", "future-kms"],
    "each kind once; an unknown stanza type is not allowed either",
  );
  assert.equal(tier("restricted").attestation, true);
  assert.throws(
    () => tier("secret"),
    (e) => isTensorSealError(e) && e.code === "E_USAGE" && /unknown tier "secret"/.test(e.message),
  );
});

test("rotation: a key older than the tier's period is a violation", () => {
  const now = new Date("2027-01-01T00:00:00Z");
  const key = (created: string) => ({ name: "k", version: 2, created });
  assert.equal(rotationViolation(tier("restricted"), key("2026-12-01T00:00:00Z"), now), null);
  assert.match(
    rotationViolation(tier("restricted"), key("2026-09-01T00:00:00Z"), now) ?? "",
    /every 90d: key k v2 is 122d old \(run `tensorseal keys rotate k`\)/,
  );
  assert.equal(rotationViolation(tier("internal"), key("2000-01-01T00:00:00Z"), now), null);
});

test("refuseViolations: nothing to refuse, or one E_USAGE naming them all", () => {
  refuseViolations("sealing x", []);
  assert.throws(
    () => refuseViolations("sealing x", ["a", "b"]),
    (e) =>
      isTensorSealError(e) &&
      e.code === "E_USAGE" &&
      /sealing x breaks its tier: a; b/.test(e.message),
  );
});

test("only the public tier is sealed unencrypted (spec/FORMAT.md §2.5), and only by its tier", () => {
  const config = builtinTierConfig();
  assert.equal(tierEncrypts(config, { "tensorseal:tier": "public" }), false);
  for (const t of ["internal", "confidential", "restricted", "unknown-tier"]) {
    assert.equal(tierEncrypts(config, { "tensorseal:tier": t }), true, t);
  }
  assert.equal(tierEncrypts(config, {}), true, "no tier: encrypted");
  // The public stanza is a published key, not a recipient: no tier's allow list judges it.
  assert.deepEqual(kindViolations(tier("restricted"), ["public"]), []);
  const encryptedPublic = new Map(config.tiers);
  encryptedPublic.set("public", { ...config.tiers.get("public")!, encrypt: true });
  assert.equal(
    tierEncrypts({ ...config, tiers: encryptedPublic }, { "tensorseal:tier": "public" }),
    true,
  );
});
