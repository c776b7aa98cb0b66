/**
 * The AWS KMS provider: KMS Encrypt wraps the file key under a KMS key, Decrypt unwraps it, and
 * ReEncrypt moves a stanza to another KMS key inside KMS. Every call carries an encryption
 * context that binds the ciphertext to its stanza:
 *
 *   kms stanza fields = ["aws-kms", key ARN, binding (16), KMS ciphertext blob (1..4096)]
 *   EncryptionContext = { "tensorseal:stanza": "v1", "tensorseal:binding": hex(binding) }
 *
 * The binding is 16 random bytes drawn per stanza; it appears in the KMS audit log (CloudTrail)
 * and in `tensorseal inspect`, so each Decrypt can be traced to the file that asked for it.
 * When a KMS recipient comes first among a file's recipients, GenerateDataKey draws the file key
 * inside KMS (its RNG, its audit trail) and the other recipients wrap that key; a KMS recipient
 * added later, or by rewrap, wraps the existing key with Encrypt.
 */
import { randomBytes } from "node:crypto";
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
  ReEncryptCommand,
} from "@aws-sdk/client-kms";
import { fail, TensorSealError } from "../../format/errors.js";
import { FILE_KEY_SIZE } from "../../format/filekey.js";
import type { Stanza } from "../../format/stanza.js";
import {
  AWS_KMS_PROVIDER,
  encodeKmsStanza,
  type KeyProvider,
  type KmsStanza,
  kmsProviderOf,
  parseKmsStanza,
  providerFail,
} from "../provider.js";
import { type ProviderAllowList, ProviderKeyPolicy } from "../provider-allow.js";

export const KMS_BINDING_SIZE = 16;
const MAX_BLOB = 4096;
export const CONTEXT_STANZA_KEY = "tensorseal:stanza";
export const CONTEXT_BINDING_KEY = "tensorseal:binding";

export interface AwsKmsOptions {
  /** Region for key ids and aliases; an ARN's own region always wins. */
  readonly region?: string;
  /** A KMS-compatible endpoint (tests: a loopback moto server). */
  readonly endpoint?: string;
  /** SDK attempts per call (default 3). */
  readonly maxAttempts?: number;
}

/** The encryption context of one stanza; the same map must be given to Decrypt. */
export function kmsEncryptionContext(binding: Uint8Array): Record<string, string> {
  return {
    [CONTEXT_STANZA_KEY]: "v1",
    [CONTEXT_BINDING_KEY]: Buffer.from(binding).toString("hex"),
  };
}

/** arn:aws:kms:REGION:ACCOUNT:key/ID or :alias/NAME → REGION; null for ids and aliases. */
export function regionOfKeyRef(ref: string): string | null {
  const m = /^arn:[^:]+:kms:([^:]+):/.exec(ref);
  return m ? m[1]! : null;
}

interface AwsKmsStanza extends KmsStanza {
  readonly binding: Buffer;
}

function parseAwsStanza(s: Stanza): AwsKmsStanza {
  const k = parseKmsStanza(s);
  const [binding] = k.params;
  if (k.params.length !== 1 || binding?.length !== KMS_BINDING_SIZE) {
    fail(
      "E_MALFORMED",
      "aws-kms kms stanza must have fields [provider, key, binding(16), ciphertext]",
    );
  }
  if (k.wrapped.length === 0 || k.wrapped.length > MAX_BLOB) {
    fail("E_MALFORMED", "aws-kms kms stanza ciphertext must be 1..4096 bytes");
  }
  return { ...k, binding };
}

export class AwsKmsProvider implements KeyProvider {
  readonly name = AWS_KMS_PROVIDER;
  private readonly clients = new Map<string, KMSClient>();
  constructor(private readonly opts: AwsKmsOptions = {}) {}

  async wrap(fileKey: Uint8Array, keyRef: string): Promise<Stanza> {
    if (fileKey.length !== FILE_KEY_SIZE) fail("E_KEY", "file key must be 32 bytes");
    const binding = randomBytes(KMS_BINDING_SIZE);
    const out = await this.call(keyRef, "Encrypt", (c) =>
      c.send(
        new EncryptCommand({
          KeyId: keyRef,
          Plaintext: fileKey,
          EncryptionContext: kmsEncryptionContext(binding),
        }),
      ),
    );
    return this.stanza(out.KeyId ?? keyRef, binding, out.CiphertextBlob);
  }

