/**
 * The signature envelope of the OpenSSF model-signing tool (`model_signing sign key`): a Sigstore
 * bundle (v0.3 JSON) holding a DSSE envelope over an in-toto statement, signed with an ECDSA key
 * (P-256 + SHA-256; P-384 and P-521 with SHA-384/512 as model-signing does), no transparency log.
 * The key is named by a hint: the SHA-256 (hex) of its SubjectPublicKeyInfo PEM text.
 * All crypto is node:crypto's; nothing here is a primitive of our own.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { fail } from "../../format/errors.js";

export const BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
const HASH_FOR_CURVE: Record<string, string> = {
  prime256v1: "sha256",
  secp384r1: "sha384",
  secp521r1: "sha512",
};

export interface Bundle {
  readonly mediaType: string;
  readonly verificationMaterial: {
    readonly publicKey: { readonly hint: string };
    readonly tlogEntries: readonly unknown[];
  };
  readonly dsseEnvelope: {
    readonly payload: string;
    readonly payloadType: string;
    readonly signatures: readonly { readonly sig: string; readonly keyid: string }[];
  };
}

/** DSSE v1 pre-authentication encoding of an in-toto payload. */
export function pae(payload: Buffer): Buffer {
  const type = IN_TOTO_PAYLOAD_TYPE;
  const head = `DSSEv1 ${Buffer.byteLength(type)} ${type} ${payload.length} `;
  return Buffer.concat([Buffer.from(head), payload]);
}

function hashFor(key: KeyObject, what: string): string {
  const curve = key.asymmetricKeyType === "ec" ? key.asymmetricKeyDetails?.namedCurve : undefined;
  const hash = curve ? HASH_FOR_CURVE[curve] : undefined;
  if (!hash) fail("E_KEY", `${what}: not an ECDSA P-256, P-384 or P-521 key`);
  return hash;
}

/** The key's hint: SHA-256 hex of its SPKI PEM text (what model-signing records and compares). */
export function keyHint(pub: KeyObject): string {
  const pem = pub.export({ type: "spki", format: "pem" }).toString();
  return createHash("sha256").update(pem).digest("hex");
}

/** A PEM (PKCS#8 or SEC1) ECDSA private key; an encrypted one is refused (no prompt here). */
export function loadSigningKey(path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: readFileSync(path), format: "pem" });
  } catch (e) {
    return fail(
      "E_KEY",
      `--sign ${path}: not an unencrypted PEM private key (make one with: openssl ecparam -name prime256v1 -genkey -noout -out KEY)`,
      e,
    );
  }
  hashFor(key, `--sign ${path}`);
  return key;
}

/** A PEM public key (SPKI); a private key file is refused so a secret is never passed around. */
export function loadSignerKey(source: string | Buffer, what = "--require-signer"): KeyObject {
  const pem = typeof source === "string" ? readFileSync(source) : source;
  if (/PRIVATE KEY/.test(pem.toString("latin1"))) {
    fail(
      "E_KEY",
      `${what}: give the signer's PUBLIC key (openssl ec -in KEY -pubout), not the private key`,
    );
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: "pem" });
  } catch (e) {
    return fail("E_KEY", `${what}: not a PEM public key`, e);
  }
  hashFor(key, what);
  return key;
}

export function signBundle(payload: Buffer, key: KeyObject): Bundle {
  const sig = sign(hashFor(key, "--sign"), pae(payload), { key, dsaEncoding: "der" });
  return {
    mediaType: BUNDLE_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint: keyHint(createPublicKey(key)) }, tlogEntries: [] },
    dsseEnvelope: {
      payload: payload.toString("base64"),
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      signatures: [{ sig: sig.toString("base64"), keyid: "" }],
    },
  };
}

/**
 * Checks the bundle against the required signer's public key and returns the signed payload.
 * Every failure is E_SIGNATURE: another key, a modified payload, a malformed bundle.
 */
export function verifyBundle(doc: unknown, pub: KeyObject): Buffer {
  const b = doc as Bundle;
  if (typeof b !== "object" || b === null || b.mediaType !== BUNDLE_MEDIA_TYPE) {
    fail("E_SIGNATURE", `signature is not a ${BUNDLE_MEDIA_TYPE} bundle`);
  }
  const env = b.dsseEnvelope;
  if (typeof env !== "object" || env === null || env.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    fail("E_SIGNATURE", "signature bundle holds no in-toto DSSE envelope");
  }
  if (!Array.isArray(env.signatures) || env.signatures.length !== 1) {
    fail("E_SIGNATURE", "signature bundle must hold exactly one signature");
  }
  const hint = b.verificationMaterial?.publicKey?.hint;
  if (typeof hint === "string" && hint !== "" && hint !== keyHint(pub)) {
    fail("E_SIGNATURE", "the model was signed by another key than --require-signer names");
  }
  const [s] = env.signatures;
  if (typeof env.payload !== "string" || typeof s?.sig !== "string") {
    fail("E_SIGNATURE", "signature bundle: payload or signature is not base64 text");
  }
  const payload = Buffer.from(env.payload, "base64");
  const ok = verify(
    hashFor(pub, "--require-signer"),
    pae(payload),
    {
      key: pub,
      dsaEncoding: "der",
    },
    Buffer.from(s.sig, "base64"),
  );
  if (!ok) {
    fail(
      "E_SIGNATURE",
      "the signature does not verify with the --require-signer key (modified, or signed by another key)",
    );
  }
  return payload;
}

const MAX_SIGNATURE_BYTES = 64 << 20;

/** Reads a bundle file as JSON; a missing file is E_SIGNATURE with `unsigned` as message. */
export async function readBundle(path: string, unsigned: string): Promise<unknown> {
  const size = await stat(path).then(
    (s) => s.size,
    () => fail("E_SIGNATURE", unsigned),
  );
  if (size > MAX_SIGNATURE_BYTES) fail("E_SIGNATURE", `${path} is over 64 MiB`);
  try {
    return JSON.parse((await readFile(path)).toString("utf8"));
  } catch (e) {
    return fail("E_SIGNATURE", `${path} is not a JSON signature bundle`, e);
  }
}
