/**
 * The one-shot primitives (src/format/primitives.ts): the native addon's (native/tseal_prim.cc,
 * OpenSSL through N-API) and node:crypto's, each held to Wycheproof's AES-256-GCM, HMAC-SHA-256
 * and X25519 vectors, to known SHA-256 digests, and to the other set on random inputs of every
 * awkward length; forged and truncated inputs are refused by both. The addon is required under
 * TENSORSEAL_REQUIRE_ALL=1 (CI), so there both sets run; HKDF's vectors (which take HMAC-SHA-512
 * through these) run in wycheproof-primitives.test.ts.
 */
import assert from "node:assert/strict";
import {
  createCipheriv,
  createHash,
  createHmac,
  generateKeyPairSync,
  randomBytes,
} from "node:crypto";
import { describe, test } from "node:test";
import {
  addonPrimitives,
  nodeCryptoPrimitives,
  type Primitives,
  primitivesBackend,
} from "../../src/format/primitives.js";
import { type AesGcmTest, hex, loadWycheproof, type MacTest, type XdhTest } from "./wycheproof.js";

const REQUIRE_ALL = process.env["TENSORSEAL_REQUIRE_ALL"] === "1";

test("the addon's primitives serve this process whenever the addon loaded", () => {
  if (REQUIRE_ALL) assert.ok(addonPrimitives, "TENSORSEAL_REQUIRE_ALL=1 needs the addon");
  assert.equal(primitivesBackend, addonPrimitives ? "native" : "node:crypto");
});

const SETS: [string, Primitives][] = [["node:crypto", nodeCryptoPrimitives]];
if (addonPrimitives) SETS.push(["addon", addonPrimitives]);

/** Lengths around AES's block, GCM's tag and the addon's int-sized pieces' small cases. */
const LENGTHS = [0, 1, 15, 16, 17, 31, 32, 33, 255, 4096, 65_537];

