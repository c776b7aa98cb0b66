/**
 * TensorSeal's deterministic cross-language test vectors (spec/vectors/, described in
 * spec/vectors/README.md). Everything random in a real seal (file key, payload salt, kek nonce,
 * passphrase salt, x25519 ephemeral key, X-Wing encapsulation seed) is fixed here, so the output is byte-for-byte stable;
 * `generate.ts` writes it and test/format/vectors.test.ts checks the committed files against it.
 *
 * Every vector is also opened (or refused) by the reference reader while it is built, so a
 * vector whose expectation disagrees with src/format cannot be generated.
 */
import { createHash } from "node:crypto";
import { deriveChunkKeys } from "../../src/format/chunked.js";
import { fail, isTensorSealError } from "../../src/format/errors.js";
import { headerMacKey, payloadInputKey } from "../../src/format/filekey.js";
import { encodeSlot, PREFIX_SIZE, parsePrefix, slotOffset } from "../../src/format/header.js";
import {
  DEFAULT_CHUNK_SIZE,
  type DescriptorInit,
  openMessage,
  readHeader,
  sealMessage,
} from "../../src/format/message.js";
import { payloadContext } from "../../src/format/payload.js";
import { publicRecipient } from "../../src/format/public.js";
import type { Identity, Stanza } from "../../src/format/stanza.js";
import { unlockFileKey } from "../../src/format/unlock.js";
import { kekIdentity, wrapKek } from "../../src/keys/kek.js";
import { passphraseIdentity, wrapPassphrase } from "../../src/keys/passphrase.js";
import {
  decodeX25519Recipient,
  encodeX25519Identity,
  encodeX25519Recipient,
  parseX25519Identity,
  wrapX25519,
} from "../../src/keys/x25519.js";
import { x25519PublicKey } from "../../src/keys/x25519-key.js";
import {
  decodeXWingRecipient,
  encodeXWingIdentity,
  encodeXWingRecipient,
  parseXWingIdentity,
  wrapXWing,
  xwingPublicKey,
} from "../../src/keys/xwing.js";

export const VECTOR_VERSION = 1;
/** Files up to this size are stored whole as hex. */
const MAX_FILE_HEX = 100 * 1024;
/** Plaintexts up to this size are also stored as hex. */
const MAX_PLAINTEXT_HEX = 1024;

// ---------------------------------------------------------------------------------------------
// Fixed inputs. Each is SHA-256 of a label (truncated), so they look random but are reproducible.

function fixed(label: string, size: number): Buffer {
  return createHash("sha256")
    .update(`tensorseal.dev/v1 test vector ${label}`)
    .digest()
    .subarray(0, size);
}

const FILE_KEY = fixed("file key", 32);
const PAYLOAD_SALT = fixed("payload salt", 24);
const KEK = { name: "models/prod", version: 3, kek: fixed("kek material", 32) };
const KEK_NONCE = fixed("kek nonce", 12);
const PASSPHRASE = "correct horse battery staple — Ünïcödé"; // NFC form
const PASSPHRASE_NFD = PASSPHRASE.normalize("NFD"); // what a reader may be handed
const PASSPHRASE_SALT = fixed("passphrase salt", 16);
const PASSPHRASE_LOGN = 10;
const KS_NAME = "models.prod"; // a keystore key name ([A-Za-z0-9._-])
const KS_V3 = {
  version: 3,
  kek: fixed("keystore kek v3", 32),
  nonce: fixed("keystore nonce v3", 12),
};
const KS_V4 = {
  version: 4,
  kek: fixed("keystore kek v4", 32),
  nonce: fixed("keystore nonce v4", 12),
};
const X25519_SECRET = fixed("x25519 identity", 32);
const X25519_EPHEMERAL = fixed("x25519 ephemeral", 32);
const XWING_SEED = fixed("mlkem768x25519 identity", 32);
const XWING_OTHER_SEED = fixed("mlkem768x25519 other identity", 32);
/** X-Wing's EncapsulateDerand seed: 32 bytes of ML-KEM randomness, then the X25519 ephemeral. */
const XWING_ESEED = Buffer.concat([
  fixed("mlkem768x25519 eseed mlkem", 32),
  fixed("mlkem768x25519 eseed x25519", 32),
]);

// ---------------------------------------------------------------------------------------------
// JSON shapes (see spec/vectors/README.md).

export type RecipientSpec =
  | { type: "kek"; name: string; version: number; kek: string; nonce: string }
  | { type: "passphrase"; passphrase: string; salt: string; logN: number }
  | { type: "x25519"; recipient: string; ephemeralPrivateKey: string }
  | { type: "mlkem768x25519"; recipient: string; eseed: string }
  | { type: "raw"; stanzaType: string; fields: string[] }
  /** Suite 2 (spec §2.5): the `public` stanza publishing the file key itself. */
  | { type: "public" };

/** A keystore version's lifecycle state (spec/KEYSTORE.md); only `enabled` may unwrap. */
export type VersionStateSpec = "enabled" | "disabled" | "scheduled_for_destruction" | "destroyed";

export type IdentitySpec =
  | { type: "kek"; name: string; version: number; kek: string }
  | {
      type: "keystore";
      versions: { name: string; version: number; kek: string; state: VersionStateSpec }[];
    }
  | { type: "passphrase"; passphrase: string }
  | { type: "x25519"; identity: string }
  | { type: "mlkem768x25519"; identity: string };

export interface PlaintextSpec {
  rule: "mod251";
  length: number;
  sha256: string;
  hex?: string;
}