  async generateDataKey(keyRef: string): Promise<{ fileKey: Buffer; stanza: Stanza }> {
    const binding = randomBytes(KMS_BINDING_SIZE);
    const out = await this.call(keyRef, "GenerateDataKey", (c) =>
      c.send(
        new GenerateDataKeyCommand({
          KeyId: keyRef,
          NumberOfBytes: FILE_KEY_SIZE,
          EncryptionContext: kmsEncryptionContext(binding),
        }),
      ),
    );
    const pt = out.Plaintext;
    if (!pt || pt.length !== FILE_KEY_SIZE) {
      pt?.fill(0);
      return fail("E_PROVIDER", `aws-kms GenerateDataKey on ${keyRef} returned no 32-byte key`);
    }
    const fileKey = Buffer.from(pt);
    pt.fill(0);
    return { fileKey, stanza: this.stanza(out.KeyId ?? keyRef, binding, out.CiphertextBlob) };
  }

  async unwrap(stanza: Stanza): Promise<Buffer | null> {
    if (kmsProviderOf(stanza) !== this.name) return null;
    const k = parseAwsStanza(stanza);
    const out = await this.call(k.keyRef, "Decrypt", (c) =>
      c.send(
        new DecryptCommand({
          // Naming the key makes KMS refuse a ciphertext of any other key (IncorrectKeyException).
          KeyId: k.keyRef,
          CiphertextBlob: k.wrapped,
          EncryptionContext: kmsEncryptionContext(k.binding),
        }),
      ),
    );
    const pt = out.Plaintext;
    if (!pt || pt.length !== FILE_KEY_SIZE) {
      pt?.fill(0);
      return fail("E_DECRYPT", `aws-kms stanza for ${k.keyRef} holds no 32-byte file key`);
    }
    const fileKey = Buffer.from(pt);
    pt.fill(0);
    return fileKey;
  }

  /**
   * Moves a stanza to another KMS key with ReEncrypt: KMS decrypts and re-encrypts inside the
   * service, so the file key never reaches this process. The new stanza gets a fresh binding.
   */
  async reEncrypt(stanza: Stanza, destinationKeyRef: string): Promise<Stanza> {
    if (kmsProviderOf(stanza) !== this.name) fail("E_USAGE", "not an aws-kms stanza");
    const k = parseAwsStanza(stanza);
    const binding = randomBytes(KMS_BINDING_SIZE);
    const out = await this.call(destinationKeyRef, "ReEncrypt", (c) =>
      c.send(
        new ReEncryptCommand({
          CiphertextBlob: k.wrapped,
          SourceKeyId: k.keyRef,
          SourceEncryptionContext: kmsEncryptionContext(k.binding),
          DestinationKeyId: destinationKeyRef,
          DestinationEncryptionContext: kmsEncryptionContext(binding),
        }),
      ),
    );
    return this.stanza(out.KeyId ?? destinationKeyRef, binding, out.CiphertextBlob);
  }

  /**
   * The key ARN an alias, alias ARN or key id names now (DescribeKey). Used only for entries of
   * the user's allow-list, never for a key a file names.
   */
  async keyArn(keyRef: string): Promise<string> {
    const out = await this.call(keyRef, "DescribeKey", (c) =>
      c.send(new DescribeKeyCommand({ KeyId: keyRef })),
    );
    return out.KeyMetadata?.Arn ?? providerFail(this.name, `DescribeKey ${keyRef} returned no ARN`);
  }

  /** Creates a symmetric KMS key (ENCRYPT_DECRYPT); returns its ARN. */
  async generateKey(description: string): Promise<string> {
    const out = await this.call("", "CreateKey", (c) =>
      c.send(new CreateKeyCommand({ Description: description, KeyUsage: "ENCRYPT_DECRYPT" })),
    );
    const arn = out.KeyMetadata?.Arn;
    return arn ?? providerFail(this.name, "CreateKey returned no key ARN");
  }

  private stanza(keyArn: string, binding: Buffer, blob: Uint8Array | undefined): Stanza {
    if (!blob || blob.length === 0 || blob.length > MAX_BLOB) {
      providerFail(
        this.name,
        `KMS returned a ciphertext of ${blob?.length ?? 0} bytes (1..4096 expected)`,
      );
    }
    return encodeKmsStanza({
      provider: this.name,
      keyRef: keyArn,
      params: [binding],
      wrapped: Buffer.from(blob),
    });
  }

  private client(keyRef: string): KMSClient {
    const region = regionOfKeyRef(keyRef) ?? this.opts.region;
    if (!region) {
      providerFail(
        this.name,
        `no region for key ${keyRef}: use its full ARN, or set AWS_REGION (or TENSORSEAL_KMS_REGION)`,
      );
    }
    let c = this.clients.get(region);
    if (!c) {
      c = new KMSClient({
        region,
        ...(this.opts.endpoint ? { endpoint: this.opts.endpoint } : {}),
        maxAttempts: this.opts.maxAttempts ?? 3,
        requestHandler: { connectionTimeout: 5000, requestTimeout: 30000 },
      });
      this.clients.set(region, c);
    }
    return c;
  }

