/**
 * The mlkem768x25519 (X-Wing) recipient: the KEM (src/keys/hpke-xwing.ts) against the published
 * X-Wing vectors, what the @hpke/* implementation it replaced sealed, the stanza and key strings,
 * and the attacks it must reject (other identity, modified stanza, wrong lengths, invalid keys,
 * keys of another suite, mixed-up key strings).
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { bech32 } from "@scure/base";
import { isTensorSealError } from "../../src/format/errors.js";
import { openMessage, readHeader, sealMessage } from "../../src/format/message.js";
import type { Stanza } from "../../src/format/stanza.js";
import { unlockFileKey } from "../../src/format/unlock.js";
import { x25519Suite } from "../../src/keys/hpke-node.js";
import { kemXWing, openXWing, sealXWing, xwingSuite } from "../../src/keys/hpke-xwing.js";
import { parseIdentityFile, parseRecipient } from "../../src/keys/recipients.js";
import { openAttestedRelease, sealAttestedRelease } from "../../src/keys/service/attested.js";
import { generateX25519Identity, parseX25519Identity } from "../../src/keys/x25519.js";
import {
  decodeXWingIdentity,
  decodeXWingRecipient,
  encodeXWingIdentity,
  encodeXWingRecipient,
  formatXWingIdentityFile,
  generateXWingIdentity,
  parseXWingIdentity,
  parseXWingRecipient,
  unwrapXWing,
  wrapXWing,
  XWING_STANZA,
  xwingPublicKey,
  xwingTag,
} from "../../src/keys/xwing.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const code = (c: string) => (e: unknown) => isTensorSealError(e) && e.code === c;
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** An error of the `hpke` library by its class name (EncapError, OpenError, ...). */
const named = (name: string) => (e: unknown) => e instanceof Error && e.name === name;

interface KemVector {
  seed: Buffer;
  pk: Buffer;
  eseed: Buffer;
  ct: Buffer;
  ss: Buffer;
}

/** draft-connolly-cfrg-xwing-kem-10 Appendix C, as printed (test/fixtures/xwing/SOURCE.md). */
function publishedVectors(): KemVector[] {
  const text = readFileSync(
    join(REPO, "test/fixtures/xwing/draft-connolly-cfrg-xwing-kem-10-appendix-c.txt"),
    "utf8",
  );
  const out: Record<string, string>[] = [];
  let key = "";
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    if (line.startsWith(" ")) {
      out.at(-1)![key] += line.trim();
      continue;
    }
    const [k, v = ""] = line.split(/\s+/);
    key = k!;
    if (key === "seed") out.push({});
    out.at(-1)![key] = v;
  }
  return out.map((v) => ({
    seed: Buffer.from(v.seed!, "hex"),
    pk: Buffer.from(v.pk!, "hex"),
    eseed: Buffer.from(v.eseed!, "hex"),
    ct: Buffer.from(v.ct!, "hex"),
    ss: Buffer.from(v.ss!, "hex"),
  }));
}

async function keyPair() {
  const g = await generateXWingIdentity();
  return { ...g, sk: decodeXWingIdentity(g.identity), pk: decodeXWingRecipient(g.recipient) };
}

function flip(s: Stanza, field: number, byte = 0): Stanza {
  const fields = s.fields.map((f) => Buffer.from(f));
  fields[field]![byte]! ^= 1;
  return { type: s.type, fields };
}

/** A public key whose ML-KEM half fails FIPS 203's modulus check (coefficients >= q). */
function invalidEncapsulationKey(pk: Uint8Array): Buffer {
  const bad = Buffer.from(pk);
  bad.fill(0xff, 0, 384);
  return bad;
}

