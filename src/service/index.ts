/** The key service layer: the server, its database, tokens and the audit tools. */

export {
  AttestationVerifier,
  type AttestationVerifierOptions,
  EPHEMERAL_KEY_CLAIM,
  ephemeralKeyBinding,
} from "./attest/evidence.js";
export { DEFAULT_NONCE_TTL_MS, NonceStore } from "./attest/nonces.js";
export { type AuditRecord, GENESIS } from "./audit/chain.js";
export { AuditLog, type AuditSink } from "./audit/log.js";
export { AuditStore } from "./audit/store.js";
export { exportAuditLog, type VerifyResult, verifyAuditLog } from "./audit/verify.js";
export { JWT_ALGORITHMS, loadKeySet } from "./auth/jwks.js";
export { JwtAuthenticator, type JwtOptions } from "./auth/jwt.js";
export type {
  Authenticator,
  AuthResult,
  Principal,
  PrincipalKind,
  Scope,
} from "./auth/principal.js";
export { SCOPES } from "./auth/principal.js";
export { hashToken, parseScopes, StaticTokenAuthenticator, TokenRepo } from "./auth/tokens.js";
export { isSensitivity, SENSITIVITIES, sensitivityLevel } from "./authz/attributes.js";
export {
  type ArtifactInfo,
  Authorizer,
  type AuthzRequest,
  type AuthzResource,
  type Decision,
} from "./authz/cedar.js";
export { CEDAR_SCHEMA, DEFAULT_POLICIES } from "./authz/schema.js";
export { openDatabase, redactUrl } from "./db/open.js";
export type { Database, Dialect } from "./db/schema.js";
export { devRootKey, readServiceRootKey } from "./root-file.js";
export { buildServer, DEFAULT_BATCH_MAX, REDACT, type ServerOptions } from "./server.js";
export { type DevTls, ensureDevTls } from "./tls/dev-ca.js";
