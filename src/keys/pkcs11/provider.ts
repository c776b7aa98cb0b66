/**
 * The PKCS#11 provider: an AES-256 key that never leaves the token (CKA_SENSITIVE, not
 * CKA_EXTRACTABLE, CKA_TOKEN) seals the file key with CKM_AES_GCM inside the token. The file key
 * is only data passed to C_Encrypt / C_Decrypt; it never becomes a token object.
 *
 *   kms stanza fields = ["pkcs11", "TOKEN/KEYLABEL", iv (12), wrapped (48 = 32 ‖ 16-byte tag)]
 *   aad = "tensorseal.dev/v1 kms pkcs11\0" || u16(len(keyRef)) || keyRef
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { ByteWriter } from "../../format/bytes.js";
import { fail } from "../../format/errors.js";
import { FILE_KEY_SIZE } from "../../format/filekey.js";
import type { Stanza } from "../../format/stanza.js";
import {
  encodeKmsStanza,
  type KeyProvider,
  kmsProviderOf,
  PKCS11_PROVIDER,
  parseKmsStanza,
  providerFail,
} from "../provider.js";
import { ckr, mapError, type Session, withSession } from "./module.js";

export const DEFAULT_PKCS11_MODULE = "/usr/lib/softhsm/libsofthsm2.so";
const AAD_LABEL = "tensorseal.dev/v1 kms pkcs11\0";
const IV_SIZE = 12;
const WRAPPED_SIZE = FILE_KEY_SIZE + 16;

export interface Pkcs11Options {
  /** Path of the PKCS#11 library. */
  readonly module: string;
  /** The user PIN, read when a session logs in. */
  readonly pin: () => string;
}

export interface Pkcs11KeyRef {
  readonly token: string;
  readonly label: string;
}

/** "TOKEN/KEYLABEL": the token label cannot contain "/", the key label may. */
export function parsePkcs11KeyRef(ref: string): Pkcs11KeyRef {
  const slash = ref.indexOf("/");
  if (slash <= 0 || slash === ref.length - 1) {
    fail("E_USAGE", `PKCS#11 key ${JSON.stringify(ref)}: expected TOKEN_LABEL/KEY_LABEL`);
  }
  const token = ref.slice(0, slash);
  if (Buffer.byteLength(token, "utf8") > 32)
    fail("E_USAGE", `token label ${token} exceeds 32 bytes`);
  return { token, label: ref.slice(slash + 1) };
}

function aad(keyRef: string): Buffer {
  return new ByteWriter().raw(Buffer.from(AAD_LABEL, "ascii")).str16(keyRef).finish();
}

/** Attributes of a token key, as `hsm` and the tests check them. */
export interface Pkcs11KeyAttributes {
  readonly token: boolean;
  readonly sensitive: boolean;
  readonly extractable: boolean;
  /** Whether C_GetAttributeValue(CKA_VALUE) returned the key bytes (it must not). */
  readonly valueReadable: boolean;
}

export class Pkcs11Provider implements KeyProvider {
  readonly name = PKCS11_PROVIDER;
  constructor(private readonly opts: Pkcs11Options) {}

  async wrap(fileKey: Uint8Array, keyRef: string): Promise<Stanza> {
    if (fileKey.length !== FILE_KEY_SIZE) fail("E_KEY", "file key must be 32 bytes");
    // Random 96-bit IV from the OS CSPRNG: a token key wraps far fewer than 2^32 file keys.
    const iv = randomBytes(IV_SIZE);
    const wrapped = this.session(keyRef, (s, key) => {
      try {
        s.api.C_EncryptInit(s.handle, gcm(s, iv, keyRef), key);
        return Buffer.from(
          s.api.C_Encrypt(s.handle, Buffer.from(fileKey), Buffer.alloc(WRAPPED_SIZE)),
        );
      } catch (e) {
        throw mapError(e, `encrypt with key ${keyRef}`);
      }
    });
    if (wrapped.length !== WRAPPED_SIZE) {
      providerFail(
        this.name,
        `token returned ${wrapped.length} bytes for AES-GCM, expected ${WRAPPED_SIZE}`,
      );
    }
    return encodeKmsStanza({ provider: this.name, keyRef, params: [iv], wrapped });
  }

