/** Attested release (issue #4 §5): the file key HPKE-sealed to a client's ephemeral key. */
import { createHash } from "node:crypto";
import { fail, TensorSealError } from "../../format/errors.js";
import type { Stanza } from "../../format/stanza.js";
import { x25519Suite } from "../hpke-node.js";
import { generateX25519KeyPair } from "../x25519-key.js";
import type { ServiceClient } from "./client.js";
import { stanzaToWire } from "./stanza.js";
/** HPKE info label of attested releases (docs/SERVICE.md "Attested release"). */
export const ATTESTED_RELEASE_INFO = "tensorseal.dev/v1 attested-release";

/**
 * The KEM a release is sealed with (request field `kem`):
 * - `"x25519"` (the default when a request names none): DHKEM(X25519, HKDF-SHA256), a 32-byte
 *   ephemeral public key, info label {@link ATTESTED_RELEASE_INFO};
 * - `"mlkem768x25519"`: X-Wing (ML-KEM-768 + X25519, KEM id 0x647a; the KEM of the
 *   `mlkem768x25519` recipient), a 1216-byte ephemeral public key, info label
 *   `ATTESTED_RELEASE_INFO + " mlkem768x25519"`: the KEM is named in what is sealed as well as
 *   by the distinct suite (docs/DECISIONS.md).
 * Both with HKDF-SHA256 and AES-256-GCM.
 */
export type AttestedKem = "x25519" | "mlkem768x25519";
export const ATTESTED_KEMS: readonly AttestedKem[] = ["x25519", "mlkem768x25519"];
/** Ephemeral public key size of each KEM (the evidence binds SHA-256 of exactly these bytes). */
export const ATTESTED_KEM_PUBLIC_KEY_SIZE: Readonly<Record<AttestedKem, number>> = {
  x25519: 32,
  mlkem768x25519: 1216,
};

function infoLabel(kem: AttestedKem): string {
  return kem === "x25519" ? ATTESTED_RELEASE_INFO : `${ATTESTED_RELEASE_INFO} ${kem}`;
}

/**
 * How the challenge nonce is bound into the HPKE seal of a release (request field `binding`):
 * - `"aad"` (the original mode, and the default when a request names none): info = the label,
 *   aad = the nonce (UTF-8);
 * - `"info"`: info = label || 0x00 || nonce (UTF-8), empty aad. Equally binding (info enters
 *   HPKE's key schedule, so another nonce derives another key) and what HPKE libraries without
 *   an aad parameter in single-shot mode can open (pyca `cryptography`'s `hpke.Suite`).
 * This client asks for `"info"`, as the Python client does.
 */
export type AttestedBinding = "aad" | "info";
export const ATTESTED_BINDINGS: readonly AttestedBinding[] = ["aad", "info"];

/** The (info, aad) pair of a release's HPKE seal in binding mode `binding`. */
export function attestedContext(
  binding: AttestedBinding,
  nonce: string,
  kem: AttestedKem = "x25519",
): { info: Buffer; aad: Buffer } {
  if (!ATTESTED_KEMS.includes(kem)) fail("E_USAGE", "attested release: unknown KEM");
  const label = Buffer.from(infoLabel(kem), "ascii");
  const n = Buffer.from(nonce, "utf8");
  if (binding === "info")
    return { info: Buffer.concat([label, Buffer.of(0), n]), aad: Buffer.alloc(0) };
  if (binding === "aad") return { info: label, aad: n };
  return fail("E_USAGE", "attested release: unknown nonce binding mode");
}

/** One KEM's HPKE base mode with HKDF-SHA256 and AES-256-GCM, on raw keys. */
interface AttestedSuite {
  seal(publicKey: Uint8Array, pt: Uint8Array, info: Buffer, aad: Buffer): Promise<HpkeOut>;
  open(
    privateKey: Uint8Array,
    enc: Buffer,
    ct: Buffer,
    info: Buffer,
    aad: Buffer,
  ): Promise<Uint8Array>;
  generateKeyPair(): Promise<{ privateKey: Uint8Array; publicKey: Uint8Array }>;
}
type HpkeOut = { enc: Uint8Array; ct: Uint8Array };