  private async call<T>(keyRef: string, op: string, f: (c: KMSClient) => Promise<T>): Promise<T> {
    const c = this.client(keyRef);
    try {
      return await f(c);
    } catch (e) {
      throw mapKmsError(e, op, keyRef || "(new key)", this.opts.endpoint);
    }
  }

  /** Closes the SDK's sockets (long-lived processes and tests). */
  close(): void {
    for (const c of this.clients.values()) c.destroy();
    this.clients.clear();
  }
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EPIPE",
  "EHOSTUNREACH",
]);

/** SDK errors → E_PROVIDER (provider refused or unreachable) or E_DECRYPT (stanza does not open). */
export function mapKmsError(
  e: unknown,
  op: string,
  keyRef: string,
  endpoint?: string,
): TensorSealError {
  if (e instanceof TensorSealError) return e;
  const err = e as { name?: string; code?: string } | null;
  const name = err?.name ?? "Error";
  const code = err?.code ?? "";
  const key = `key ${keyRef}`;
  const provider = (why: string) =>
    new TensorSealError("E_PROVIDER", `${AWS_KMS_PROVIDER}: ${op} failed: ${why} (${name})`, {
      cause: e,
    });
  switch (name) {
    case "InvalidCiphertextException":
    case "IncorrectKeyException":
      return new TensorSealError(
        "E_DECRYPT",
        `${AWS_KMS_PROVIDER}: the stanza does not open under ${key}: its ciphertext or encryption context was modified, or it belongs to another key (${name})`,
        { cause: e },
      );
    case "NotFoundException":
      return provider(`${key} not found (deleted, or another account or region)`);
    case "DisabledException":
      return provider(`${key} is disabled: enable it (aws kms enable-key) to use it`);
    case "KMSInvalidStateException":
      return provider(
        `${key} is not usable in its state (pending deletion or import): cancel the deletion, or use another key`,
      );
    case "AccessDeniedException":
      return provider(`access to ${key} denied: the key policy or IAM must allow kms:${op}`);
    case "UnrecognizedClientException":
    case "InvalidSignatureException":
    case "ExpiredTokenException":
    case "InvalidClientTokenId":
      return provider("AWS credentials rejected: check AWS_ACCESS_KEY_ID / AWS_PROFILE");
    case "CredentialsProviderError":
      return provider(
        "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
      );
    case "ThrottlingException":
    case "LimitExceededException":
      return provider("KMS is throttling requests: retry later");
    case "ValidationException":
    case "InvalidKeyUsageException":
      return provider(
        `KMS rejected the request for ${key}: a symmetric ENCRYPT_DECRYPT key is required`,
      );
    case "TimeoutError":
      return provider(`no answer from KMS${endpoint ? ` at ${endpoint}` : ""} in time`);
  }
  if (NETWORK_CODES.has(code) || NETWORK_CODES.has(name)) {
    return provider(`cannot reach KMS${endpoint ? ` at ${endpoint}` : ""}: ${code || name}`);
  }
  return provider(`unexpected KMS error for ${key}`);
}

export function awsKmsProviderFromEnv(env: NodeJS.ProcessEnv = process.env): AwsKmsProvider {
  const region = env.TENSORSEAL_KMS_REGION || env.AWS_REGION || env.AWS_DEFAULT_REGION;
  const endpoint = env.TENSORSEAL_KMS_ENDPOINT || env.AWS_ENDPOINT_URL_KMS || env.AWS_ENDPOINT_URL;
  return new AwsKmsProvider({
    ...(region ? { region } : {}),
    ...(endpoint ? { endpoint } : {}),
  });
}

/**
 * Rewrap helper: one aws-kms stanza moved to `destinationKeyRef` without the file key. The
 * stanza's own key must be on `allow` (ReEncrypt decrypts under it); the destination is the
 * caller's choice. A refused key is E_KEY_STATE and KMS is not called.
 */
export async function reEncryptKmsStanza(
  stanza: Stanza,
  destinationKeyRef: string,
  allow: ProviderAllowList,
  provider: AwsKmsProvider = awsKmsProviderFromEnv(),
): Promise<Stanza> {
  if (kmsProviderOf(stanza) !== AWS_KMS_PROVIDER) fail("E_USAGE", "not an aws-kms stanza");
  const k = parseAwsStanza(stanza);
  await new ProviderKeyPolicy(allow).checkAwsKms(k.keyRef, (ref) => provider.keyArn(ref));
  return provider.reEncrypt(stanza, destinationKeyRef);
}