  async unwrap(stanza: Stanza): Promise<Buffer | null> {
    if (kmsProviderOf(stanza) !== this.name) return null;
    const k = parseKmsStanza(stanza);
    const [iv] = k.params;
    if (k.params.length !== 1 || iv?.length !== IV_SIZE || k.wrapped.length !== WRAPPED_SIZE) {
      fail(
        "E_MALFORMED",
        `pkcs11 kms stanza must have fields [provider, key, iv(12), wrapped(48)]`,
      );
    }
    parsePkcs11KeyRef(k.keyRef);
    return this.session(k.keyRef, (s, key) => {
      try {
        s.api.C_DecryptInit(s.handle, gcm(s, iv, k.keyRef), key);
        const out = Buffer.from(s.api.C_Decrypt(s.handle, k.wrapped, Buffer.alloc(WRAPPED_SIZE)));
        if (out.length !== FILE_KEY_SIZE) fail("E_DECRYPT", "unexpected plaintext size");
        return out;
      } catch (e) {
        if (ckr(e) === null) throw e;
        // The key is there and usable, but the stanza does not open: a modified header or a
        // key of the same label that is not the one that wrapped it.
        if (isDataError(s, e)) {
          return fail(
            "E_DECRYPT",
            `pkcs11 stanza for ${k.keyRef} does not open with the token's key (a modified header, or a different key under the same label)`,
          );
        }
        throw mapError(e, `decrypt with key ${k.keyRef}`);
      }
    });
  }

  /** Generates a non-extractable AES-256 token key; refuses a label already in use. */
  async generateKey(keyRef: string): Promise<string> {
    const ref = parsePkcs11KeyRef(keyRef);
    return withSession(this.target(ref.token), (s) => {
      if (findKeys(s, ref.label).length > 0) {
        fail(
          "E_USAGE",
          `token ${ref.token} already has a key labelled ${JSON.stringify(ref.label)}`,
        );
      }
      const ck = s.ck;
      try {
        s.api.C_GenerateKey(s.handle, { mechanism: ck.CKM_AES_KEY_GEN! }, [
          { type: ck.CKA_CLASS!, value: ck.CKO_SECRET_KEY! },
          { type: ck.CKA_KEY_TYPE!, value: ck.CKK_AES! },
          { type: ck.CKA_VALUE_LEN!, value: 32 },
          { type: ck.CKA_LABEL!, value: ref.label },
          { type: ck.CKA_ID!, value: randomBytes(16) },
          { type: ck.CKA_TOKEN!, value: true },
          { type: ck.CKA_PRIVATE!, value: true },
          { type: ck.CKA_SENSITIVE!, value: true },
          { type: ck.CKA_EXTRACTABLE!, value: false },
          { type: ck.CKA_ENCRYPT!, value: true },
          { type: ck.CKA_DECRYPT!, value: true },
          { type: ck.CKA_WRAP!, value: false },
          { type: ck.CKA_UNWRAP!, value: false },
        ]);
      } catch (e) {
        throw mapError(e, `generate an AES-256 key in token ${ref.token}`);
      }
      return `${ref.token}/${ref.label}`;
    });
  }

  /** Reads the protection attributes and tries (and must fail) to read the key value. */
  async keyAttributes(keyRef: string): Promise<Pkcs11KeyAttributes> {
    return this.session(keyRef, (s, key) => {
      const ck = s.ck;
      const attrs = s.api.C_GetAttributeValue(s.handle, key, [
        { type: ck.CKA_TOKEN! },
        { type: ck.CKA_SENSITIVE! },
        { type: ck.CKA_EXTRACTABLE! },
      ]);
      const flag = (t: number) => {
        const v = attrs.find((a) => a.type === t)?.value;
        return Buffer.isBuffer(v) ? v[0] === 1 : v === true;
      };
      let valueReadable = true;
      try {
        const v = s.api.C_GetAttributeValue(s.handle, key, [{ type: ck.CKA_VALUE! }]);
        valueReadable = v.some((a) => Buffer.isBuffer(a.value) && a.value.length > 0);
      } catch {
        valueReadable = false; // CKR_ATTRIBUTE_SENSITIVE: what a token must answer
      }
      return {
        token: flag(ck.CKA_TOKEN!),
        sensitive: flag(ck.CKA_SENSITIVE!),
        extractable: flag(ck.CKA_EXTRACTABLE!),
        valueReadable,
      };
    });
  }

