/**
 * Roots of trust outside this process (PKCS#11 HSMs, AWS KMS) behind one narrow interface, and
 * the `kms` stanza they all write (spec/FORMAT.md §3.5):
 *
 *   fields = [provider (ASCII), key reference (UTF-8), provider-specific fields..., wrapped]
 *
 * The stanza names the provider and the key, so `open` finds both from the file plus
 * configuration; which keys may be used at all is the caller's list (provider-allow.ts), never
 * the file's. Adapters turn a provider into the format's Recipient and Identity. Providers
 * are loaded lazily: pkcs11js is an optional native dependency and must not be needed by users
 * who never touch an HSM.
 */
import { fail, isTensorSealError } from "../format/errors.js";
import type { Identity, Recipient, Stanza } from "../format/stanza.js";
import { type ProviderAllowList, ProviderKeyPolicy } from "./provider-allow.js";

export const KMS_STANZA = "kms";
export const PKCS11_PROVIDER = "pkcs11";
export const AWS_KMS_PROVIDER = "aws-kms";
const PROVIDER_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;
export const MAX_KEY_REF = 2048;

/** One root of trust. `unwrap` returns null for another provider's stanza, throws on failure. */
export interface KeyProvider {
  readonly name: string;
  wrap(fileKey: Uint8Array, keyRef: string): Promise<Stanza>;
  unwrap(stanza: Stanza): Promise<Buffer | null>;
  /** Creates a key in the provider; returns its key reference for `wrap`. */
  generateKey?(label: string): Promise<string>;
  /** Draws a new file key inside the provider and returns it with its stanza. */
  generateDataKey?(keyRef: string): Promise<{ fileKey: Buffer; stanza: Stanza }>;
  /** The key ARN an alias or key id names now (AWS KMS), to match an allow-list entry. */
  keyArn?(keyRef: string): Promise<string>;
}

export interface KmsStanza {
  readonly provider: string;
  readonly keyRef: string;
  /** The fields between the key reference and the wrapped key, unchecked here. */
  readonly params: Buffer[];
  readonly wrapped: Buffer;
}

export function encodeKmsStanza(k: KmsStanza): Stanza {
  if (!PROVIDER_PATTERN.test(k.provider)) fail("E_USAGE", `bad provider name ${k.provider}`);
  checkKeyRef(k.keyRef);
  return {
    type: KMS_STANZA,
    fields: [
      Buffer.from(k.provider, "ascii"),
      Buffer.from(k.keyRef, "utf8"),
      ...k.params,
      k.wrapped,
    ],
  };
}

/** The common part of every `kms` stanza: provider and key reference, strictly checked. */
export function parseKmsStanza(s: Stanza): KmsStanza {
  if (s.type !== KMS_STANZA) fail("E_MALFORMED", `not a kms stanza: ${s.type}`);
  if (s.fields.length < 3)
    fail("E_MALFORMED", `kms stanza has ${s.fields.length} fields, at least 3 expected`);
  const [p, ref] = s.fields as [Buffer, Buffer];
  const provider = p.toString("latin1");
  if (!PROVIDER_PATTERN.test(provider)) fail("E_MALFORMED", "kms stanza provider is not [a-z0-9-]");
  const keyRef = ref.toString("utf8");
  if (!Buffer.from(keyRef, "utf8").equals(ref))
    fail("E_MALFORMED", "kms stanza key reference is not valid UTF-8");
  if (ref.length === 0 || ref.length > MAX_KEY_REF) {
    fail("E_MALFORMED", `kms stanza key reference must be 1..${MAX_KEY_REF} bytes`);
  }
  return {
    provider,
    keyRef,
    params: s.fields.slice(2, -1) as Buffer[],
    wrapped: s.fields[s.fields.length - 1]!,
  };
}

/** The provider named by a stanza, or null when it is not a kms stanza. */
export function kmsProviderOf(s: Stanza): string | null {
  return s.type === KMS_STANZA && s.fields.length >= 1 ? s.fields[0]!.toString("latin1") : null;
}

/** One public line for `inspect`: provider, key reference and (aws-kms) the binding. */
export function describeKmsStanza(s: Stanza): string {
  const k = parseKmsStanza(s);
  const binding =
    k.provider === AWS_KMS_PROVIDER && k.params[0] ? ` binding ${k.params[0].toString("hex")}` : "";
  return `kms ${k.provider} ${k.keyRef}${binding}`;
}

function checkKeyRef(ref: string): void {
  const n = Buffer.byteLength(ref, "utf8");
  if (n === 0 || n > MAX_KEY_REF) fail("E_USAGE", `key reference must be 1..${MAX_KEY_REF} bytes`);
}

/**
 * A provider failure: names the provider and the reason, never a secret. `E_PROVIDER` for an
 * unreachable, misconfigured or refusing provider; the caller picks `E_DECRYPT` when the provider
 * answered but this stanza does not open under the key.
 */