describe("X-Wing KEM (src/keys/hpke-xwing.ts) against draft-connolly-cfrg-xwing-kem-10", () => {
  const vectors = publishedVectors();
  it("reads all three published vectors at the sizes the draft gives", () => {
    assert.equal(vectors.length, 3);
    for (const v of vectors) {
      assert.deepEqual(
        [v.seed.length, v.pk.length, v.eseed.length, v.ct.length, v.ss.length],
        [32, 1216, 64, 1120, 32],
      );
    }
  });

  for (const [i, v] of vectors.entries()) {
    it(`vector ${i}: seed -> pk, Encap with eseed -> (ct, ss), Decap -> ss`, async () => {
      assert.deepEqual(await xwingPublicKey(v.seed), v.pk, "xwingPublicKey");
      const kem = kemXWing({ eseed: v.eseed })();
      const pk = await kem.DeserializePublicKey(v.pk);
      assert.equal(hex(await kem.SerializePublicKey(pk)), hex(v.pk));
      const { enc, shared_secret } = await kem.Encap(pk);
      assert.equal(hex(enc), hex(v.ct));
      assert.equal(hex(shared_secret), hex(v.ss));
      const sk = await kem.DeserializePrivateKey(v.seed, false);
      assert.equal(hex(await kem.Decap(v.ct, sk, undefined)), hex(v.ss));
    });

    it(`vector ${i}: a whole HPKE seal with the eseed carries ct as enc and opens with the seed`, async () => {
      const pt = randomBytes(32);
      const info = Buffer.from(`vector ${i}`);
      const eseed = Buffer.from(v.eseed);
      const s = xwingSuite({ eseed });
      const sealed = await s.Seal(await s.DeserializePublicKey(v.pk), pt, { info });
      assert.equal(hex(sealed.encapsulatedSecret), hex(v.ct));
      assert.deepEqual(eseed, v.eseed, "the caller's eseed is left as it was");
      const again = await sealXWing(v.pk, pt, { info, eseed });
      assert.equal(hex(again.ct), hex(sealed.ciphertext), "same eseed, same seal");
      const sk = await s.DeserializePrivateKey(v.seed, false);
      assert.equal(
        hex(await s.Open(sk, sealed.encapsulatedSecret, sealed.ciphertext, { info })),
        hex(pt),
      );
      const seed = Buffer.from(v.seed);
      assert.equal(hex(await openXWing(seed, again.enc, again.ct, { info })), hex(pt));
      assert.deepEqual(seed, v.seed, "openXWing wipes its own copy of the seed, not the caller's");
      await assert.rejects(
        openXWing(v.seed, again.enc, again.ct, { info: Buffer.from("other") }),
        named("OpenError"),
      );
    });
  }

  it("a modified ciphertext decapsulates to another secret (ML-KEM implicit rejection)", async () => {
    const v = vectors[0]!;
    const kem = kemXWing()();
    const ct = Buffer.from(v.ct);
    ct[10]! ^= 1;
    const ss = await kem.Decap(ct, await kem.DeserializePrivateKey(v.seed, false), undefined);
    assert.equal(ss.length, 32);
    assert.notEqual(hex(ss), hex(v.ss));
  });

  it("random encapsulations differ, and each opens", async () => {
    const v = vectors[1]!;
    const info = Buffer.from("random");
    const a = await sealXWing(v.pk, Buffer.alloc(32, 1), { info });
    const b = await sealXWing(v.pk, Buffer.alloc(32, 1), { info });
    assert.notEqual(hex(a.enc), hex(b.enc));
    for (const r of [a, b]) {
      assert.deepEqual(
        Buffer.from(await openXWing(v.seed, r.enc, r.ct, { info })),
        Buffer.alloc(32, 1),
      );
    }
  });

  it("refuses an encapsulation key failing FIPS 203's modulus check, and a low-order X25519 key", async () => {
    const pk = vectors[0]!.pk;
    const lowOrder = Buffer.from(pk);
    lowOrder.fill(0, 1184); // the X25519 half: the all-zero point
    const refused = async (bad: Uint8Array, why: RegExp) =>
      assert.rejects(sealXWing(bad, randomBytes(32), { info: Buffer.alloc(0) }), (e: unknown) => {
        assert.ok(named("EncapError")(e));
        assert.match(String((e as Error).cause), why);
        return true;
      });
    // @noble/post-quantum 0.5.x let this key through (its check was a no-op): docs/DECISIONS.md.
    await refused(invalidEncapsulationKey(pk), /modulus/);
    await refused(lowOrder, /invalid private or public key/);
    const s = xwingSuite();
    await assert.rejects(s.DeserializePublicKey(pk.subarray(0, 1215)), named("DeserializeError"));
  });

  it("keys of another suite or look-alikes are refused, not used; a non-extractable seed stays in", async () => {
    const s = xwingSuite();
    const x = x25519Suite();
    const theirs = await x.GenerateKeyPair(true);
    const refused = (e: unknown) =>
      e instanceof Error &&
      /not an X-Wing (public|private) key of this suite/.test(String(e.cause));
    await assert.rejects(s.Seal(theirs.publicKey, randomBytes(32)), refused);
    const lookAlike = {
      algorithm: { name: "X-Wing" },
      type: "public",
      extractable: true,
      bytes: vectors[0]!.pk,
    };
    await assert.rejects(s.Seal(lookAlike, randomBytes(32)), refused);
    const kp = await s.GenerateKeyPair(false);
    const sealed = await s.Seal(kp.publicKey, randomBytes(32));
    await assert.rejects(
      s.Open(theirs.privateKey, sealed.encapsulatedSecret, sealed.ciphertext),
      refused,
    );
    // And an X-Wing key is no key of the X25519 suite.
    await assert.rejects(x.Seal(kp.publicKey, randomBytes(32)), (e: unknown) =>
      /not an X25519 public key of this suite/.test(String((e as Error).cause)),
    );
    await assert.rejects(s.SerializePrivateKey(kp.privateKey), /must be extractable/);
    await assert.rejects(kemXWing()().SerializePrivateKey(kp.privateKey), /not extractable/);
    const ex = await s.GenerateKeyPair(true);
    const seed = await s.SerializePrivateKey(ex.privateKey);
    assert.equal(seed.length, 32);
    assert.equal(hex(await xwingPublicKey(seed)), hex(await s.SerializePublicKey(ex.publicKey)));
  });
});

