/**
 * The allow-list of provider keys (src/keys/provider-allow.ts) on its own: which entries are
 * valid, what matches, and that the alias resolver is asked only about the list's entries.
 * The real providers (moto KMS, SoftHSM2) are in provider-allow-kms / -pkcs11.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isTensorSealError } from "../../src/format/errors.js";
import {
  allowEntryProblem,
  mergeAllowLists,
  ProviderKeyPolicy,
  providerAllowListFromEnv,
} from "../../src/keys/provider-allow.js";

const A = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const B = "arn:aws:kms:eu-west-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const refused = (pattern: RegExp) => (e: unknown) => {
  assert.ok(isTensorSealError(e, "E_KEY_STATE"), String(e));
  assert.match(e.message, pattern);
  return true;
};

/** A resolver that records what it was asked; answers from a fixed map. */
function resolver(map: Record<string, string>) {
  const asked: string[] = [];
  return {
    asked,
    resolve: async (ref: string) => {
      asked.push(ref);
      const arn = map[ref];
      if (!arn) throw new Error(`NotFound ${ref}`);
      return arn;
    },
  };
}

describe("provider allow-list", () => {
  test("entries: key ARNs, patterns in region and key id, aliases, key ids; never a wildcard account", () => {
    for (const ok of [
      A,
      "arn:aws:kms:*:111122223333:key/*",
      "arn:aws:kms:eu-*:111122223333:key/*",
      "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
      "alias/ml-models",
      "arn:aws:kms:eu-west-1:111122223333:alias/ml-models",
      "1234abcd-12ab-34cd-56ef-1234567890ab",
    ])
      assert.equal(allowEntryProblem("aws-kms", ok), null, ok);
    for (const [bad, why] of [
      ["*", /never in the account/],
      ["arn:aws:kms:eu-west-1:*:key/*", /never in the account/],
      ["arn:*:kms:eu-west-1:111122223333:key/*", /never in the account/],
      ["arn:aws:kms:eu-west-1:111122223333:alias/*", /never in the account/],
      ["arn:aws:s3:::bucket", /expected a key ARN/],
      ["", /expected a key ARN/],
    ] as const)
      assert.match(allowEntryProblem("aws-kms", bad) ?? "", why, bad);
    assert.equal(allowEntryProblem("pkcs11", "prod-hsm"), null);
    assert.equal(allowEntryProblem("pkcs11", "prod-hsm/models/v2"), null);
    assert.match(allowEntryProblem("pkcs11", "prod-hsm/") ?? "", /TOKEN or TOKEN\/KEYLABEL/);
    assert.match(allowEntryProblem("pkcs11", "/k") ?? "", /TOKEN or TOKEN\/KEYLABEL/);
    assert.match(allowEntryProblem("pkcs11", `${"t".repeat(33)}/k`) ?? "", /32 bytes/);
    assert.throws(
      () => new ProviderKeyPolicy({ awsKms: ["arn:aws:kms:*:*:key/*"] }),
      (e: unknown) => isTensorSealError(e, "E_USAGE") && /never in the account/.test(e.message),
    );
  });

  test("the list is required (a JavaScript caller that forgets it gets a usage error)", () => {
    assert.throws(
      () => new ProviderKeyPolicy(undefined as never),
      (e: unknown) => isTensorSealError(e, "E_USAGE") && /need the allowed keys/.test(e.message),
    );
  });

  test("an empty list allows nothing and asks nobody", async () => {
    const r = resolver({});
    const p = new ProviderKeyPolicy({});
    await assert.rejects(
      p.checkAwsKms(A, r.resolve),
      refused(
        new RegExp(
          `^aws-kms key ${A} is not allowed, so KMS was not asked to use it: .*\`-i aws-kms:${A}\`, TENSORSEAL_KMS_KEYS or \`providers: aws-kms: keys:\` in \\.tensorseal\\.yaml`,
        ),
      ),
    );
    assert.throws(
      () => p.checkPkcs11("prod/k"),
      refused(
        /^pkcs11 key prod\/k is not allowed, so no session was opened on token prod: .*`-i pkcs11:prod`/,
      ),
    );
    assert.deepEqual(r.asked, []);
  });

  test("exact ARNs and patterns match only their account; * stays inside one field", async () => {
    const r = resolver({});
    await new ProviderKeyPolicy({ awsKms: [A] }).checkAwsKms(A, r.resolve);
    await assert.rejects(
      new ProviderKeyPolicy({ awsKms: [A] }).checkAwsKms(B, r.resolve),
      refused(/444455556666/),
    );
    const acct = new ProviderKeyPolicy({ awsKms: ["arn:aws:kms:*:111122223333:key/*"] });
    await acct.checkAwsKms(A, r.resolve);
    await acct.checkAwsKms(A.replace("eu-west-1", "us-east-2"), r.resolve);
    await assert.rejects(acct.checkAwsKms(B, r.resolve), refused(/not allowed/));
    // A region pattern cannot swallow the account: "*" never crosses ':'.
    const sneaky = "arn:aws:kms:eu-west-1:444455556666:key/x:111122223333:key/y";
    await assert.rejects(acct.checkAwsKms(sneaky, r.resolve), refused(/not allowed/));
    const eu = new ProviderKeyPolicy({ awsKms: ["arn:aws:kms:eu-*:111122223333:key/*"] });
    await eu.checkAwsKms(A, r.resolve);
    await assert.rejects(
      eu.checkAwsKms(A.replace("eu-west-1", "us-east-1"), r.resolve),
      refused(/not allowed/),
    );
    assert.deepEqual(r.asked, [], "patterns and ARNs need no KMS call");
  });

  test("aliases and key ids allow the key they resolve to; only they are ever resolved", async () => {
    const r = resolver({ "alias/ml": A });
    const p = new ProviderKeyPolicy({ awsKms: ["alias/ml", "alias/gone"] });
    await p.checkAwsKms(A, r.resolve);
    await assert.rejects(
      p.checkAwsKms(B, r.resolve),
      refused(
        /aws-kms key .*444455556666.* is not allowed.*could not be resolved: alias\/gone \(NotFound alias\/gone\)/,
      ),
    );
    await p.checkAwsKms(A, r.resolve);
    assert.deepEqual(
      r.asked.sort(),
      ["alias/gone", "alias/ml"],
      "each entry resolved once, the stanza's key never",
    );
    // A stanza naming an alias (not an ARN) opens only under the very same allowed alias.
    await p.checkAwsKms("alias/ml", r.resolve);
    await assert.rejects(
      p.checkAwsKms("alias/other", r.resolve),
      refused(/alias\/other is not allowed/),
    );
  });

  test("pkcs11: a token allows its keys, TOKEN/KEY allows that key only", () => {
    const p = new ProviderKeyPolicy({ pkcs11: ["prod", "lab/k1"] });
    p.checkPkcs11("prod/any/label");
    p.checkPkcs11("lab/k1");
    assert.throws(() => p.checkPkcs11("lab/k2"), refused(/pkcs11 key lab\/k2 is not allowed/));
    assert.throws(() => p.checkPkcs11("production/k"), refused(/token production/));
  });

  test("the environment and merges; a bad entry names its variable", () => {
    const env = providerAllowListFromEnv({
      TENSORSEAL_KMS_KEYS: ` ${A} , alias/ml,,`,
      TENSORSEAL_PKCS11_TOKENS: "prod",
    });
    assert.deepEqual(env, { awsKms: [A, "alias/ml"], pkcs11: ["prod"] });
    assert.deepEqual(providerAllowListFromEnv({}), { awsKms: [], pkcs11: [] });
    assert.throws(
      () => providerAllowListFromEnv({ TENSORSEAL_KMS_KEYS: "arn:aws:kms:*:*:key/*" }),
      (e: unknown) =>
        isTensorSealError(e, "E_USAGE") && /^TENSORSEAL_KMS_KEYS: entry .*account/.test(e.message),
    );
    assert.deepEqual(mergeAllowLists(env, { awsKms: [A, B] }, {}), {
      awsKms: [A, "alias/ml", B],
      pkcs11: ["prod"],
    });
  });

  test("a key reference from a file cannot drive the terminal in the refusal", async () => {
    const evil = "tok\u001b[2J\u202e/k";
    assert.throws(
      () => new ProviderKeyPolicy({}).checkPkcs11(evil),
      (e: unknown) => {
        assert.ok(isTensorSealError(e, "E_KEY_STATE"));
        assert.ok(!/[\u001b\u202e]/.test(e.message), e.message);
        assert.match(e.message, /tok\\u001b\[2J\\u202e\/k/);
        return true;
      },
    );
    await assert.rejects(
      new ProviderKeyPolicy({}).checkAwsKms(`x${"y".repeat(3000)}`, async () => A),
      (e: unknown) => isTensorSealError(e, "E_KEY_STATE") && e.message.length < 1200,
    );
  });
});