export interface ValidVector {
  name: string;
  description: string;
  valid: true;
  fileKey: string;
  payloadSalt: string;
  /** `suite` appears only when it is 2 (integrity only, spec §2.5). */
  descriptor: Required<Omit<DescriptorInit, "suite">> & { suite?: number };
  recipients: RecipientSpec[];
  /** Present when slot 1 was rewritten (generation 2) after sealing with `recipients`. */
  rewrap?: { generation: 2; slot: 1; recipients: RecipientSpec[]; keepOldSlot: boolean };
  /** Each identity alone must open the file. */
  identities: IdentitySpec[];
  plaintext: PlaintextSpec;
  intermediate: {
    descriptor: string;
    headerMacKey: string;
    payloadInputKey: string;
    aeadKey: string;
    baseNonce: string;
    commitment: string;
    headerLength: number;
  };
  fileLength: number;
  fileSha256: string;
  header?: string;
  file?: string;
}

export type Mutation =
  | { kind: "flip-bit"; offset: number; bit: number; fixSlotChecksum?: 0 | 1 }
  | { kind: "set-byte"; offset: number; value: number; fixSlotChecksum?: 0 | 1 }
  | { kind: "truncate"; length: number }
  | { kind: "append"; hex: string }
  | { kind: "copy"; from: number; to: number; length: number };

export interface InvalidVector {
  name: string;
  description: string;
  valid: false;
  base: string;
  mutations: Mutation[];
  identities: IdentitySpec[];
  expectedError: string;
  fileLength: number;
  fileSha256: string;
}

export type Vector = ValidVector | InvalidVector;

// ---------------------------------------------------------------------------------------------
// Helpers shared with the test.

export function plaintextFor(p: Pick<PlaintextSpec, "length">): Buffer {
  const out = Buffer.alloc(p.length);
  for (let i = 0; i < p.length; i++) out[i] = i % 251;
  return out;
}

export function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

export function identityFor(spec: IdentitySpec): Identity {
  switch (spec.type) {
    case "kek": {
      const material = Buffer.from(spec.kek, "hex");
      return kekIdentity(`kek:${spec.name}`, (ref) =>
        ref.name === spec.name && ref.version === spec.version ? material : null,
      );
    }
    case "keystore":
      // Holds every listed version; a version that is not enabled refuses (E_KEY_STATE), as
      // the keystore does, and versions it does not list are "not mine".
      return kekIdentity("keystore", (ref) => {
        const v = spec.versions.find((x) => x.name === ref.name && x.version === ref.version);
        if (!v) return null;
        if (v.state !== "enabled") {
          fail("E_KEY_STATE", `version ${v.version} of key ${v.name} is ${v.state}`);
        }
        return Buffer.from(v.kek, "hex");
      });
    case "passphrase":
      return passphraseIdentity(spec.passphrase);
    case "x25519":
      return parseX25519Identity(spec.identity);
    case "mlkem768x25519":
      return parseXWingIdentity(spec.identity);
  }
}

/** The reference reader: header, unlock, payload. */
export async function openFile(file: Buffer, identities: readonly IdentitySpec[]): Promise<Buffer> {
  const header = readHeader(file);
  const fileKey = await unlockFileKey(header, identities.map(identityFor));
  try {
    return openMessage(file, header, fileKey);
  } finally {
    fileKey.fill(0);
  }
}

export function applyMutations(base: Buffer, mutations: readonly Mutation[]): Buffer {
  let file = Buffer.from(base);
  for (const m of mutations) {
    switch (m.kind) {
      case "flip-bit":
      case "set-byte":
        if (m.kind === "flip-bit") file[m.offset] = file[m.offset]! ^ (1 << m.bit);
        else file[m.offset] = m.value;
        if (m.fixSlotChecksum !== undefined) fixSlotChecksum(file, m.fixSlotChecksum);
        break;
      case "truncate":
        file = file.subarray(0, m.length);
        break;
      case "append":
        file = Buffer.concat([file, Buffer.from(m.hex, "hex")]);
        break;
      case "copy":
        file.copy(file, m.to, m.from, m.from + m.length);
        break;
    }
  }
  return file;
}

/** Recomputes a slot's SHA-256 checksum, as an attacker who edits a slot would. */
function fixSlotChecksum(file: Buffer, slot: 0 | 1): void {
  const prefix = parsePrefix(file);
  const at = slotOffset(prefix, slot);
  const bodyLength = file.readUInt32BE(at);
  const end = at + 4 + bodyLength + 32;
  createHash("sha256").update(file.subarray(at, end)).digest().copy(file, end);
}

// ---------------------------------------------------------------------------------------------
// Building.

async function stanzaFor(spec: RecipientSpec, fileKey: Buffer): Promise<Stanza> {
  switch (spec.type) {
    case "kek":
      return wrapKek(spec, Buffer.from(spec.kek, "hex"), fileKey, Buffer.from(spec.nonce, "hex"));
    case "passphrase":
      return wrapPassphrase(spec.passphrase, fileKey, {
        salt: Buffer.from(spec.salt, "hex"),
        workFactor: spec.logN,
      });
    case "x25519":
      return wrapX25519(decodeX25519Recipient(spec.recipient), fileKey, {
        ephemeralPrivateKey: Buffer.from(spec.ephemeralPrivateKey, "hex"),
      });
    case "mlkem768x25519":
      return wrapXWing(decodeXWingRecipient(spec.recipient), fileKey, {
        eseed: Buffer.from(spec.eseed, "hex"),
      });
    case "raw":
      return { type: spec.stanzaType, fields: spec.fields.map((f) => Buffer.from(f, "hex")) };
    case "public":
      return publicRecipient().wrap(fileKey);
  }
}