/** test/fixtures/xwing/hpke-core-sealed.json: sealed by the @hpke/* code this replaced. */
const OLD = JSON.parse(
  readFileSync(join(REPO, "test/fixtures/xwing/hpke-core-sealed.json"), "utf8"),
) as {
  seed: string;
  fileKey: string;
  stanza: { type: string; fields: string[] };
  attested: {
    nonce: string;
    releases: { binding: "aad" | "info"; enc: string; ciphertext: string }[];
  };
  deriveKeyPair: { ikm: string; seed: string; publicKeySha256: string };
};

describe("X-Wing: what @hpke/core + @hpke/hybridkem-x-wing sealed still opens", () => {
  const seed = Buffer.from(OLD.seed, "hex");
  it("an mlkem768x25519 stanza (random eseed)", async () => {
    const stanza = {
      type: OLD.stanza.type,
      fields: OLD.stanza.fields.map((f) => Buffer.from(f, "hex")),
    };
    assert.equal((await unwrapXWing(stanza, seed))?.toString("hex"), OLD.fileKey);
    await assert.rejects(unwrapXWing(flip(stanza, 1, 1100), seed), code("E_DECRYPT"));
  });

  it("attested X-Wing releases, in both nonce-binding modes", async () => {
    assert.deepEqual(
      OLD.attested.releases.map((r) => r.binding),
      ["aad", "info"],
    );
    for (const r of OLD.attested.releases) {
      const fk = await openAttestedRelease(
        seed,
        r,
        OLD.attested.nonce,
        r.binding,
        "mlkem768x25519",
      );
      assert.equal(fk.toString("hex"), OLD.fileKey, r.binding);
      await assert.rejects(
        openAttestedRelease(seed, r, `${OLD.attested.nonce}x`, r.binding, "mlkem768x25519"),
        code("E_PROVIDER"),
      );
    }
  });

  it("DeriveKeyPair gives the key pair XWing.deriveKeyPair gave for the same ikm", async () => {
    const s = xwingSuite();
    const kp = await s.DeriveKeyPair(Buffer.from(OLD.deriveKeyPair.ikm, "hex"), true);
    assert.equal(hex(await s.SerializePrivateKey(kp.privateKey)), OLD.deriveKeyPair.seed);
    const pk = await s.SerializePublicKey(kp.publicKey);
    assert.equal(createHash("sha256").update(pk).digest("hex"), OLD.deriveKeyPair.publicKeySha256);
  });
});

