/** The keys layer: recipient and identity providers behind format/stanza.ts's interfaces. */
export {
  type CampaignOptions,
  type CampaignResult,
  DEFAULT_CONCURRENCY,
  DEFAULT_JOURNAL,
  type FileOutcome,
  isStale,
  needsRewrap,
  rewrapToLatest,
  toLatestEdit,
} from "./campaign.js";
export {
  expandPaths,
  type FoundFiles,
  findSealedFiles,
  type SkippedFile,
} from "./campaign-paths.js";
export * from "./kek.js";
export {
  defaultHome,
  type KeyInfo,
  type KeySettings,
  Keystore,
  type KeystoreOptions,
  type KeystoreUnlock,
  type KeyVersionInfo,
  type NewRoot,
  type UsePurpose,
} from "./keystore.js";
export { DEFAULT_DESTROY_DAYS, DEFAULT_WRAP_LIMIT } from "./keystore-lifecycle.js";
export {
  DEFAULT_WORK_FACTOR,
  MAX_WORK_FACTOR,
  MIN_WORK_FACTOR,
  PASSPHRASE_STANZA,
  passphraseIdentity,
  passphraseRecipient,
  unwrapPassphrase,
  type WrapPassphraseOptions,
  wrapPassphrase,
} from "./passphrase.js";
export {
  AWS_KMS_PROVIDER,
  describeKmsStanza,
  type KeyProvider,
  KMS_STANZA,
  type KmsStanza,
  loadProvider,
  PKCS11_PROVIDER,
  PROVIDER_NAMES,
  parseKmsStanza,
  parseProviderRecipient,
  providerIdentities,
  providerIdentity,
  providerRecipient,
} from "./provider.js";
export {
  allowEntryProblem,
  mergeAllowLists,
  type ProviderAllowList,
  ProviderKeyPolicy,
  providerAllowListFromEnv,
  shown,
} from "./provider-allow.js";
export { parseIdentityFile, parseRecipient } from "./recipients.js";
export {
  combineRootShares,
  formatShare,
  parseShare,
  type RootShare,
} from "./root-shares.js";
export * from "./service/index.js";
export {
  decodeX25519Identity,
  decodeX25519Recipient,
  encodeX25519Identity,
  encodeX25519Recipient,
  formatIdentityFile,
  type GeneratedIdentity,
  generateX25519Identity,
  parseX25519Identity,
  parseX25519Recipient,
  unwrapX25519,
  type WrapX25519Options,
  wrapX25519,
  X25519_STANZA,
  x25519Identity,
  x25519Recipient,
  x25519Tag,
} from "./x25519.js";
export {
  decodeXWingIdentity,
  decodeXWingRecipient,
  encodeXWingIdentity,
  encodeXWingRecipient,
  formatXWingIdentityFile,
  type GeneratedXWingIdentity,
  generateXWingIdentity,
  parseXWingIdentity,
  parseXWingRecipient,
  unwrapXWing,
  type WrapXWingOptions,
  wrapXWing,
  XWING_STANZA,
  xwingIdentity,
  xwingPublicKey,
  xwingRecipient,
  xwingTag,
} from "./xwing.js";
