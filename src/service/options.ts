/** What buildServer takes: the database and root key, and every feature's settings. */

import type { Writable } from "node:stream";
import type { AnomalyOptions } from "./anomaly/options.js";
import type { ApprovalOptions } from "./approvals/service.js";
import type { AttestationVerifierOptions } from "./attest/evidence.js";
import type { AnchorOptions } from "./audit/anchor.js";
import type { AuditSink } from "./audit/log.js";
import type { CheckpointSchedule } from "./audit/timed.js";
import type { JwtOptions } from "./auth/jwt.js";
import type { MtlsOptions } from "./auth/mtls.js";
import type { Authenticator } from "./auth/principal.js";
import type { RefusalLimitOptions } from "./auth/refusals.js";
import type { Authorizer } from "./authz/cedar.js";
import type { ConsoleOptions } from "./console/index.js";
import type { Database } from "./db/schema.js";
import type { RootUnseal } from "./root-sealed.js";
import type { RootRecovery } from "./root-shares.js";
import type { TierPolicy } from "./tiers.js";
import type { ServerTimeouts } from "./timeouts.js";
import type { ServerTls } from "./tls/https.js";

/** Most stanzas per batch unwrap unless `batchMax` says otherwise. */
export const DEFAULT_BATCH_MAX = 100;

export interface ServerOptions {
  readonly db: Database;
  /** The 32-byte root key every KEK version is sealed under (the process keeps only derived keys). */
  readonly rootKey: Uint8Array;
  /**
   * TLS material (PEM; `clientCa` turns on mTLS, see tls/https.ts). Without it the instance is
   * plain HTTP: for inject() and loopback tests.
   */
  readonly tls?: ServerTls;
  /** SPIFFE principals from client certificates (needs `tls.clientCa`). */
  readonly mtls?: MtlsOptions;
  readonly logger?: { level?: string; stream?: Writable } | false;
  /** Request, headers, idle and keep-alive limits per connection (timeouts.ts; defaults there). */
  readonly timeouts?: Partial<ServerTimeouts>;
  readonly batchMax?: number;
  readonly checkpointEvery?: number;
  /** Also sign the head when entries are unsigned and no checkpoint is this old (s; default 60, 0 = off). */
  readonly checkpointIntervalS?: number;
  /** The timer behind checkpointIntervalS (default setInterval); tests drive it by hand. */
  readonly checkpointSchedule?: CheckpointSchedule;
  /** Copy every checkpoint signed here to an append-only file and/or an HTTPS endpoint. */
  readonly checkpointAnchor?: AnchorOptions;
  /** Authenticators tried in order; default: the static bootstrap tokens, then OIDC/JWT if `jwt`. */
  readonly authenticators?: Authenticator[];
  /** OIDC/JWT bearer tokens (issuer, audience, JWKS, roles claim). */
  readonly jwt?: JwtOptions;
  /**
   * The bootstrap Cedar policies, used while no policy set was approved over the API (the
   * `policies` table is empty); default: the built-in set reproducing the scope semantics.
   */
  readonly authorizer?: Authorizer;
  /** How long a replica trusts its copy of the active policy version (ms, default 2000). */
  readonly policyCacheMs?: number;
  /** Dual control: approvals needed per operation (default 1 each) and request lifetime. */
  readonly approvals?: ApprovalOptions;
  /** Attested release: the verifier's issuer and JWKS; nonce lifetime (default 60 s). */
  readonly attestation?: AttestationVerifierOptions & { nonceTtlMs?: number };
  /** Tier minimums by key sensitivity (serve --tier-policy; tiers.ts); none when absent. */
  readonly tiers?: TierPolicy;
  /** The clock (Unix ms) for key lifecycle (destruction waiting periods); default Date.now. */
  readonly now?: () => number;
  /** How often scheduled destructions are carried out (ms, default 60 s; 0 = only on requests). */
  readonly sweepEveryMs?: number;
  /** The root was rebuilt from shares: a `root.recover` entry is audited before serving. */
  readonly rootRecovery?: RootRecovery;
  /**
   * Set when an HSM/KMS unwrapped the root (`serve --root-sealed`): its custody must be on
   * record in the database (root-custody.ts) or the start fails; audited as root.unseal.
   */
  readonly rootUnseal?: RootUnseal;
  /** Where audit entries go; default: the database chain. Tests inject a failing one. */
  readonly auditSink?: AuditSink;
  /**
   * Anomaly detection (rate jumps, first-seen clients, alerts, auto-block); off when absent.
   * Blocks already in the database are enforced either way.
   */
  readonly anomaly?: AnomalyOptions;
  /** The per-source audit budget for unauthenticated refusals (auth/refusals.ts; defaults there). */
  readonly refusalLimit?: Partial<RefusalLimitOptions>;
  /** The web console at /console/ (sessions, static UI); off when absent. */
  readonly console?: ConsoleOptions;
  /** How long the blocked set is cached per replica (ms, default 2000). */
  readonly blockCacheMs?: number;
}