describe("attested X-Wing release", () => {
  it("round-trips; an invalid or wrong-size ephemeral key is E_KEY", async () => {
    const v = publishedVectors()[2]!;
    const fk = randomBytes(32);
    const sealed = await sealAttestedRelease(v.pk, fk, "n0nce", "info", "mlkem768x25519");
    assert.equal(Buffer.from(sealed.enc, "base64").length, 1120);
    const opened = await openAttestedRelease(v.seed, sealed, "n0nce", "info", "mlkem768x25519");
    assert.deepEqual(opened, fk);
    for (const bad of [invalidEncapsulationKey(v.pk), v.pk.subarray(0, 1215)]) {
      await assert.rejects(
        sealAttestedRelease(bad, fk, "n0nce", "info", "mlkem768x25519"),
        code("E_KEY"),
      );
    }
  });
});

describe("mlkem768x25519 stanza", () => {
  it("wraps and unwraps a file key; fields are tag 16, enc 1120, ct 48", async () => {
    const { sk, pk } = await keyPair();
    const fk = randomBytes(32);
    const s = await wrapXWing(pk, fk);
    assert.equal(s.type, XWING_STANZA);
    assert.deepEqual(
      s.fields.map((f) => f.length),
      [16, 1120, 48],
    );
    assert.deepEqual(s.fields[0], xwingTag(pk));
    assert.deepEqual(await unwrapXWing(s, sk), fk);
  });

  it("a fixed eseed gives the same stanza twice, and its enc is X-Wing's ciphertext", async () => {
    const v = publishedVectors()[0]!;
    const fk = Buffer.alloc(32, 7);
    const a = await wrapXWing(v.pk, fk, { eseed: v.eseed });
    const b = await wrapXWing(v.pk, fk, { eseed: v.eseed });
    assert.deepEqual(a, b);
    assert.deepEqual(a.fields[1], v.ct);
    assert.deepEqual(await unwrapXWing(a, v.seed), fk);
  });

  it("another identity: not mine (null), never an error or a key", async () => {
    const a = await keyPair();
    const b = await keyPair();
    const s = await wrapXWing(a.pk, randomBytes(32));
    assert.equal(await unwrapXWing(s, b.sk), null);
    assert.equal(await parseXWingIdentity(b.identity).unwrap(s), null);
  });

  it("an x25519 identity ignores it, and a pq identity ignores x25519 stanzas", async () => {
    const pq = await keyPair();
    const x = generateX25519Identity();
    const s = await wrapXWing(pq.pk, randomBytes(32));
    assert.equal(await parseX25519Identity(x.identity).unwrap(s), null);
    const xs = await parseRecipient(x.recipient).wrap(randomBytes(32));
    assert.equal(await parseXWingIdentity(pq.identity).unwrap(xs), null);
  });

  it("rejects a modified enc (ML-KEM half and X25519 half) or ct with E_DECRYPT", async () => {
    const { sk, pk } = await keyPair();
    const s = await wrapXWing(pk, randomBytes(32));
    for (const [field, byte] of [
      [1, 0],
      [1, 500],
      [1, 1087],
      [1, 1088],
      [1, 1119],
      [2, 0],
      [2, 47],
    ] as const) {
      await assert.rejects(
        unwrapXWing(flip(s, field, byte), sk),
        code("E_DECRYPT"),
        `${field}:${byte}`,
      );
    }
  });

  it("a changed tag is not mine; the tag is bound into info, so re-tagging fails", async () => {
    const a = await keyPair();
    const b = await keyPair();
    const s = await wrapXWing(a.pk, randomBytes(32));
    assert.equal(await unwrapXWing(flip(s, 0), a.sk), null);
    // An attacker copies b's tag onto a's stanza: b's identity claims it and must fail to open.
    const retagged: Stanza = { type: s.type, fields: [xwingTag(b.pk), s.fields[1]!, s.fields[2]!] };
    await assert.rejects(unwrapXWing(retagged, b.sk), code("E_DECRYPT"));
  });

  it("rejects wrong field counts and lengths with E_MALFORMED", async () => {
    const { sk, pk } = await keyPair();
    const s = await wrapXWing(pk, randomBytes(32));
    const [tag, enc, ct] = s.fields as [Buffer, Buffer, Buffer];
    const bad: Buffer[][] = [
      [tag, enc],
      [tag, enc, ct, Buffer.alloc(0)],
      [tag.subarray(1), enc, ct],
      [tag, enc.subarray(0, 1119), ct],
      [tag, Buffer.concat([enc, Buffer.alloc(1)]), ct],
      [tag, enc.subarray(0, 32), ct], // an x25519-sized enc
      [tag, enc, ct.subarray(0, 47)],
    ];
    for (const fields of bad) {
      await assert.rejects(unwrapXWing({ type: XWING_STANZA, fields }, sk), code("E_MALFORMED"));
    }
  });

  it("refuses a public key that fails ML-KEM's encapsulation key check, or of the wrong size", async () => {
    const { pk } = await keyPair();
    await assert.rejects(wrapXWing(invalidEncapsulationKey(pk), randomBytes(32)), (e: unknown) => {
      assert.ok(code("E_KEY")(e));
      assert.match((e as Error).message, /is not a valid public key/);
      return true;
    });
    await assert.rejects(wrapXWing(pk.subarray(0, 1215), randomBytes(32)), code("E_KEY"));
    await assert.rejects(wrapXWing(pk, randomBytes(32), { eseed: randomBytes(63) }), code("E_KEY"));
  });

  it("opens a whole sealed file; the error names the identity by its public key only", async () => {
    const a = await keyPair();
    const b = await keyPair();
    const pt = randomBytes(5000);
    const fileKey = randomBytes(32);
    const stanza = await parseXWingRecipient(a.recipient).wrap(fileKey);
    const file = sealMessage(pt, fileKey, [stanza], { chunkSize: 1 << 14 });
    const header = readHeader(file);
    const fk = await unlockFileKey(header, [parseXWingIdentity(a.identity)]);
    assert.deepEqual(openMessage(file, header, fk), pt);
    const other = parseXWingIdentity(b.identity);
    await assert.rejects(unlockFileKey(header, [other]), (e: unknown) => {
      assert.ok(isTensorSealError(e, "E_NO_IDENTITY"));
      assert.ok(e.message.includes(b.recipient.slice(0, 24)), e.message);
      assert.ok(!e.message.toUpperCase().includes(b.identity.slice(21, 40)), "no secret in it");
      return true;
    });
  });
});