const R_KEK: RecipientSpec = {
  type: "kek",
  name: KEK.name,
  version: KEK.version,
  kek: KEK.kek.toString("hex"),
  nonce: KEK_NONCE.toString("hex"),
};
const I_KEK: IdentitySpec = {
  type: "kek",
  name: KEK.name,
  version: KEK.version,
  kek: KEK.kek.toString("hex"),
};
const R_PASS: RecipientSpec = {
  type: "passphrase",
  passphrase: PASSPHRASE,
  salt: PASSPHRASE_SALT.toString("hex"),
  logN: PASSPHRASE_LOGN,
};
const I_PASS: IdentitySpec = { type: "passphrase", passphrase: PASSPHRASE_NFD };
const R_X25519: RecipientSpec = {
  type: "x25519",
  recipient: encodeX25519Recipient(x25519PublicKey(X25519_SECRET)),
  ephemeralPrivateKey: X25519_EPHEMERAL.toString("hex"),
};
const I_X25519: IdentitySpec = { type: "x25519", identity: encodeX25519Identity(X25519_SECRET) };
const R_XWING: RecipientSpec = {
  type: "mlkem768x25519",
  recipient: encodeXWingRecipient(await xwingPublicKey(XWING_SEED)),
  eseed: XWING_ESEED.toString("hex"),
};
const I_XWING: IdentitySpec = { type: "mlkem768x25519", identity: encodeXWingIdentity(XWING_SEED) };
const I_XWING_OTHER: IdentitySpec = {
  type: "mlkem768x25519",
  identity: encodeXWingIdentity(XWING_OTHER_SEED),
};
const ksRecipient = (v: typeof KS_V3): RecipientSpec => ({
  type: "kek",
  name: KS_NAME,
  version: v.version,
  kek: v.kek.toString("hex"),
  nonce: v.nonce.toString("hex"),
});
const ksVersion = (v: typeof KS_V3, state: VersionStateSpec, kek = v.kek) => ({
  name: KS_NAME,
  version: v.version,
  kek: kek.toString("hex"),
  state,
});
/** A keystore holding v3 (disabled) and v4 (enabled): v3's stanza is refused, v4's opens. */
const I_KS_V3_DISABLED: IdentitySpec = {
  type: "keystore",
  versions: [ksVersion(KS_V3, "disabled"), ksVersion(KS_V4, "enabled")],
};
const R_UNKNOWN: RecipientSpec = {
  type: "raw",
  stanzaType: "future-kms",
  fields: ["61726e3a6578616d706c65", "", fixed("unknown stanza", 32).toString("hex")],
};

interface Case {
  name: string;
  description: string;
  length: number;
  chunkSize?: number;
  recipients: RecipientSpec[];
  identities: IdentitySpec[];
  /** Rewrites the header as a rewrap would: generation 2 in slot 1 for these recipients. */
  rewrap?: { recipients: RecipientSpec[]; keepOldSlot: boolean };
  init?: Omit<DescriptorInit, "chunkSize">;
}

const K16 = 16384;
/** Public-tier vectors (spec §2.5): the published key is the shared test file key, on purpose,
 * so that a public header on an encrypted payload of the same key shows the suite binding. */
const PUBLIC_INIT = {
  suite: 2,
  contentType: "application/json",
  context: { "tensorseal.path": "config.json" },
  labels: { "tensorseal:tier": "public", model: "demo" },
};
const CASES: Case[] = [
  ...[0, 1, K16 - 1, K16, K16 + 1, 3 * K16 + 5].map((length) => ({
    name: `kek-16k-${length}`,
    description: `kek stanza, 16 KiB chunks (Cobblestone-256 payload), ${length}-byte plaintext`,
    length,
    chunkSize: K16,
    recipients: [R_KEK],
    identities: [I_KEK],
  })),
  {
    name: "kek-1m-2621447",
    description: "kek stanza, default 1 MiB chunks, 2.5 MiB + 7 bytes (3 chunks)",
    length: 2.5 * 1024 * 1024 + 7,
    recipients: [R_KEK],
    identities: [I_KEK],
  },
  {
    name: "passphrase-16k-100",
    description:
      "passphrase stanza (scrypt logN 10); the identity is given the NFD form of the passphrase",
    length: 100,
    chunkSize: K16,
    recipients: [R_PASS],
    identities: [I_PASS],
  },
  {
    name: "x25519-16k-100",
    description: "x25519 (HPKE) stanza with a fixed ephemeral key",
    length: 100,
    chunkSize: K16,
    recipients: [R_X25519],
    identities: [I_X25519],
  },
  {
    name: "mlkem768x25519-16k-100",
    description:
      "mlkem768x25519 (HPKE with the X-Wing KEM) stanza with a fixed encapsulation seed, next to an x25519 stanza; each identity alone opens it",
    length: 100,
    chunkSize: K16,
    recipients: [R_XWING, R_X25519],
    identities: [I_XWING, I_X25519],
  },
  {
    name: "multi-16k-20000",
    description:
      "kek + x25519 + passphrase wrapping one file key, with context, labels and content type; each identity alone opens it",
    length: 20000,
    chunkSize: K16,
    recipients: [R_KEK, R_X25519, R_PASS],
    identities: [I_KEK, I_X25519, I_PASS],
    init: {
      contentType: "application/vnd.safetensors",
      context: { tenant: "acme", model: "llama-3-8b", stage: "prod" },
      labels: { owner: "ml-platform", zé: "é-last", Zeta: "upper case sorts first", a: "" },
    },
  },
  {
    name: "metadata-16k-100",
    description:
      "governance metadata (spec §2.2.1): tier, purpose and owner as reserved tensorseal: labels next to an ordinary label; authenticated like every descriptor byte",
    length: 100,
    chunkSize: K16,
    recipients: [R_KEK],
    identities: [I_KEK],
    init: {
      labels: {
        "tensorseal:owner": "ml-platform@example.com",
        "tensorseal:purpose": "fraud-detection weights, production",
        "tensorseal:tier": "confidential",
        team: "ml",
      },
    },
  },
  {
    name: "rewrap-16k-100",
    description:
      "sealed for kek, then rewrapped for x25519 only: slot 1 holds generation 2, slot 0 is zero",
    length: 100,
    chunkSize: K16,
    recipients: [R_KEK],
    rewrap: { recipients: [R_X25519], keepOldSlot: false },
    identities: [I_X25519],
  },
  {
    name: "interrupted-rewrap-16k-100",
    description:
      "rewrap interrupted before slot 0 was zeroed: generation 2 (x25519) is active, generation 1 (kek) stale",
    length: 100,
    chunkSize: K16,
    recipients: [R_KEK],
    rewrap: { recipients: [R_X25519], keepOldSlot: true },
    identities: [I_X25519],
  },
  {
    name: "key-state-16k-100",
    description:
      "kek stanzas for versions 3 and 4 of one key; a keystore whose version 3 is disabled refuses the first stanza (E_KEY_STATE) and must go on to open the second",
    length: 100,
    chunkSize: K16,
    recipients: [ksRecipient(KS_V3), ksRecipient(KS_V4)],
    identities: [
      I_KS_V3_DISABLED,
      { type: "kek", name: KS_NAME, version: 4, kek: KS_V4.kek.toString("hex") },
    ],
  },
  ...[0, 100, 3 * K16 + 5].map((length) => ({
    name: `public-16k-${length}`,
    description: `public tier (suite 2, integrity only): the plaintext stands in the file with a GMAC tag per chunk, the file key is published in the only stanza; opens with no identity (and ignores any given); ${length}-byte plaintext`,
    length,
    chunkSize: K16,
    recipients: [{ type: "public" } as RecipientSpec],
    identities: [],
    init: PUBLIC_INIT,
  })),
  {
    name: "kek-public-tier-16k-100",
    description:
      "an encrypted (suite 1) kek file whose tier label is public: a writer may encrypt a public-tier file; the base of the downgrade vectors",
    length: 100,
    chunkSize: K16,
    recipients: [R_KEK],
    identities: [I_KEK],
    init: { ...PUBLIC_INIT, suite: 1 },
  },
  {
    name: "unknown-stanza-16k-1",
    description: "an unknown stanza type (future-kms) before a kek stanza: readers skip it",
    length: 1,
    chunkSize: K16,
    recipients: [R_UNKNOWN, R_KEK],
    identities: [I_KEK],
  },
];

