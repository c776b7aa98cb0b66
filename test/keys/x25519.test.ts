import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { bech32, bech32m } from "@scure/base";
import { isTensorSealError } from "../../src/format/errors.js";
import type { Stanza } from "../../src/format/stanza.js";
import {
  decodeX25519Identity,
  decodeX25519Recipient,
  encodeX25519Identity,
  encodeX25519Recipient,
  formatIdentityFile,
  generateX25519Identity,
  parseX25519Identity,
  parseX25519Recipient,
  unwrapX25519,
  wrapX25519,
  x25519Tag,
} from "../../src/keys/x25519.js";
import { x25519PublicKey } from "../../src/keys/x25519-key.js";

const hex = (s: string) => Buffer.from(s, "hex");
const code = (c: string) => (e: unknown) => isTensorSealError(e) && e.code === c;

// RFC 9180 A.1.1 (base, DHKEM(X25519), HKDF-SHA256, AES-128-GCM); the whole vector runs
// through the suite in test/keys/hpke-node.test.ts.
const RFC = {
  skEm: hex("52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736"),
  pkEm: hex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431"),
  skRm: hex("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8"),
  pkRm: hex("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"),
};

function keyPair() {
  const g = generateX25519Identity();
  return { ...g, sk: decodeX25519Identity(g.identity), pk: decodeX25519Recipient(g.recipient) };
}

function flip(s: Stanza, field: number, byte = 0): Stanza {
  const fields = s.fields.map((f) => Buffer.from(f));
  fields[field]![byte]! ^= 1;
  return { type: s.type, fields };
}

describe("x25519 stanza", () => {
  it("derives public keys as RFC 9180 A.1.1 does", () => {
    assert.deepEqual(x25519PublicKey(RFC.skEm), RFC.pkEm);
    assert.deepEqual(x25519PublicKey(RFC.skRm), RFC.pkRm);
  });

  it("round-trips a file key and has the documented shape", async () => {
    const { sk, pk } = keyPair();
    const fileKey = randomBytes(32);
    const s = await wrapX25519(pk, fileKey);
    assert.equal(s.type, "x25519");
    assert.deepEqual(
      s.fields.map((f) => f.length),
      [16, 32, 48],
    );
    assert.deepEqual(s.fields[0], x25519Tag(pk));
    assert.deepEqual(await unwrapX25519(s, sk), fileKey);
  });

  it("is deterministic with an injected ephemeral key, and enc is its public key", async () => {
    const { sk, pk } = keyPair();
    const fileKey = randomBytes(32);
    const a = await wrapX25519(pk, fileKey, { ephemeralPrivateKey: RFC.skEm });
    const b = await wrapX25519(pk, fileKey, { ephemeralPrivateKey: RFC.skEm });
    assert.deepEqual(a, b);
    assert.deepEqual(a.fields[1], RFC.pkEm);
    assert.deepEqual(await unwrapX25519(a, sk), fileKey);
    const c = await wrapX25519(pk, fileKey);
    assert.notDeepEqual(c.fields[1], a.fields[1]);
  });

  it("tag is SHA-256(label || pk)[0:16]", () => {
    const pk = RFC.pkRm;
    const want = createHash("sha256")
      .update(Buffer.concat([Buffer.from("tensorseal.dev/v1 x25519 tag\0"), pk]))
      .digest()
      .subarray(0, 16);
    assert.deepEqual(x25519Tag(pk), want);
  });

  it("another identity returns null (not mine), without throwing", async () => {
    const a = keyPair();
    const b = keyPair();
    const s = await wrapX25519(a.pk, randomBytes(32));
    assert.equal(await parseX25519Identity(b.identity).unwrap(s), null);
    assert.equal(await parseX25519Identity(a.identity).unwrap({ type: "kek", fields: [] }), null);
  });

  it("a matching tag with tampered enc or ct throws E_DECRYPT", async () => {
    const { identity, pk } = keyPair();
    const id = parseX25519Identity(identity);
    const s = await wrapX25519(pk, randomBytes(32));
    await assert.rejects(id.unwrap(flip(s, 1, 5)), code("E_DECRYPT"));
    await assert.rejects(id.unwrap(flip(s, 2, 0)), code("E_DECRYPT"));
    await assert.rejects(id.unwrap(flip(s, 2, 47)), code("E_DECRYPT"));
  });

  it("a re-tagged stanza does not open for the new tag's owner", async () => {
    // The tag is bound into the HPKE info, so copying B's tag onto A's stanza fails loudly.
    const a = keyPair();
    const b = keyPair();
    const s = await wrapX25519(a.pk, randomBytes(32));
    const forged: Stanza = {
      type: "x25519",
      fields: [x25519Tag(b.pk), s.fields[1]!, s.fields[2]!],
    };
    await assert.rejects(parseX25519Identity(b.identity).unwrap(forged), code("E_DECRYPT"));
  });

  it("rejects wrong field counts and lengths", async () => {
    const { identity, pk } = keyPair();
    const id = parseX25519Identity(identity);
    const s = await wrapX25519(pk, randomBytes(32));
    const short: Stanza = { type: "x25519", fields: [s.fields[0]!, s.fields[1]!] };
    await assert.rejects(id.unwrap(short), code("E_MALFORMED"));
    const padded: Stanza = {
      type: "x25519",
      fields: [s.fields[0]!, s.fields[1]!, Buffer.concat([s.fields[2]!, Buffer.from([0])])],
    };
    await assert.rejects(id.unwrap(padded), code("E_MALFORMED"));
    await assert.rejects(wrapX25519(pk, randomBytes(16)), code("E_KEY"));
  });

  it("recipient.matches compares tags", async () => {
    const a = keyPair();
    const b = keyPair();
    const s = await parseX25519Recipient(a.recipient).wrap(randomBytes(32));
    assert.equal(parseX25519Recipient(a.recipient).matches(s), true);
    assert.equal(parseX25519Recipient(b.recipient).matches(s), false);
    assert.equal(parseX25519Recipient(a.recipient).matches({ type: "kek", fields: [] }), false);
  });

  it("identity id is the public recipient, never the secret", () => {
    const { identity, recipient } = keyPair();
    assert.equal(parseX25519Identity(identity).id, recipient);
  });
});

