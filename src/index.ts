/**
 * The public entry of the `tensorseal` package: `import { sealFile, ... } from "tensorseal"`.
 * Everything exported here is documented in docs/LIBRARY.md and covered by semver; anything
 * reached by a deeper path is internal. onnxruntime-node sessions are a separate entry,
 * `tensorseal/onnx` (src/onnx.ts), so that this one's types need no onnxruntime install.
 *
 * Importing it stays cheap: it loads the format, engine, keys and integration layers, never the
 * key service (Fastify, Kysely, pg, better-sqlite3, Cedar), the AWS SDK or PKCS#11, which load
 * only when a stanza or recipient of theirs is used (test/package/import-cost.test.ts).
 */

// Files and streams.
export {
  addRecipients,
  closeWorkers,
  type DecryptStats,
  inspectFile,
  type OpenedInMemory,
  type OpenOptions,
  type OpenResult,
  type OpenToMemoryOptions,
  openFile,
  openSource,
  openSourceToMemory,
  openStream,
  openToMemory,
  type ProgressCallback,
  type RandomSource,
  type RewrapOptions,
  type RewrapRegistry,
  type RewrapResult,
  removeRecipients,
  rewrapFile,
  SealedFile,
  type SealOptions,
  type SealResult,
  type SourceOpenOptions,
  type StanzaEdit,
  type StreamOpenOptions,
  type StreamSealOptions,
  sealFile,
  sealStream,
  type VerifyOptions,
  verifyFile,
  verifySource,
} from "./engine/index.js";
export type { Descriptor } from "./format/descriptor.js";
// Errors: one class, a stable `code` per failure (docs/CLI.md maps codes to exit codes).
export { type ErrorCode, isTensorSealError, TensorSealError } from "./format/errors.js";
export type { ParsedHeader as SealedHeader } from "./format/header.js";
// Governance metadata in the authenticated header (spec/FORMAT.md §2.2.1).
export { type FileMetadata, metadataOf, withMetadata } from "./format/metadata.js";
// Public (integrity-only) files, the `public` tier (spec/FORMAT.md §2.5).
export { publicRecipient, SUITE_PUBLIC } from "./format/public.js";
// The two interfaces every key type implements, and what they exchange.
export type { Identity, Recipient, Stanza } from "./format/stanza.js";
// Model directories (Hugging Face layout) with a sealed manifest.
export {
  isSealedModelDir,
  type Manifest,
  type ManifestEntry,
  type OpenDirOptions,
  openModelDir,
  type SealDirOptions,
  type SealDirResult,
  sealModelDir,
} from "./integrations/model-dir/index.js";
// Object storage: sealed files read from s3:// and https:// URLs by ranged, ETag-pinned
// reads; sealing straight to s3:// (docs/INTEGRATIONS.md, "Object storage").
export {
  type HttpSourceOptions,
  isObjectUrl,
  openObjectSource,
  redactUrl,
  type S3SealOptions,
  sealToObject,
} from "./integrations/objstore/index.js";
// Signed provenance of sealed model directories (OpenSSF model-signing format).
export {
  loadSignerKey,
  loadSigningKey,
  verifySealedDir,
} from "./integrations/provenance/index.js";
// safetensors: lazy per-tensor reads, or a whole model at once.
export {
  type Dtype,
  type LoadedSafetensors,
  type LoadSafetensorsOptions,
  loadSealedSafetensors,
  type OpenSafetensorsOptions,
  openSealedSafetensors,
  type SealedSafetensors,
  type TensorArray,
  type TensorMeta,
} from "./integrations/safetensors/index.js";
// Keys: the local keystore, X25519 and post-quantum identities, passphrases, HSM/KMS and
// recipient strings.
export {
  type CampaignOptions,
  type CampaignResult,
  defaultHome,
  formatIdentityFile,
  formatXWingIdentityFile,
  type GeneratedIdentity,
  type GeneratedXWingIdentity,
  generateX25519Identity,
  generateXWingIdentity,
  type KeyInfo,
  type KeySettings,
  Keystore,
  type KeystoreOptions,
  type KeystoreUnlock,
  type KeyVersionInfo,
  type NewRoot,
  needsRewrap,
  type ProviderAllowList,
  parseIdentityFile,
  parseRecipient,
  parseX25519Identity,
  parseX25519Recipient,
  parseXWingIdentity,
  parseXWingRecipient,
  passphraseIdentity,
  passphraseRecipient,
  providerAllowListFromEnv,
  providerIdentities,
  rewrapToLatest,
  type UsePurpose,
} from "./keys/index.js";
// The key service's client side (the server itself is `tensorseal serve`).
export {
  DataKeyCache,
  type DataKeyCacheOptions,
  ServiceClient,
  type ServiceClientOptions,
  serviceClientFromEnv,
  serviceIdentity,
  serviceRecipient,
} from "./keys/service/index.js";