/** Seals a valid vector from its recorded inputs only (what a second implementation does). */
export async function sealVector(
  v: Pick<ValidVector, "fileKey" | "payloadSalt" | "descriptor" | "recipients" | "rewrap"> & {
    plaintext: Pick<PlaintextSpec, "length">;
  },
): Promise<Buffer> {
  const fileKey = Buffer.from(v.fileKey, "hex");
  const stanzas: Stanza[] = [];
  for (const r of v.recipients) stanzas.push(await stanzaFor(r, fileKey));
  const file = sealMessage(plaintextFor(v.plaintext), fileKey, stanzas, v.descriptor, {
    salt: Buffer.from(v.payloadSalt, "hex"),
  });
  if (v.rewrap) {
    const h = readHeader(file);
    const next: Stanza[] = [];
    for (const r of v.rewrap.recipients) next.push(await stanzaFor(r, fileKey));
    const slot = encodeSlot(
      fileKey,
      h.prefixBytes,
      h.descriptorBytes,
      { generation: v.rewrap.generation, stanzas: next },
      h.slotCapacity,
    );
    slot.copy(file, slotOffset(h, v.rewrap.slot));
    if (!v.rewrap.keepOldSlot) file.fill(0, slotOffset(h, 0), slotOffset(h, 1));
  }
  return file;
}

async function buildValid(c: Case): Promise<{ vector: ValidVector; file: Buffer }> {
  const plaintext = plaintextFor(c);
  const inputs = {
    fileKey: FILE_KEY.toString("hex"),
    payloadSalt: PAYLOAD_SALT.toString("hex"),
    descriptor: {
      chunkSize: c.chunkSize ?? DEFAULT_CHUNK_SIZE,
      contentType: c.init?.contentType ?? "application/octet-stream",
      context: c.init?.context ?? {},
      labels: c.init?.labels ?? {},
      ...(c.init?.suite !== undefined ? { suite: c.init.suite } : {}),
    },
    recipients: c.recipients,
    ...(c.rewrap ? { rewrap: { generation: 2 as const, slot: 1 as const, ...c.rewrap } } : {}),
  };
  const file = await sealVector({ ...inputs, plaintext: { length: c.length } });
  const header = readHeader(file);
  const d = header.descriptor;
  const inputKey = payloadInputKey(FILE_KEY);
  const keys = deriveChunkKeys(
    inputKey,
    PAYLOAD_SALT,
    payloadContext(header.descriptorBytes),
    d.chunkSize,
  );
  for (const id of c.identities) {
    const opened = await openFile(file, [id]);
    if (!opened.equals(plaintext)) throw new Error(`${c.name}: ${id.type} opened wrong bytes`);
  }
  const vector: ValidVector = {
    name: c.name,
    description: c.description,
    valid: true,
    ...inputs,
    descriptor: {
      chunkSize: d.chunkSize,
      contentType: d.contentType,
      context: { ...d.context },
      labels: { ...d.labels },
      ...(d.suite !== 1 ? { suite: d.suite } : {}),
    },
    identities: c.identities,
    plaintext: {
      rule: "mod251",
      length: plaintext.length,
      sha256: sha256(plaintext),
      ...(plaintext.length <= MAX_PLAINTEXT_HEX ? { hex: plaintext.toString("hex") } : {}),
    },
    intermediate: {
      descriptor: header.descriptorBytes.toString("hex"),
      headerMacKey: headerMacKey(FILE_KEY).toString("hex"),
      payloadInputKey: inputKey.toString("hex"),
      aeadKey: keys.aeadKey.toString("hex"),
      baseNonce: keys.baseNonce.toString("hex"),
      commitment: keys.commitment.toString("hex"),
      headerLength: header.headerLength,
    },
    fileLength: file.length,
    fileSha256: sha256(file),
    ...(file.length <= MAX_FILE_HEX
      ? { file: file.toString("hex") }
      : { header: file.subarray(0, header.headerLength).toString("hex") }),
  };
  return { vector, file };
}