describe("mlkem768x25519 key strings", () => {
  it("tseal1pq1... (1216 bytes) and TSEAL-SECRET-KEY-PQ-1... (32-byte seed) round-trip", async () => {
    const g = await generateXWingIdentity();
    assert.match(g.recipient, /^tseal1pq1[02-9ac-hj-np-z]+$/);
    assert.match(g.identity, /^TSEAL-SECRET-KEY-PQ-1[02-9AC-HJ-NP-Z]+$/);
    const sk = decodeXWingIdentity(g.identity);
    assert.equal(sk.length, 32);
    assert.equal(encodeXWingIdentity(sk), g.identity);
    assert.equal(decodeXWingIdentity(g.identity.toLowerCase()).length, 32);
    const pk = decodeXWingRecipient(g.recipient);
    assert.equal(pk.length, 1216);
    assert.equal(encodeXWingRecipient(pk), g.recipient);
    assert.deepEqual(await xwingPublicKey(sk), pk);
  });

  it("rejects wrong lengths, wrong prefixes, mixed case and typos with E_KEY, never echoing", async () => {
    const g = await generateXWingIdentity();
    const pk = decodeXWingRecipient(g.recipient);
    const sk = decodeXWingIdentity(g.identity);
    const enc = (hrp: string, b: Uint8Array) => bech32.encode(hrp, bech32.toWords(b), false);
    const badRecipients = [
      enc("tseal1pq", pk.subarray(0, 1215)),
      enc("tseal1pq", Buffer.concat([pk, Buffer.alloc(1)])),
      enc("tseal1pq", pk.subarray(0, 32)), // an X25519-sized payload
      enc("tseal", pk), // the X25519 prefix on a pq key
      `${g.recipient.slice(0, 100)}${g.recipient[100] === "q" ? "p" : "q"}${g.recipient.slice(101)}`,
      g.recipient.slice(0, -1),
      `${g.recipient.slice(0, 50).toUpperCase()}${g.recipient.slice(50)}`,
    ];
    for (const s of badRecipients) assert.throws(() => decodeXWingRecipient(s), code("E_KEY"));
    const badIdentities = [
      enc("tseal-secret-key-pq-", sk.subarray(0, 31)).toUpperCase(),
      enc("tseal-secret-key-pq-", Buffer.concat([sk, sk])).toUpperCase(),
      enc("tseal-secret-key-", sk).toUpperCase(), // an X25519 identity string
    ];
    for (const s of badIdentities) {
      assert.throws(
        () => decodeXWingIdentity(s),
        (e: unknown) => code("E_KEY")(e) && !(e as Error).message.includes(s.slice(22, 40)),
      );
    }
  });

  it("parseRecipient routes tseal1pq1... before tseal1...; a pq secret as recipient is refused", async () => {
    const g = await generateXWingIdentity();
    assert.equal(parseRecipient(g.recipient).id, g.recipient);
    const s = await parseRecipient(g.recipient).wrap(randomBytes(32));
    assert.equal(s.type, XWING_STANZA);
    assert.throws(
      () => parseRecipient(g.identity),
      (e: unknown) => code("E_USAGE")(e) && !(e as Error).message.includes(g.identity.slice(21)),
    );
  });

  it("identity files mix x25519 and pq identities; a bad pq line is named by number only", async () => {
    const pq = await generateXWingIdentity();
    const x = generateX25519Identity();
    const text = `${await formatXWingIdentityFile(pq.identity)}\n${x.identity}\n`;
    assert.ok(text.includes(`# recipient: ${pq.recipient}\n`));
    const ids = parseIdentityFile(text);
    assert.equal(ids.length, 2);
    const fk = randomBytes(32);
    assert.deepEqual(await ids[0]!.unwrap(await parseRecipient(pq.recipient).wrap(fk)), fk);
    const broken = `# c\n${pq.identity.slice(0, -1)}\n`;
    assert.throws(
      () => parseIdentityFile(broken),
      (e: unknown) =>
        code("E_KEY")(e) &&
        (e as Error).message.includes("line 2") &&
        !(e as Error).message.includes(pq.identity.slice(21, 40)),
    );
  });
});
