/**
 * The mlkem768x25519 (X-Wing) recipient: the KEM against the published X-Wing vectors, the
 * stanza and key strings, and the attacks it must reject (other identity, modified stanza,
 * wrong lengths, mixed-up key strings).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { XWing } from "@hpke/hybridkem-x-wing";
import { bech32 } from "@scure/base";
import { isTensorSealError } from "../../src/format/errors.js";
import { openMessage, readHeader, sealMessage } from "../../src/format/message.js";
import type { Stanza } from "../../src/format/stanza.js";
import { unlockFileKey } from "../../src/format/unlock.js";
import { parseIdentityFile, parseRecipient } from "../../src/keys/recipients.js";
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
const u8 = (b: Uint8Array) => new Uint8Array(b); // an unpooled copy, as @hpke wants

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

describe("X-Wing KEM (@hpke/hybridkem-x-wing) against draft-connolly-cfrg-xwing-kem-10", () => {
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
    it(`vector ${i}: seed -> pk, EncapsulateDerand -> (ct, ss), Decapsulate -> ss`, async () => {
      assert.deepEqual(await xwingPublicKey(v.seed), v.pk, "xwingPublicKey");
      const kem = new XWing();
      const kp = await kem.generateKeyPairDerand(u8(v.seed));
      assert.deepEqual(Buffer.from(await kem.serializePublicKey(kp.publicKey)), v.pk);
      const { enc, sharedSecret } = await kem.encap({
        recipientPublicKey: kp.publicKey,
        ekm: u8(v.eseed).buffer,
      });
      assert.deepEqual(Buffer.from(enc), v.ct);
      assert.deepEqual(Buffer.from(sharedSecret), v.ss);
      const ss = await kem.decap({ recipientKey: kp.privateKey, enc: u8(v.ct).buffer });
      assert.deepEqual(Buffer.from(ss), v.ss);
    });
  }

  it("a modified ciphertext decapsulates to another secret (ML-KEM implicit rejection)", async () => {
    const v = vectors[0]!;
    const kem = new XWing();
    const kp = await kem.generateKeyPairDerand(u8(v.seed));
    const ct = u8(v.ct);
    ct[10]! ^= 1;
    const ss = await kem.decap({ recipientKey: kp.privateKey, enc: ct.buffer });
    assert.notDeepEqual(Buffer.from(ss), v.ss);
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

  it("refuses a public key that fails ML-KEM's encapsulation key check", async () => {
    const { pk } = await keyPair();
    const bad = Buffer.from(pk);
    bad.fill(0xff, 0, 384); // coefficients >= q: not a valid ML-KEM-768 encapsulation key
    await assert.rejects(wrapXWing(bad, randomBytes(32)), code("E_KEY"));
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