/** Offsets inside a file sealed by sealMessage: slot 0 body and its stanza fields. */
function layout(file: Buffer) {
  const prefix = parsePrefix(file);
  const slot0 = slotOffset(prefix, 0);
  const bodyLength = file.readUInt32BE(slot0);
  const body = slot0 + 4;
  const fields: number[][] = [];
  let at = body + 8; // generation
  const count = file.readUInt16BE(at);
  at += 2;
  for (let s = 0; s < count; s++) {
    at += 1 + file[at]!; // type str8
    const n = file[at]!;
    at += 1;
    const offs: number[] = [];
    for (let f = 0; f < n; f++) {
      offs.push(at + 2);
      at += 2 + file.readUInt16BE(at);
    }
    fields.push(offs);
  }
  const payload = prefix.headerLength;
  return {
    descriptor: PREFIX_SIZE,
    slot0,
    slot1: slotOffset(prefix, 1),
    slotCapacity: prefix.slotCapacity,
    mac: body + bodyLength,
    fields,
    payload,
    commitment: payload + 24,
    chunk0: payload + 56,
  };
}

/** One set-byte mutation per byte of `bytes`, from `offset` on (each with `fixSlotChecksum`, if given). */
function setBytes(offset: number, bytes: Iterable<number>, fixSlotChecksum?: 0 | 1): Mutation[] {
  return [...bytes].map((value, i) => ({
    kind: "set-byte",
    offset: offset + i,
    value,
    ...(fixSlotChecksum === undefined ? {} : { fixSlotChecksum }),
  }));
}

interface NegativeCase {
  name: string;
  description: string;
  base: string;
  mutations: (l: ReturnType<typeof layout>, file: Buffer) => Mutation[];
  identities?: IdentitySpec[];
  expectedError: string;
}

