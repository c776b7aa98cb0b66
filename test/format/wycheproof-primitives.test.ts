/**
 * Wycheproof vectors for the primitives the format uses through node:crypto: AES-GCM (chunks,
 * kek and passphrase stanzas), HKDF (src/format/hkdf.ts and node's hkdfSync), HMAC-SHA-256
 * (header MAC) and X25519 (x25519 stanzas). Each file is one labelled loop whose last test
 * asserts how many vectors ran, so a silently empty loop fails.
 */
import assert from "node:assert/strict";
import {
  type CipherGCMTypes,
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  timingSafeEqual,
} from "node:crypto";
import { describe, test } from "node:test";
import { isTensorSealError } from "../../src/format/errors.js";
import { hkdfExpand, hkdfExtract } from "../../src/format/hkdf.js";
import {
  type AesGcmTest,
  hex,
  loadWycheproof,
  type MacTest,
  type WycheproofTest,
  type XdhTest,
} from "./wycheproof.js";

describe("wycheproof aes_gcm_test.json (node:crypto aes-*-gcm)", () => {
  const file = loadWycheproof<AesGcmTest>("aes_gcm_test.json");
  let ran = 0;
  let ran256 = 0;
  let skipped = 0;
  for (const g of file.testGroups) {
    const keySize = g["keySize"] as number;
    const ivSize = g["ivSize"] as number;
    const tagSize = g["tagSize"] as number;
    const alg = `aes-${keySize}-gcm` as CipherGCMTypes;
    for (const t of g.tests) {
      // OpenSSL caps GCM IVs at 1024 bits (node: "Invalid initialization vector"); the format
      // only uses 96-bit IVs, so the 2056-bit group is skipped and counted.
      if (ivSize > 1024) {
        skipped++;
        continue;
      }
      test(`tcId ${t.tcId} aes-${keySize} iv${ivSize} tag${tagSize} ${t.result}`, () => {
        const opts = { authTagLength: tagSize / 8 };
        const open = () => {
          const d = createDecipheriv(alg, hex(t.key), hex(t.iv), opts);
          d.setAAD(hex(t.aad));
          d.setAuthTag(hex(t.tag));
          return Buffer.concat([d.update(hex(t.ct)), d.final()]);
        };
        if (t.result === "valid") {
          assert.equal(open().toString("hex"), t.msg);
          const c = createCipheriv(alg, hex(t.key), hex(t.iv), opts);
          c.setAAD(hex(t.aad));
          const ct = Buffer.concat([c.update(hex(t.msg)), c.final()]);
          assert.equal(ct.toString("hex"), t.ct);
          assert.equal(c.getAuthTag().toString("hex"), t.tag);
        } else {
          assert.throws(open);
        }
        ran++;
        if (keySize === 256 && ivSize === 96 && tagSize === 128) ran256++;
      });
    }
  }
  test("ran every vector (AES-256, 96-bit IV, 128-bit tag group in full)", () => {
    assert.equal(skipped, 3);
    assert.equal(ran + skipped, file.numberOfTests);
    assert.equal(ran256, 66);
  });
});

interface HkdfTest extends WycheproofTest {
  ikm: string;
  salt: string;
  info: string;
  size: number;
  okm: string;
}

for (const [name, hash, hashLen, count] of [
  ["hkdf_sha256_test.json", "sha256", 32, 86],
  ["hkdf_sha512_test.json", "sha512", 64, 83],
] as const) {
  describe(`wycheproof ${name} (src/format/hkdf.ts, node hkdfSync)`, () => {
    const file = loadWycheproof<HkdfTest>(name);
    let ran = 0;
    for (const g of file.testGroups) {
      for (const t of g.tests) {
        test(`tcId ${t.tcId} size ${t.size} ${t.result}`, () => {
          // An empty salt means HashLen zero bytes (RFC 5869): hkdfExtract takes either.
          const prk = hkdfExtract(hash, hex(t.salt), hex(t.ikm));
          const zeros = t.salt.length > 0 ? hex(t.salt) : Buffer.alloc(hashLen);
          assert.deepEqual(hkdfExtract(hash, zeros, hex(t.ikm)), prk);
          if (t.result === "valid") {
            assert.equal(hkdfExpand(hash, prk, hex(t.info), t.size).toString("hex"), t.okm);
            const full = hkdfSync(hash, hex(t.ikm), hex(t.salt), hex(t.info), t.size);
            assert.equal(Buffer.from(full).toString("hex"), t.okm);
          } else {
            assert.throws(
              () => hkdfExpand(hash, prk, hex(t.info), t.size),
              (e) => isTensorSealError(e, "E_USAGE"),
            );
            assert.throws(() => hkdfSync(hash, hex(t.ikm), hex(t.salt), hex(t.info), t.size));
          }
          ran++;
        });
      }
    }
    test("ran every vector", () => {
      assert.equal(file.numberOfTests, count);
      assert.equal(ran, count);
    });
  });
}

