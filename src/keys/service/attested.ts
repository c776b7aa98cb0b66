/** Attested release (issue #4 §5): the file key HPKE-sealed to a client's ephemeral key. */
import { createHash } from "node:crypto";
import { Aes256Gcm, CipherSuite, HkdfSha256 } from "@hpke/core";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";
import { fail, TensorSealError } from "../../format/errors.js";
import type { Stanza } from "../../format/stanza.js";
import { generateX25519KeyPair } from "../x25519-key.js";
import type { ServiceClient } from "./client.js";
import { stanzaToWire } from "./stanza.js";
/** HPKE info label of attested releases (docs/SERVICE.md "Attested release"). */
export const ATTESTED_RELEASE_INFO = "tensorseal.dev/v1 attested-release";

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
): { info: ArrayBuffer; aad: ArrayBuffer } {
  const label = Buffer.from(ATTESTED_RELEASE_INFO, "ascii");
  const n = Buffer.from(nonce, "utf8");
  if (binding === "info")
    return { info: ab(Buffer.concat([label, Buffer.of(0), n])), aad: new ArrayBuffer(0) };
  if (binding === "aad") return { info: ab(label), aad: ab(n) };
  return fail("E_USAGE", "attested release: unknown nonce binding mode");
}

let attestedSuite: CipherSuite | null = null;
function hpke(): CipherSuite {
  attestedSuite ??= new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Aes256Gcm(),
  });
  return attestedSuite;
}

function ab(b: Uint8Array): ArrayBuffer {
  return new Uint8Array(b).buffer;
}

/** Server side: seals the file key to the caller's ephemeral X25519 public key. */
export async function sealAttestedRelease(
  ephemeralPublicKey: Uint8Array,
  fileKey: Uint8Array,
  nonce: string,
  binding: AttestedBinding = "aad",
): Promise<{ enc: string; ciphertext: string }> {
  const s = hpke();
  const { info, aad } = attestedContext(binding, nonce);
  const recipientPublicKey = await s.kem.importKey("raw", ab(ephemeralPublicKey), true);
  const r = await s.seal({ recipientPublicKey, info }, ab(fileKey), aad);
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
): Promise<Buffer> {
  const s = hpke();
  const { info, aad } = attestedContext(binding, nonce);
  const recipientKey = await s.kem.importKey("raw", ab(ephemeralPrivateKey), false);
  try {
    const pt = await s.open(
      { recipientKey, enc: ab(Buffer.from(sealed.enc, "base64")), info },
      ab(Buffer.from(sealed.ciphertext, "base64")),
      aad,
    );
    const fk = Buffer.from(pt);
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
  /** base64url(SHA-256(ephemeral X25519 public key)): claim `tensorseal_ephemeral_key`. */
  readonly ephemeralKeyBinding: string;
  readonly ephemeralPublicKey: Buffer;
}

/** Returns an attestation verifier's JWT for the request (e.g. from a TEE's attestation agent). */
export type EvidenceProvider = (r: EvidenceRequest) => Promise<string>;

/**
 * Attested unwrap: fetch a nonce, get evidence bound to it and to a fresh ephemeral X25519
 * key, present both, and open the HPKE-sealed file key (binding mode "info"). The ephemeral
 * private key is wiped.
 */
export async function unwrapAttested(
  client: ServiceClient,
  stanza: Stanza,
  evidence: EvidenceProvider,
): Promise<Buffer> {
  const c = await client.post("/v1/attestation/challenge", {});
  if (c.status !== 200 || typeof c.body.nonce !== "string")
    client.refused("/v1/attestation/challenge", c);
  const nonce = c.body.nonce as string;
  const { privateKey, publicKey } = generateX25519KeyPair();
  try {
    const token = await evidence({
      nonce,
      ephemeralKeyBinding: createHash("sha256").update(publicKey).digest("base64url"),
      ephemeralPublicKey: Buffer.from(publicKey),
    });
    const r = await client.post("/v1/datakeys/unwrap-attested", {
      stanza: stanzaToWire(stanza),
      evidence: token,
      ephemeralPublicKey: Buffer.from(publicKey).toString("base64"),
      binding: "info",
    });
    if (r.status === 422) fail("E_DECRYPT", "service stanza does not open");
    if (r.status !== 200) client.refused("/v1/datakeys/unwrap-attested", r);
    return await openAttestedRelease(
      privateKey,
      { enc: String(r.body.enc), ciphertext: String(r.body.ciphertext) },
      nonce,
      "info",
    );
  } finally {
    privateKey.fill(0);
  }
}