const NEGATIVE: NegativeCase[] = [
  {
    name: "bad-magic",
    description: "first magic byte changed",
    base: "kek-16k-16385",
    mutations: () => [{ kind: "flip-bit", offset: 1, bit: 0 }],
    expectedError: "E_NOT_TSEAL",
  },
  {
    name: "bad-version",
    description: "format version 2",
    base: "kek-16k-16385",
    mutations: () => [{ kind: "set-byte", offset: 8, value: 2 }],
    expectedError: "E_UNSUPPORTED",
  },
  {
    name: "descriptor-bit-flip",
    description: "one bit flipped in the descriptor's content type: still well formed, MAC fails",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "flip-bit", offset: l.descriptor + 16, bit: 0 }],
    expectedError: "E_HEADER_MAC",
  },
  {
    name: "descriptor-unknown-flag",
    description: "descriptor flags byte gets an unknown bit",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "flip-bit", offset: l.descriptor + 3, bit: 1 }],
    expectedError: "E_MALFORMED",
  },
  {
    name: "stanza-bit-flip",
    description: "one bit flipped in the kek stanza without fixing the checksum: slot damaged",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "flip-bit", offset: l.fields[0]![3]!, bit: 0 }],
    expectedError: "E_MALFORMED",
  },
  {
    name: "stanza-wrapped-bit-flip",
    description: "one bit flipped in the kek wrapped key, slot checksum recomputed",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "flip-bit", offset: l.fields[0]![3]!, bit: 0, fixSlotChecksum: 0 }],
    expectedError: "E_DECRYPT",
  },
  {
    name: "stanza-version-bit-flip",
    description: "kek version changed to one the reader does not hold, checksum recomputed",
    base: "kek-16k-16385",
    mutations: (l) => [
      { kind: "flip-bit", offset: l.fields[0]![1]! + 3, bit: 2, fixSlotChecksum: 0 },
    ],
    expectedError: "E_NO_IDENTITY",
  },
  {
    name: "header-mac-bit-flip",
    description: "one bit flipped in the header MAC, slot checksum recomputed",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "flip-bit", offset: l.mac + 31, bit: 7, fixSlotChecksum: 0 }],
    expectedError: "E_HEADER_MAC",
  },
  {
    name: "equal-generations",
    description: "slot 0 copied into slot 1: two intact slots with generation 1",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "copy", from: l.slot0, to: l.slot1, length: l.slotCapacity }],
    expectedError: "E_MALFORMED",
  },
  {
    name: "commitment-bit-flip",
    description: "one bit flipped in the payload commitment",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "flip-bit", offset: l.commitment, bit: 3 }],
    expectedError: "E_COMMITMENT",
  },
  {
    name: "salt-bit-flip",
    description: "one bit flipped in the payload salt",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "flip-bit", offset: l.payload + 5, bit: 0 }],
    expectedError: "E_COMMITMENT",
  },
  {
    name: "chunk-tag-bit-flip",
    description: "one bit flipped in the tag of chunk 0 (a full chunk)",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "flip-bit", offset: l.chunk0 + K16 + 15, bit: 0 }],
    expectedError: "E_DECRYPT",
  },
  {
    name: "final-chunk-bit-flip",
    description: "one bit flipped in the ciphertext of the final (1-byte) chunk",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "flip-bit", offset: l.chunk0 + K16 + 16, bit: 0 }],
    expectedError: "E_DECRYPT",
  },
  {
    name: "truncated-last-byte",
    description: "last byte removed: the recorded length is larger than the payload holds",
    base: "kek-16k-16385",
    mutations: (_l, f) => [{ kind: "truncate", length: f.length - 1 }],
    expectedError: "E_TRUNCATED",
  },
  {
    name: "truncated-final-chunk",
    description: "the final chunk removed: the payload ends at a chunk boundary",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "truncate", length: l.chunk0 + K16 + 16 }],
    expectedError: "E_TRUNCATED",
  },
  {
    name: "truncated-payload",
    description: "the file ends right after the header",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "truncate", length: l.payload }],
    expectedError: "E_TRUNCATED",
  },
  {
    name: "truncated-header",
    description: "the file ends inside slot 1",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "truncate", length: l.slot1 + 100 }],
    expectedError: "E_TRUNCATED",
  },
  {
    name: "trailing-byte",
    description: "one zero byte appended after the final chunk",
    base: "kek-16k-16385",
    mutations: () => [{ kind: "append", hex: "00" }],
    expectedError: "E_TRAILING",
  },
  {
    name: "chunk-duplicated",
    description: "3 full chunks + 5 bytes; chunk 0 copied over chunk 1 (reordering)",
    base: "kek-16k-49157",
    mutations: (l) => [{ kind: "copy", from: l.chunk0, to: l.chunk0 + K16 + 16, length: K16 + 16 }],
    expectedError: "E_DECRYPT",
  },
  {
    name: "x25519-enc-bit-flip",
    description: "one bit flipped in the x25519 encapsulated key, checksum recomputed",
    base: "x25519-16k-100",
    mutations: (l) => [
      { kind: "flip-bit", offset: l.fields[0]![1]! + 7, bit: 1, fixSlotChecksum: 0 },
    ],
    expectedError: "E_DECRYPT",
  },
  {
    name: "x25519-tag-bit-flip",
    description: "x25519 recipient tag changed, checksum recomputed: no stanza for this identity",
    base: "x25519-16k-100",
    mutations: (l) => [{ kind: "flip-bit", offset: l.fields[0]![0]!, bit: 0, fixSlotChecksum: 0 }],
    expectedError: "E_NO_IDENTITY",
  },
  {
    name: "mlkem768x25519-enc-mlkem-bit-flip",
    description:
      "one bit flipped in the ML-KEM-768 ciphertext of the mlkem768x25519 enc, checksum recomputed (implicit rejection: the HPKE open fails)",
    base: "mlkem768x25519-16k-100",
    mutations: (l) => [
      { kind: "flip-bit", offset: l.fields[0]![1]! + 100, bit: 3, fixSlotChecksum: 0 },
    ],
    identities: [I_XWING],
    expectedError: "E_DECRYPT",
  },
  {
    name: "mlkem768x25519-enc-x25519-bit-flip",
    description:
      "one bit flipped in the X25519 part (last 32 bytes) of the mlkem768x25519 enc, checksum recomputed",
    base: "mlkem768x25519-16k-100",
    mutations: (l) => [
      { kind: "flip-bit", offset: l.fields[0]![1]! + 1100, bit: 0, fixSlotChecksum: 0 },
    ],
    identities: [I_XWING],
    expectedError: "E_DECRYPT",
  },
  {
    name: "mlkem768x25519-ct-bit-flip",
    description: "one bit flipped in the mlkem768x25519 HPKE ciphertext, checksum recomputed",
    base: "mlkem768x25519-16k-100",
    mutations: (l) => [
      { kind: "flip-bit", offset: l.fields[0]![2]! + 40, bit: 5, fixSlotChecksum: 0 },
    ],
    identities: [I_XWING],
    expectedError: "E_DECRYPT",
  },
  {
    name: "mlkem768x25519-tag-bit-flip",
    description:
      "mlkem768x25519 recipient tag changed, checksum recomputed: no stanza for this identity",
    base: "mlkem768x25519-16k-100",
    mutations: (l) => [{ kind: "flip-bit", offset: l.fields[0]![0]!, bit: 0, fixSlotChecksum: 0 }],
    identities: [I_XWING],
    expectedError: "E_NO_IDENTITY",
  },
  {
    name: "mlkem768x25519-enc-short",
    description:
      "the mlkem768x25519 enc length prefix says 1119 bytes (checksum recomputed): the stanza is malformed, never half-read",
    base: "mlkem768x25519-16k-100",
    mutations: (l) => [
      { kind: "set-byte", offset: l.fields[0]![1]! - 1, value: 0x5f, fixSlotChecksum: 0 },
    ],
    identities: [I_XWING],
    expectedError: "E_MALFORMED",
  },
  {
    name: "mlkem768x25519-wrong-identity",
    description: "the right file, another mlkem768x25519 identity",
    base: "mlkem768x25519-16k-100",
    mutations: () => [],
    identities: [I_XWING_OTHER],
    expectedError: "E_NO_IDENTITY",
  },
  {
    name: "passphrase-wrong",
    description: "the right file, a wrong passphrase",
    base: "passphrase-16k-100",
    mutations: () => [],
    identities: [{ type: "passphrase", passphrase: "correct horse battery staple" }],
    expectedError: "E_DECRYPT",
  },
  {
    name: "passphrase-logn-21",
    description:
      "passphrase work factor raised to 2^21, checksum recomputed: refused before scrypt",
    base: "passphrase-16k-100",
    mutations: (l) => [
      { kind: "set-byte", offset: l.fields[0]![1]!, value: 21, fixSlotChecksum: 0 },
    ],
    expectedError: "E_UNSUPPORTED",
  },
  {
    name: "passphrase-logn-9",
    description: "passphrase work factor lowered to 2^9, checksum recomputed",
    base: "passphrase-16k-100",
    mutations: (l) => [
      { kind: "set-byte", offset: l.fields[0]![1]!, value: 9, fixSlotChecksum: 0 },
    ],
    expectedError: "E_UNSUPPORTED",
  },
  {
    name: "rewrap-removed-recipient",
    description: "the kek recipient removed by the rewrap no longer opens the rewrapped file",
    base: "rewrap-16k-100",
    mutations: () => [],
    identities: [I_KEK],
    expectedError: "E_NO_IDENTITY",
  },
  {
    name: "interrupted-rewrap-stale-recipient",
    description: "the stale generation-1 slot is not used while generation 2 is intact",
    base: "interrupted-rewrap-16k-100",
    mutations: () => [],
    identities: [I_KEK],
    expectedError: "E_NO_IDENTITY",
  },
  {
    name: "rewrap-generation-rollback",
    description: "slot 1's generation lowered to 1 with the checksum recomputed: equal generations",
    base: "interrupted-rewrap-16k-100",
    mutations: (l) => [{ kind: "set-byte", offset: l.slot1 + 4 + 7, value: 1, fixSlotChecksum: 1 }],
    identities: [I_X25519],
    expectedError: "E_MALFORMED",
  },
  {
    name: "stale-slot-promoted",
    description:
      "the stale generation-1 slot relabelled generation 3 (checksum recomputed) to restore the removed kek recipient: the MAC covers the generation",
    base: "interrupted-rewrap-16k-100",
    mutations: (l) => [{ kind: "set-byte", offset: l.slot0 + 4 + 7, value: 3, fixSlotChecksum: 0 }],
    identities: [I_KEK],
    expectedError: "E_HEADER_MAC",
  },
  {
    name: "kek-name-invalid-utf8",
    description:
      "the kek name gets a 0xFF byte (checksum recomputed): a kek reader must reject the name, not replace it",
    base: "kek-16k-16385",
    mutations: (l) => [
      { kind: "set-byte", offset: l.fields[0]![0]! + 6, value: 0xff, fixSlotChecksum: 0 },
    ],
    expectedError: "E_MALFORMED",
  },
  {
    name: "kek-name-surrogate",
    description:
      "the kek name holds an encoded UTF-16 surrogate (ED A0 80, checksum recomputed): not UTF-8",
    base: "kek-16k-16385",
    mutations: (l) => setBytes(l.fields[0]![0]! + 6, [0xed, 0xa0, 0x80], 0),
    expectedError: "E_MALFORMED",
  },
  {
    name: "kek-name-overlong",
    description: "the kek name holds an overlong encoding of '/' (C0 AF, checksum recomputed)",
    base: "kek-16k-16385",
    mutations: (l) => setBytes(l.fields[0]![0]! + 6, [0xc0, 0xaf], 0),
    expectedError: "E_MALFORMED",
  },
  {
    name: "key-state-all-refused",
    description:
      "every stanza the keystore holds is refused (v3 disabled, v4 scheduled for destruction): E_KEY_STATE, not E_NO_IDENTITY",
    base: "key-state-16k-100",
    mutations: () => [],
    identities: [
      {
        type: "keystore",
        versions: [ksVersion(KS_V3, "disabled"), ksVersion(KS_V4, "scheduled_for_destruction")],
      },
    ],
    expectedError: "E_KEY_STATE",
  },
  {
    name: "key-state-refused-then-wrong-key",
    description:
      "v3 refused, then v4 is the keystore's own stanza but its material does not open it: the error ends the unlock",
    base: "key-state-16k-100",
    mutations: () => [],
    identities: [
      {
        type: "keystore",
        versions: [
          ksVersion(KS_V3, "disabled"),
          ksVersion(KS_V4, "enabled", fixed("keystore kek v4 other", 32)),
        ],
      },
    ],
    expectedError: "E_DECRYPT",
  },
  {
    name: "key-state-refused-then-header-mac",
    description:
      "header MAC bit flipped (checksum recomputed): going past the refused v3 stanza, the v4 key must still verify the header MAC",
    base: "key-state-16k-100",
    mutations: (l) => [{ kind: "flip-bit", offset: l.mac + 3, bit: 4, fixSlotChecksum: 0 }],
    identities: [I_KS_V3_DISABLED],
    expectedError: "E_HEADER_MAC",
  },
  {
    name: "metadata-tier-edited",
    description:
      "the tier label edited from confidential to public-files (same length, still well formed): the header MAC catches it",
    base: "metadata-16k-100",
    mutations: (l, file) =>
      setBytes(
        file.indexOf(Buffer.from("confidential"), l.descriptor),
        Buffer.from("public-files"),
      ),
    expectedError: "E_HEADER_MAC",
  },
  {
    name: "metadata-tier-invalid",
    description:
      "the tier label's first letter made upper case (Confidential): not a tier name, rejected before any key is used",
    base: "metadata-16k-100",
    mutations: (l, file) => [
      { kind: "flip-bit", offset: file.indexOf(Buffer.from("confidential"), l.descriptor), bit: 5 },
    ],
    expectedError: "E_MALFORMED",
  },
  {
    name: "public-chunk-bit-flip",
    description:
      "public file: one plaintext bit flipped in chunk 0 (a full chunk): its GMAC tag fails",
    base: "public-16k-49157",
    mutations: (l) => [{ kind: "flip-bit", offset: l.chunk0 + 100, bit: 2 }],
    expectedError: "E_DECRYPT",
  },
  {
    name: "public-final-chunk-bit-flip",
    description: "public file: one plaintext bit flipped in the final (5-byte) chunk",
    base: "public-16k-49157",
    mutations: (l) => [{ kind: "flip-bit", offset: l.chunk0 + 3 * (K16 + 16), bit: 0 }],
    expectedError: "E_DECRYPT",
  },
  {
    name: "public-chunk-duplicated",
    description: "public file: chunk 1 (plaintext and tag) copied over chunk 0 (reordering)",
    base: "public-16k-49157",
    mutations: (l) => [{ kind: "copy", from: l.chunk0 + K16 + 16, to: l.chunk0, length: K16 + 16 }],
    expectedError: "E_DECRYPT",
  },
  {
    name: "public-truncated-final-chunk",
    description: "public file: the final chunk removed (the payload ends at a chunk boundary)",
    base: "public-16k-49157",
    mutations: (l) => [{ kind: "truncate", length: l.chunk0 + 3 * (K16 + 16) }],
    expectedError: "E_TRUNCATED",
  },
  {
    name: "public-truncated-last-byte",
    description: "public file: last byte removed",
    base: "public-16k-100",
    mutations: (_l, file) => [{ kind: "truncate", length: file.length - 1 }],
    expectedError: "E_TRUNCATED",
  },
  {
    name: "public-published-key-bit-flip",
    description:
      "public file: one bit of the published file key flipped, slot checksum recomputed: the header MAC (keyed by it) fails",
    base: "public-16k-100",
    mutations: (l) => [{ kind: "flip-bit", offset: l.fields[0]![0]!, bit: 0, fixSlotChecksum: 0 }],
    expectedError: "E_HEADER_MAC",
  },
  {
    name: "public-descriptor-bit-flip",
    description:
      "public file: one bit of the content type flipped (still well formed): the header MAC fails",
    base: "public-16k-100",
    mutations: (l) => [{ kind: "flip-bit", offset: l.descriptor + 16, bit: 0 }],
    expectedError: "E_HEADER_MAC",
  },
  {
    name: "public-suite-on-kek-file",
    description:
      "downgrade: the suite of an encrypted kek file set to 2 (public); its tier is not public: rejected before any key is used",
    base: "kek-16k-16385",
    mutations: (l) => [{ kind: "set-byte", offset: l.descriptor + 1, value: 2 }],
    expectedError: "E_MALFORMED",
  },
  {
    name: "public-suite-on-encrypted-public-tier",
    description:
      "downgrade: the suite of an encrypted file of tier public set to 2: its slot holds a kek stanza, not the public stanza a suite-2 file needs",
    base: "kek-public-tier-16k-100",
    mutations: (l) => [{ kind: "set-byte", offset: l.descriptor + 1, value: 2 }],
    expectedError: "E_MALFORMED",
  },
  {
    name: "public-suite-cleared",
    description:
      "a public file's suite set to 1 (encrypted): an encrypted file must not hold a public stanza",
    base: "public-16k-100",
    mutations: (l) => [{ kind: "set-byte", offset: l.descriptor + 1, value: 1 }],
    expectedError: "E_MALFORMED",
  },
  {
    name: "public-header-on-encrypted-payload",
    description:
      "the header of a public file spliced onto the payload of an encrypted file with the same file key and length: the commitment binds the payload to the suite",
    base: "public-16k-100",
    mutations: (l, file) => [
      { kind: "truncate", length: l.payload },
      { kind: "append", hex: encryptedPayloadHex(file.length - l.payload) },
    ],
    expectedError: "E_COMMITMENT",
  },
  {
    name: "unknown-stanza-only-identity-missing",
    description: "a file with an unknown stanza and a kek stanza, opened with an x25519 identity",
    base: "unknown-stanza-16k-1",
    mutations: () => [],
    identities: [I_X25519],
    expectedError: "E_NO_IDENTITY",
  },
];