describe("wycheproof hmac_sha256_test.json (node:crypto createHmac, truncated tags)", () => {
  const file = loadWycheproof<MacTest>("hmac_sha256_test.json");
  let ran = 0;
  for (const g of file.testGroups) {
    const tagBytes = (g["tagSize"] as number) / 8;
    for (const t of g.tests) {
      test(`tcId ${t.tcId} tag${tagBytes * 8} ${t.result}`, () => {
        const mac = createHmac("sha256", hex(t.key)).update(hex(t.msg)).digest();
        const tag = mac.subarray(0, tagBytes);
        const expected = hex(t.tag);
        const verifies = expected.length === tag.length && timingSafeEqual(tag, expected);
        if (t.result === "valid") {
          assert.equal(tag.toString("hex"), t.tag);
          assert.ok(verifies);
        } else {
          assert.ok(!verifies, "a modified tag must not verify");
        }
        ran++;
      });
    }
  }
  test("ran every vector", () => {
    assert.equal(ran, 174);
    assert.equal(ran, file.numberOfTests);
  });
});

/** RFC 8410 PKCS#8 prefix of a raw X25519 private key (as primitives.ts's node:crypto set). */
const PKCS8_X25519 = hex("302e020100300506032b656e04220420");

/**
 * What node:crypto (OpenSSL 3) does, recorded by these tests: every vector with a non-zero
 * shared secret matches, including twist points and non-canonical public keys (RFC 7748 §5
 * masking); the 31 low-order public keys whose shared secret is all zero make `diffieHellman`
 * throw (OpenSSL's RFC 7748 §6.1 check), so the x25519 stanza never sees a zero secret.
 */
describe("wycheproof x25519_test.json (node:crypto diffieHellman)", () => {
  const file = loadWycheproof<XdhTest>("x25519_test.json");
  let ran = 0;
  let rejectedZero = 0;
  for (const g of file.testGroups) {
    for (const t of g.tests) {
      test(`tcId ${t.tcId} ${t.result} ${t.flags.join(",")}`, () => {
        const privateKey = createPrivateKey({
          key: Buffer.concat([PKCS8_X25519, hex(t.private)]),
          format: "der",
          type: "pkcs8",
        });
        const publicKey = createPublicKey({
          key: { kty: "OKP", crv: "X25519", x: hex(t.public).toString("base64url") },
          format: "jwk",
        });
        const zero = /^(00)+$/.test(t.shared);
        if (t.result === "valid") {
          assert.ok(!zero);
          assert.equal(diffieHellman({ privateKey, publicKey }).toString("hex"), t.shared);
        } else if (zero) {
          // acceptable with an all-zero secret: node must reject (or at least return zero).
          let out: Buffer | null = null;
          try {
            out = diffieHellman({ privateKey, publicKey });
          } catch {
            rejectedZero++;
          }
          if (out) assert.ok(out.every((b) => b === 0));
        } else {
          // acceptable, non-zero secret (twist, non-canonical): must be computed correctly.
          assert.equal(diffieHellman({ privateKey, publicKey }).toString("hex"), t.shared);
        }
        ran++;
      });
    }
  }
  test("ran every vector; node rejected every all-zero shared secret", () => {
    assert.equal(ran, 518);
    assert.equal(ran, file.numberOfTests);
    assert.equal(rejectedZero, 31);
  });
});