describe("x25519 key strings", () => {
  it("encodes bech32 with the documented HRPs and case", () => {
    const { identity, recipient, sk, pk } = keyPair();
    assert.match(recipient, /^tseal1[02-9ac-hj-np-z]{58}$/);
    assert.match(identity, /^TSEAL-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/);
    assert.equal(encodeX25519Recipient(pk), recipient);
    assert.equal(encodeX25519Identity(sk), identity);
    assert.deepEqual(x25519PublicKey(sk), pk);
    // Plain bech32 (BIP 173), not bech32m: an independent decoder agrees.
    const d = bech32.decode(recipient as `${string}1${string}`);
    assert.equal(d.prefix, "tseal");
    assert.deepEqual(Buffer.from(bech32.fromWords(d.words)), pk);
  });

  it("accepts either case of the identity and recipient strings", () => {
    const { identity, recipient, sk, pk } = keyPair();
    assert.deepEqual(decodeX25519Identity(identity.toLowerCase()), sk);
    assert.deepEqual(decodeX25519Recipient(recipient.toUpperCase()), pk);
  });

  it("rejects mixed case, wrong HRP, wrong length, bad checksum and bech32m", () => {
    const { identity, recipient, pk } = keyPair();
    const mixed = `${identity.slice(0, 20)}${identity.slice(20).toLowerCase()}`;
    assert.throws(() => decodeX25519Identity(mixed), code("E_KEY"));
    assert.throws(() => decodeX25519Identity(recipient), code("E_KEY"));
    assert.throws(() => decodeX25519Recipient(identity), code("E_KEY"));
    assert.throws(
      () => decodeX25519Recipient(bech32.encode("tseal", bech32.toWords(pk.subarray(0, 31)))),
      code("E_KEY"),
    );
    assert.throws(
      () => decodeX25519Recipient(bech32.encode("age", bech32.toWords(pk))),
      code("E_KEY"),
    );
    const last = recipient.at(-1) === "q" ? "p" : "q";
    assert.throws(() => decodeX25519Recipient(recipient.slice(0, -1) + last), code("E_KEY"));
    assert.throws(
      () => decodeX25519Recipient(bech32m.encode("tseal", bech32m.toWords(pk))),
      code("E_KEY"),
    );
    assert.throws(() => decodeX25519Recipient(""), code("E_KEY"));
    assert.throws(() => decodeX25519Recipient(` ${recipient}`), code("E_KEY"));
  });

  it("never echoes a secret key in an error", () => {
    const { identity } = keyPair();
    const broken = `${identity.slice(0, -1)}${identity.at(-1) === "Q" ? "P" : "Q"}`;
    try {
      decodeX25519Identity(broken);
      assert.fail("accepted a bad checksum");
    } catch (e) {
      assert.ok(isTensorSealError(e, "E_KEY"));
      assert.ok(!e.message.includes(identity.slice(18, 40)));
      assert.equal(e.cause, undefined);
    }
  });

  it("formats an identity file like age", () => {
    const { identity, recipient } = keyPair();
    const text = formatIdentityFile(identity, new Date("2025-01-02T03:04:05Z"));
    assert.equal(
      text,
      `# created: 2025-01-02T03:04:05.000Z\n# recipient: ${recipient}\n${identity}\n`,
    );
  });
});