/** The payload (salt, commitment, chunks) of kek-public-tier-16k-100, sealed again here. */
let encryptedPayload: Buffer | null = null;
function encryptedPayloadHex(length: number): string {
  if (!encryptedPayload || encryptedPayload.length !== length) {
    throw new Error("kek-public-tier-16k-100 payload not built or of another length");
  }
  return encryptedPayload.toString("hex");
}

export async function buildVectors(): Promise<Map<string, Vector>> {
  const out = new Map<string, Vector>();
  const files = new Map<string, Buffer>();
  for (const c of CASES) {
    const { vector, file } = await buildValid(c);
    out.set(`valid-${c.name}`, vector);
    files.set(c.name, file);
    if (c.name === "kek-public-tier-16k-100") {
      encryptedPayload = file.subarray(readHeader(file).headerLength);
    }
  }
  for (const n of NEGATIVE) {
    const base = files.get(n.base);
    if (!base) throw new Error(`${n.name}: no base vector ${n.base}`);
    const mutations = n.mutations(layout(base), base);
    const file = applyMutations(base, mutations);
    const identities = n.identities ?? (out.get(`valid-${n.base}`) as ValidVector).identities;
    let code = "opened";
    try {
      await openFile(file, identities);
    } catch (e) {
      if (!isTensorSealError(e)) throw e;
      code = e.code;
    }
    if (code !== n.expectedError) {
      throw new Error(`${n.name}: expected ${n.expectedError}, the reader gave ${code}`);
    }
    out.set(`invalid-${n.name}`, {
      name: n.name,
      description: n.description,
      valid: false,
      base: n.base,
      mutations,
      identities,
      expectedError: n.expectedError,
      fileLength: file.length,
      fileSha256: sha256(file),
    });
  }
  return out;
}

/** The exact bytes of each vector file. */
export function serialize(v: Vector): string {
  return `${JSON.stringify({ vectorVersion: VECTOR_VERSION, ...v }, null, 2)}\n`;
}