/** X25519: the `hpke` library over node:crypto, as the x25519 stanza (src/keys/x25519.ts). */
function attestedX25519Suite(): AttestedSuite {
  const s = x25519Suite();
  return {
    async seal(publicKey, pt, info, aad) {
      const r = await s.Seal(await s.DeserializePublicKey(publicKey), pt, { info, aad });
      return { enc: r.encapsulatedSecret, ct: r.ciphertext };
    },
    async open(privateKey, enc, ct, info, aad) {
      return s.Open(await s.DeserializePrivateKey(privateKey, false), enc, ct, { info, aad });
    },
    async generateKeyPair() {
      return generateX25519KeyPair();
    },
  };
}

/** X-Wing: the `hpke` library with hpke-xwing.ts's KEM, loaded on first use (as xwing.ts). */
async function xwingSuite(): Promise<AttestedSuite> {
  const { openXWing, sealXWing, xwingKeyPair } = await import("../hpke-xwing.js");
  return {
    async seal(publicKey, pt, info, aad) {
      return sealXWing(publicKey, pt, { info, aad });
    },
    async open(privateKey, enc, ct, info, aad) {
      return openXWing(privateKey, enc, ct, { info, aad });
    },
    async generateKeyPair() {
      const { seed, publicKey } = await xwingKeyPair();
      return { privateKey: seed, publicKey };
    },
  };
}

let attestedX25519: AttestedSuite | null = null;
let attestedXWing: Promise<AttestedSuite> | null = null;
async function hpke(kem: AttestedKem): Promise<AttestedSuite> {
  if (kem === "mlkem768x25519") {
    attestedXWing ??= xwingSuite();
    attestedXWing.catch(() => {
      attestedXWing = null;
    });
    return attestedXWing;
  }
  attestedX25519 ??= attestedX25519Suite();
  return attestedX25519;
}

/** A fresh ephemeral key pair for `kem`: raw private key (X25519) or 32-byte seed (X-Wing). */
export async function generateAttestedKeyPair(
  kem: AttestedKem,
): Promise<{ privateKey: Buffer; publicKey: Buffer }> {
  const kp = await (await hpke(kem)).generateKeyPair();
  const privateKey = Buffer.from(kp.privateKey); // a copy, so the KEM's buffer can be wiped
  kp.privateKey.fill(0);
  return { privateKey, publicKey: Buffer.from(kp.publicKey) };
}

/** Server side: seals the file key to the caller's ephemeral X25519 public key. */
export async function sealAttestedRelease(
  ephemeralPublicKey: Uint8Array,
  fileKey: Uint8Array,
  nonce: string,
  binding: AttestedBinding = "aad",
  kem: AttestedKem = "x25519",
): Promise<{ enc: string; ciphertext: string }> {
  const { info, aad } = attestedContext(binding, nonce, kem);
  if (ephemeralPublicKey.length !== ATTESTED_KEM_PUBLIC_KEY_SIZE[kem])
    fail("E_KEY", `attested release: the ephemeral public key is not a ${kem} key`);
  const s = await hpke(kem);
  let r: HpkeOut;
  try {
    r = await s.seal(ephemeralPublicKey, fileKey, info, aad);
  } catch {
    // X-Wing: ML-KEM's encapsulation key check (FIPS 203 §7.2) failed; not a usable key.
    return fail("E_KEY", `attested release: the ephemeral public key is not a valid ${kem} key`);
  }
  return {
    enc: Buffer.from(r.enc).toString("base64"),
    ciphertext: Buffer.from(r.ct).toString("base64"),
  };
}

