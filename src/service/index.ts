/** The key service layer: the server, its database, tokens and the audit tools. */

export { ANOMALY_DEFAULTS, type AnomalyOptions, BLOCK_CACHE_MS } from "./anomaly/options.js";
export { OPERATIONS, type OperationName } from "./approvals/operations.js";
export {
  type ApprovalOptions,
  DEFAULT_APPROVAL_TTL_MS,
  MAX_APPROVALS,
  parseApprovalSpec,
} from "./approvals/service.js";
export type { Artifact } from "./artifacts/repo.js";
export {
  AttestationVerifier,
  type AttestationVerifierOptions,
  EPHEMERAL_KEY_CLAIM,
  ephemeralKeyBinding,
} from "./attest/evidence.js";
export { DEFAULT_NONCE_TTL_MS, NonceStore } from "./attest/nonces.js";
export {
  type AnchorOptions,
  type AnchorTarget,
  CheckpointAnchors,
  checkAnchorUrl,
} from "./audit/anchor.js";
export { type AnchorLine, anchorLine, parseAnchorLine } from "./audit/anchor-line.js";
export { type AnchorSummary, checkAnchors, readAnchorFile } from "./audit/anchor-verify.js";
export { apiSource, type JsonClient } from "./audit/api-source.js";
export { type AuditRecord, GENESIS, type SignedCheckpoint } from "./audit/chain.js";
export { newestAnchorLine } from "./audit/head.js";
export type { AuditFilter } from "./audit/index-store.js";
export { AuditLog, type AuditSink } from "./audit/log.js";
export { type QueriedEntry, queryApi, queryDatabase } from "./audit/query.js";
export { type AuditSource, databaseSource, type SourceEntry } from "./audit/source.js";
export { AuditStore } from "./audit/store.js";
export {
  type CheckpointSchedule,
  DEFAULT_CHECKPOINT_INTERVAL_S,
  startTimedCheckpoints,
} from "./audit/timed.js";
export {
  exportAuditLog,
  type VerifyResult,
  verifyAuditLog,
  verifyAuditSource,
} from "./audit/verify.js";
export { JWT_ALGORITHMS, loadKeySet } from "./auth/jwks.js";
export { JwtAuthenticator, type JwtOptions } from "./auth/jwt.js";
export { MtlsAuthenticator, type MtlsOptions } from "./auth/mtls.js";
export { SpiffeRoles } from "./auth/mtls-roles.js";
export type {
  Authenticator,
  AuthResult,
  Principal,
  PrincipalKind,
  Scope,
} from "./auth/principal.js";
export { SCOPES } from "./auth/principal.js";
export {
  normalizeFingerprint,
  type RevokedCert,
  RevokedCertRepo,
} from "./auth/revoked-certs.js";
export { parseSpiffeId, type SpiffeId, spiffeTrustDomainOrThrow } from "./auth/spiffe.js";
export { hashToken, parseScopes, StaticTokenAuthenticator, TokenRepo } from "./auth/tokens.js";
export { POLICY_CACHE_MS, PolicyStore } from "./authz/active.js";
export { isSensitivity, SENSITIVITIES, sensitivityLevel } from "./authz/attributes.js";
export {
  type ArtifactInfo,
  Authorizer,
  type AuthzRequest,
  type AuthzResource,
  type Decision,
} from "./authz/cedar.js";
export { CEDAR_SCHEMA, DEFAULT_POLICIES } from "./authz/schema.js";
export type { ConsoleOptions } from "./console/index.js";
export { openDatabase, redactUrl } from "./db/open.js";
export type { Database, Dialect } from "./db/schema.js";
export { DEFAULT_BATCH_MAX, type ServerOptions } from "./options.js";
export { type CustodyRecord, RootCustody } from "./root-custody.js";
export { devRootKey, readServiceRootKey } from "./root-file.js";
export {
  type RootUnseal,
  SEALED_ROOT_FORMAT,
  sealServiceRoot,
  serviceRootId,
  unsealServiceRoot,
} from "./root-sealed.js";
export { type RootRecovery, recoverServiceRoot, splitServiceRoot } from "./root-shares.js";
export { buildServer, REDACT } from "./server.js";
export { DEFAULT_TIMEOUTS, type ServerTimeouts } from "./timeouts.js";
export {
  type ClientCertOptions,
  type DevCa,
  type DevTls,
  devCrl,
  ensureDevTls,
  type IssuedCert,
  issueClientCert,
  loadDevCa,
  writeClientCert,
} from "./tls/dev-ca.js";
export type { ServerTls } from "./tls/https.js";
export type { TlsReloadSummary } from "./tls/reload.js";
export {
  ALERT_ID_HEADER,
  checkWebhookUrl,
  SIGNATURE_HEADER,
  signBody,
  type WebhookOptions,
} from "./webhook.js";