for (const [name, p] of SETS) {
  describe(`${name} primitives`, () => {
    test("Wycheproof AES-256-GCM (96-bit nonce, 128-bit tag): seal and open, forgeries refused", () => {
      const file = loadWycheproof<AesGcmTest>("aes_gcm_test.json");
      let valid = 0;
      let invalid = 0;
      for (const g of file.testGroups) {
        if (g["keySize"] !== 256 || g["ivSize"] !== 96 || g["tagSize"] !== 128) continue;
        for (const t of g.tests) {
          const [key, iv, aad] = [hex(t.key), hex(t.iv), hex(t.aad)];
          const sealed = Buffer.concat([hex(t.ct), hex(t.tag)]);
          const opened = p.gcmOpen(key, iv, sealed, aad);
          if (t.result === "valid") {
            assert.equal(opened?.toString("hex"), t.msg, `tcId ${t.tcId}`);
            assert.equal(p.gcmSeal(key, iv, hex(t.msg), aad).toString("hex"), t.ct + t.tag);
            valid++;
          } else {
            assert.equal(opened, null, `tcId ${t.tcId} must not open`);
            invalid++;
          }
        }
      }
      assert.deepEqual([valid, invalid], [39, 27]);
    });

    test("Wycheproof HMAC-SHA-256 (full tags): valid tags match, modified ones do not", () => {
      const file = loadWycheproof<MacTest>("hmac_sha256_test.json");
      let ran = 0;
      for (const g of file.testGroups) {
        if (g["tagSize"] !== 256) continue;
        for (const t of g.tests) {
          const mac = p.hmac("sha256", hex(t.key), hex(t.msg));
          assert.equal(p.constantTimeEqual(mac, hex(t.tag)), t.result === "valid", `${t.tcId}`);
          ran++;
        }
      }
      assert.equal(ran, 87);
    });

    test("SHA-256 of known inputs, in one part or several", () => {
      const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
      assert.equal(p.sha256(Buffer.from("abc")).toString("hex"), abc);
      assert.equal(
        p.sha256(Buffer.from("a"), Buffer.from(""), Buffer.from("bc")).toString("hex"),
        abc,
      );
      const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
      assert.equal(p.sha256(new Uint8Array(0)).toString("hex"), empty);
    });

    test("HMAC-SHA-256/512 and SHA-256 equal node:crypto's on random inputs of every length", () => {
      for (const n of LENGTHS) {
        const key = randomBytes(n % 200); // empty keys and keys longer than a block included
        const [a, b] = [randomBytes(n), randomBytes(n >> 1)];
        for (const hash of ["sha256", "sha512"] as const) {
          const want = createHmac(hash, key).update(a).update(b).digest("hex");
          assert.equal(p.hmac(hash, key, a, b).toString("hex"), want, `${hash} ${n}`);
        }
        assert.equal(
          p.sha256(a, b).toString("hex"),
          createHash("sha256").update(a).update(b).digest("hex"),
        );
      }
    });

    test("AES-256-GCM equals node:crypto's on random inputs; any flipped bit is refused", () => {
      for (const n of LENGTHS) {
        const [key, nonce, pt, aad] = [
          randomBytes(32),
          randomBytes(12),
          randomBytes(n),
          randomBytes(n % 40),
        ];
        const c = createCipheriv("aes-256-gcm", key, nonce).setAAD(aad);
        const want = Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
        const sealed = p.gcmSeal(key, nonce, pt, aad);
        assert.deepEqual(sealed, want, `length ${n}`);
        assert.deepEqual(p.gcmOpen(key, nonce, sealed, aad), pt);
        for (const at of [0, sealed.length >> 1, sealed.length - 1]) {
          const forged: Buffer = Buffer.from(sealed);
          forged[at]! ^= 0x01;
          assert.equal(p.gcmOpen(key, nonce, forged, aad), null, `bit at ${at} of ${n}`);
        }
        const otherAad = Buffer.concat([aad, Buffer.from([0])]);
        assert.equal(p.gcmOpen(key, nonce, sealed, otherAad), null, "another AAD");
        assert.equal(p.gcmOpen(randomBytes(32), nonce, sealed, aad), null, "another key");
      }
    });

    test("GCM without plaintext is a MAC over the AAD (suite 2's chunk tags)", () => {
      const [key, nonce, data] = [randomBytes(32), randomBytes(12), randomBytes(1000)];
      const tag = p.gcmSeal(key, nonce, new Uint8Array(0), data);
      assert.equal(tag.length, 16);
      assert.deepEqual(p.gcmOpen(key, nonce, tag, data), Buffer.alloc(0));
      data[999]! ^= 1;
      assert.equal(p.gcmOpen(key, nonce, tag, data), null);
    });

    test("shorter than a tag, wrong key or nonce sizes: refused, never opened", () => {
      const [key, nonce] = [randomBytes(32), randomBytes(12)];
      for (const n of [0, 1, 15]) assert.equal(p.gcmOpen(key, nonce, randomBytes(n)), null);
      assert.throws(() => p.gcmSeal(randomBytes(31), nonce, randomBytes(4)));
      assert.throws(() => p.gcmSeal(key, randomBytes(0), randomBytes(4)));
      assert.throws(() => p.gcmOpen(randomBytes(24), nonce, randomBytes(20)));
    });

    test("Wycheproof X25519: every non-zero secret computed; the 31 all-zero ones refused (null)", () => {
      const file = loadWycheproof<XdhTest>("x25519_test.json");
      let computed = 0;
      let refused = 0;
      for (const g of file.testGroups) {
        for (const t of g.tests) {
          const shared = p.x25519(hex(t.private), hex(t.public));
          if (/^(00)+$/.test(t.shared)) {
            assert.equal(shared, null, `tcId ${t.tcId}: a low-order point must be refused`);
            refused++;
          } else {
            assert.equal(shared?.toString("hex"), t.shared, `tcId ${t.tcId}`);
            computed++;
          }
        }
      }
      assert.deepEqual([computed, refused], [487, 31]);
    });

    test("X25519 public keys equal node:crypto's; both sides of an exchange agree", () => {
      for (let i = 0; i < 20; i++) {
        const pair = generateKeyPairSync("x25519");
        const jwk = pair.privateKey.export({ format: "jwk" });
        const sk = Buffer.from(jwk.d as string, "base64url");
        assert.equal(p.x25519PublicKey(sk).toString("base64url"), jwk.x);
        const other = randomBytes(32);
        const mine = p.x25519(sk, p.x25519PublicKey(other));
        assert.ok(mine);
        assert.deepEqual(p.x25519(other, p.x25519PublicKey(sk)), mine);
      }
      assert.throws(() => p.x25519PublicKey(randomBytes(31)), RangeError);
      assert.throws(() => p.x25519(randomBytes(32), randomBytes(33)), RangeError);
    });

    test("randomBytes: the length asked for, memory of its own, never the same twice", () => {
      const seen = new Set<string>();
      for (const n of [0, 1, 12, 32, 100]) {
        const r = p.randomBytes(n);
        assert.equal(r.length, n);
        if (n >= 12) seen.add(r.toString("hex"));
      }
      assert.equal(seen.size, 3);
      const k = p.randomBytes(32);
      assert.equal(k.buffer.byteLength, 32, "not a slice of Buffer's shared pool");
      assert.notDeepEqual(k, Buffer.alloc(32));
    });

    test("constantTimeEqual: equal bytes only; other lengths are unequal, not an error", () => {
      const a = randomBytes(32);
      assert.equal(p.constantTimeEqual(a, Buffer.from(a)), true);
      assert.equal(p.constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true);
      for (const at of [0, 31]) {
        const b = Buffer.from(a);
        b[at]! ^= 0x80;
        assert.equal(p.constantTimeEqual(a, b), false);
      }
      assert.equal(p.constantTimeEqual(a, a.subarray(0, 31)), false);
    });
  });
}