/** Client side: opens a sealed release with the ephemeral private key. */
export async function openAttestedRelease(
  ephemeralPrivateKey: Uint8Array,
  sealed: { enc: string; ciphertext: string },
  nonce: string,
  binding: AttestedBinding = "aad",
  kem: AttestedKem = "x25519",
): Promise<Buffer> {
  const { info, aad } = attestedContext(binding, nonce, kem);
  const s = await hpke(kem);
  try {
    const enc = Buffer.from(sealed.enc, "base64");
    const pt = await s.open(
      ephemeralPrivateKey,
      enc,
      Buffer.from(sealed.ciphertext, "base64"),
      info,
      aad,
    );
    const fk = Buffer.from(pt); // a copy, so the HPKE library's buffer can be wiped
    pt.fill(0);
    if (fk.length !== 32)
      fail("E_PROVIDER", "attested release: the sealed file key is not 32 bytes");
    return fk;
  } catch (e) {
    if (e instanceof TensorSealError) throw e;
    return fail("E_PROVIDER", "attested release: the sealed file key does not open");
  }
}

/** What an evidence provider is asked to attest: the nonce and the ephemeral key binding. */
export interface EvidenceRequest {
  readonly nonce: string;
  /** base64url(SHA-256(ephemeral public key)): claim `tensorseal_ephemeral_key`. */
  readonly ephemeralKeyBinding: string;
  /** 32 bytes (X25519) or 1216 bytes (X-Wing), per `kem`. */
  readonly ephemeralPublicKey: Buffer;
  /** The KEM of the ephemeral key (absent in providers written before X-Wing: X25519). */
  readonly kem?: AttestedKem;
}

/** Returns an attestation verifier's JWT for the request (e.g. from a TEE's attestation agent). */
export type EvidenceProvider = (r: EvidenceRequest) => Promise<string>;

export interface UnwrapAttestedOptions {
  /**
   * KEM of the ephemeral key; default `"mlkem768x25519"` (X-Wing: a recorded release stays
   * closed to a future quantum adversary). `"x25519"` for services that predate the `kem` field
   * (they refuse it: 400).
   */
  readonly kem?: AttestedKem;
}

/**
 * Attested unwrap: fetch a nonce, get evidence bound to it and to a fresh ephemeral key (X-Wing
 * unless `opts.kem` says otherwise), present both, and open the HPKE-sealed file key (binding
 * mode "info"). The ephemeral private key (X-Wing: its seed) is wiped.
 */
export async function unwrapAttested(
  client: ServiceClient,
  stanza: Stanza,
  evidence: EvidenceProvider,
  opts: UnwrapAttestedOptions = {},
): Promise<Buffer> {
  const kem = opts.kem ?? "mlkem768x25519";
  if (!ATTESTED_KEMS.includes(kem)) fail("E_USAGE", "attested release: unknown KEM");
  const c = await client.post("/v1/attestation/challenge", {});
  if (c.status !== 200 || typeof c.body.nonce !== "string")
    client.refused("/v1/attestation/challenge", c);
  const nonce = c.body.nonce as string;
  const { privateKey, publicKey } = await generateAttestedKeyPair(kem);
  try {
    const token = await evidence({
      nonce,
      ephemeralKeyBinding: createHash("sha256").update(publicKey).digest("base64url"),
      ephemeralPublicKey: Buffer.from(publicKey),
      kem,
    });
    const r = await client.post("/v1/datakeys/unwrap-attested", {
      stanza: stanzaToWire(stanza),
      evidence: token,
      ephemeralPublicKey: Buffer.from(publicKey).toString("base64"),
      binding: "info",
      // Named only when not the default, so an X25519 client still talks to older services.
      ...(kem === "x25519" ? {} : { kem }),
    });
    if (r.status === 422) fail("E_DECRYPT", "service stanza does not open");
    if (r.status !== 200) client.refused("/v1/datakeys/unwrap-attested", r);
    return await openAttestedRelease(
      privateKey,
      { enc: String(r.body.enc), ciphertext: String(r.body.ciphertext) },
      nonce,
      "info",
      kem,
    );
  } finally {
    privateKey.fill(0);
  }
}