  /** Destroys the token key: every file wrapped only under it becomes unopenable. */
  async destroyKey(keyRef: string): Promise<void> {
    this.session(keyRef, (s, key) => {
      try {
        s.api.C_DestroyObject(s.handle, key);
      } catch (e) {
        throw mapError(e, `destroy key ${keyRef}`);
      }
    });
  }

  private target(token: string) {
    return { module: this.opts.module, token, pin: this.opts.pin };
  }

  /** A logged-in session with the key of this reference found (exactly one). */
  private session<T>(keyRef: string, fn: (s: Session, key: Buffer) => T): T {
    const ref = parsePkcs11KeyRef(keyRef);
    return withSession(this.target(ref.token), (s) => {
      const keys = findKeys(s, ref.label);
      if (keys.length === 0) {
        providerFail(
          this.name,
          `no AES key labelled ${JSON.stringify(ref.label)} in token ${ref.token} (deleted, or another token): create one with \`tensorseal hsm create-key ${keyRef}\` for new files; files wrapped only under a deleted key cannot be opened`,
        );
      }
      if (keys.length > 1) {
        providerFail(
          this.name,
          `token ${ref.token} has ${keys.length} keys labelled ${JSON.stringify(ref.label)}: labels must be unique`,
        );
      }
      return fn(s, keys[0]!);
    });
  }
}

function gcm(s: Session, iv: Buffer, keyRef: string) {
  return {
    mechanism: s.ck.CKM_AES_GCM!,
    parameter: {
      type: s.ck.CK_PARAMS_GCM!,
      iv,
      ivBits: IV_SIZE * 8,
      aad: aad(keyRef),
      tagBits: 128,
    },
  };
}

function findKeys(s: Session, label: string): Buffer[] {
  const ck = s.ck;
  try {
    s.api.C_FindObjectsInit(s.handle, [
      { type: ck.CKA_CLASS!, value: ck.CKO_SECRET_KEY! },
      { type: ck.CKA_KEY_TYPE!, value: ck.CKK_AES! },
      { type: ck.CKA_LABEL!, value: label },
    ]);
    try {
      return s.api.C_FindObjects(s.handle, 2);
    } finally {
      s.api.C_FindObjectsFinal(s.handle);
    }
  } catch (e) {
    throw mapError(e, `look up key ${label}`);
  }
}

function isDataError(s: Session, e: unknown): boolean {
  const code = ckr(e);
  return (
    code === s.ck.CKR_ENCRYPTED_DATA_INVALID ||
    code === s.ck.CKR_ENCRYPTED_DATA_LEN_RANGE ||
    code === s.ck.CKR_GENERAL_ERROR // SoftHSM2 reports a failed GCM tag as a general error
  );
}

/** The PIN from TENSORSEAL_PKCS11_PIN, else the first line of TENSORSEAL_PKCS11_PIN_FILE. */
export function pinFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const pin = env.TENSORSEAL_PKCS11_PIN;
  if (pin) return pin;
  const file = env.TENSORSEAL_PKCS11_PIN_FILE;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      return providerFail(PKCS11_PROVIDER, `cannot read the PIN file ${file}`, e);
    }
    const first = text.split("\n")[0]!.replace(/\r$/, "");
    if (first.length === 0) providerFail(PKCS11_PROVIDER, `the PIN file ${file} is empty`);
    return first;
  }
  return providerFail(
    PKCS11_PROVIDER,
    "no PIN: set TENSORSEAL_PKCS11_PIN, or TENSORSEAL_PKCS11_PIN_FILE to a file holding the user PIN",
  );
}

export function pkcs11ProviderFromEnv(env: NodeJS.ProcessEnv = process.env): Pkcs11Provider {
  return new Pkcs11Provider({
    module: env.TENSORSEAL_PKCS11_MODULE || DEFAULT_PKCS11_MODULE,
    pin: () => pinFromEnv(env),
  });
}