export function providerFail(provider: string, why: string, cause?: unknown): never {
  return fail("E_PROVIDER", `${provider}: ${why}`, cause);
}

/** Re-throws TensorSealErrors untouched; anything else becomes an E_PROVIDER error. */
export function rethrowProvider(provider: string, what: string, e: unknown): never {
  if (isTensorSealError(e)) throw e;
  const name = (e as { name?: string } | null)?.name ?? "Error";
  return providerFail(provider, `${what} failed (${name})`, e);
}

export function providerRecipient(
  provider: () => Promise<KeyProvider>,
  name: string,
  keyRef: string,
  matches: (stanza: KmsStanza) => boolean = (k) => k.keyRef === keyRef,
): Recipient {
  checkKeyRef(keyRef);
  return {
    id: `${name}:${keyRef}`,
    wrap: async (fileKey) => (await provider()).wrap(fileKey, keyRef),
    generate: async () => {
      const p = await provider();
      return p.generateDataKey ? p.generateDataKey(keyRef) : null;
    },
    matches: (s) => kmsProviderOf(s) === name && matches(parseKmsStanza(s)),
  };
}

/**
 * The identity of one provider: it parses its own stanzas, asks `policy` whether their key may
 * be used, and only then loads the provider and unwraps. A refused key is never contacted.
 */
export function providerIdentity(
  provider: () => Promise<KeyProvider>,
  name: string,
  policy: ProviderKeyPolicy,
): Identity {
  return {
    id: name,
    unwrap: async (s) => {
      if (kmsProviderOf(s) !== name) return null;
      const { keyRef } = parseKmsStanza(s);
      if (name === PKCS11_PROVIDER) policy.checkPkcs11(keyRef);
      else if (name === AWS_KMS_PROVIDER) {
        await policy.checkAwsKms(keyRef, async (ref) => {
          const p = await provider();
          return p.keyArn ? p.keyArn(ref) : ref;
        });
      } else fail("E_KEY_STATE", `${name} keys cannot be allowed yet`);
      return (await provider()).unwrap(s);
    },
  };
}

type Loader = () => Promise<KeyProvider>;

/** Providers from the environment, created on first use (one per process). */
const loaders: Record<string, Loader> = {
  [PKCS11_PROVIDER]: once(async () =>
    (await import("./pkcs11/provider.js")).pkcs11ProviderFromEnv(),
  ),
  [AWS_KMS_PROVIDER]: once(async () => (await import("./kms/provider.js")).awsKmsProviderFromEnv()),
};

function once(f: Loader): Loader {
  let p: Promise<KeyProvider> | null = null;
  return () => {
    p ??= f();
    p.catch(() => {
      p = null;
    });
    return p;
  };
}

export const PROVIDER_NAMES = Object.keys(loaders);

/**
 * `pkcs11:TOKEN/KEYLABEL` or `aws-kms:ARN_OR_ALIAS_OR_ID`; null for any other string.
 * For aws-kms, a stanza records the key ARN KMS reports, so removal by alias matches only the
 * stanzas this recipient wrote; removal by ARN or key id matches every stanza of that key.
 */
export function parseProviderRecipient(s: string): Recipient | null {
  const colon = s.indexOf(":");
  const name = colon > 0 ? s.slice(0, colon) : "";
  const loader = loaders[name];
  if (!loader) return null;
  const ref = s.slice(colon + 1);
  if (name === PKCS11_PROVIDER) {
    const slash = ref.indexOf("/");
    if (slash <= 0 || slash === ref.length - 1) {
      fail("E_USAGE", `recipient ${s}: expected pkcs11:TOKEN_LABEL/KEY_LABEL`);
    }
    return providerRecipient(loader, name, ref);
  }
  if (ref.length === 0)
    fail("E_USAGE", `recipient ${s}: expected aws-kms:KEY_ARN, alias/NAME or a key id`);
  return providerRecipient(
    loader,
    name,
    ref,
    (k) => k.keyRef === ref || k.keyRef.endsWith(`:key/${ref}`),
  );
}

/**
 * Identities for the PKCS#11 and AWS KMS providers that use only the keys `allow` lists
 * (provider-allow.ts); each loads its provider only when it meets an allowed stanza of its own.
 * The list is required: keys a file names are never allowed by the file itself.
 */
export function providerIdentities(allow: ProviderAllowList): Identity[] {
  const policy = new ProviderKeyPolicy(allow);
  return PROVIDER_NAMES.map((name) => providerIdentity(loaders[name]!, name, policy));
}

/** Test hook and `hsm` command: the provider for a name, from the environment. */
export function loadProvider(name: string): Promise<KeyProvider> {
  const loader = loaders[name];
  return loader ? loader() : fail("E_USAGE", `unknown key provider ${name}`);
}
