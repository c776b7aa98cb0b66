/** `serve`'s flags: their definitions and defaults, and their parsed shape. */
import type { Command } from "commander";
// Defaults straight from their (dependency-free) modules: the service itself loads only when
// `serve` runs.
import { ANOMALY_DEFAULTS } from "../../../service/anomaly/options.js";
import { DEFAULT_NONCE_TTL_MS } from "../../../service/attest/nonces.js";
import { DEFAULT_CHECKPOINT_INTERVAL_S } from "../../../service/audit/timed.js";
import { DEFAULT_TIMEOUTS } from "../../../service/timeouts.js";

/** What commander hands the action: numbers stay strings until each feature checks them. */
export interface ServeFlags {
  listen: string;
  db?: string;
  dev?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  rootKeyFile?: string;
  rootShares?: string;
  rootSealed?: string;
  approvals?: string;
  approvalTtl: string;
  approvalWebhook?: string;
  approvalWebhookSecretFile?: string;
  tierPolicy?: string;
  batchMax: string;
  requestTimeout: string;
  headersTimeout: string;
  idleTimeout: string;
  keepAliveTimeout: string;
  logLevel: string;
  policy?: string;
  oidcIssuer?: string;
  oidcAudience?: string;
  oidcJwks?: string;
  oidcRolesClaim: string;
  attestationIssuer?: string;
  attestationJwks?: string;
  nonceTtl: string;
  clientCa?: string;
  clientCrl?: string;
  spiffeTrustDomain: string[];
  mtlsRoles?: string;
  /** False with --no-anomaly. */
  anomaly: boolean;
  anomalyRateFactor: string;
  anomalyMinRate: string;
  anomalyWarmup: string;
  anomalyBaseline: string;
  anomalyFirstSeen: boolean;
  anomalyFirstSeenPrincipal: boolean;
  anomalyAutoBlock?: boolean;
  alertWebhook?: string;
  alertWebhookSecretFile?: string;
  checkpointInterval: string;
  checkpointAnchor?: string;
  checkpointAnchorUrl?: string;
  /** False with --no-console. */
  console: boolean;
  consoleOidc?: boolean;
  consoleOidcClientSecretFile?: string;
}

export function serveFlags(cmd: Command): Command {
  return cmd
    .option("--listen <host:port>", "address to listen on", "127.0.0.1:8443")
    .option(
      "--db <url>",
      "sqlite:PATH or postgres://... (default: sqlite:$TENSORSEAL_HOME/service.db)",
    )
    .option(
      "--dev",
      "development: create a local CA, a server certificate and a root key in $TENSORSEAL_HOME/service-dev/",
    )
    .option(
      "--tls-cert <file>",
      "server certificate chain (PEM); TLS files are reloaded when they change and on SIGHUP",
    )
    .option("--tls-key <file>", "server private key (PEM)")
    .option(
      "--root-key-file <file>",
      "service root key (default: TENSORSEAL_SERVICE_ROOT_KEY_FILE)",
    )
    .option(
      "--root-shares <files>",
      "rebuild the root key in memory from M-of-N share files (comma-separated; see `service root split`)",
    )
    .option(
      "--root-sealed <file>",
      "unwrap the root key with the HSM/KMS key that holds it (see `service root seal`); its custody must be approved",
    )
    .option(
      "--approvals <OP=M,...>",
      "dual control: approvals from distinct principals per operation (destroy, export, policy, custody, contain; M 1..10, default 1 = off; recommended 2+)",
    )
    .option("--approval-ttl <hours>", "how long an approval request waits", "24")
    .option(
      "--approval-webhook <url>",
      "POST approval events here, signed (https://, or http:// to loopback only)",
    )
    .option("--approval-webhook-secret-file <file>", "HMAC-SHA256 key for the approval webhook")
    .option(
      "--tier-policy <file>",
      "enforce tier minimums by key sensitivity (rotation period, attestation, dual control, client cache TTL, post-quantum KEM, recipient kinds of registered files): `builtin` or a JSON file (docs/GOVERNANCE.md)",
    )
    .option("--batch-max <n>", "most stanzas per batch unwrap (1..10000)", "100")
    .option(
      "--request-timeout <seconds>",
      "a request's headers and body must arrive within this, else 408 and the connection is closed",
      String(DEFAULT_TIMEOUTS.requestMs / 1000),
    )
    .option(
      "--headers-timeout <seconds>",
      "the TLS handshake and a request's headers must arrive within this",
      String(DEFAULT_TIMEOUTS.headersMs / 1000),
    )
    .option(
      "--idle-timeout <seconds>",
      "close a connection on which nothing moves for this long",
      String(DEFAULT_TIMEOUTS.idleMs / 1000),
    )
    .option(
      "--keep-alive-timeout <seconds>",
      "how long a kept-alive connection waits for its next request",
      String(DEFAULT_TIMEOUTS.keepAliveMs / 1000),
    )
    .option("--log-level <level>", "fatal, error, warn, info, debug", "info")
    .option(
      "--policy <dir>",
      "Cedar policies (*.cedar), validated at start (default: built-in scope policies)",
    )
    .option("--oidc-issuer <url>", "accept OIDC/JWT bearer tokens from this issuer (iss)")
    .option("--oidc-audience <aud>", "required aud of OIDC tokens")
    .option("--oidc-jwks <url|file>", "the issuer's JWKS: https:// URL or a JWKS file")
    .option("--oidc-roles-claim <name>", "claim holding the principal's roles", "roles")
    .option(
      "--attestation-issuer <url>",
      "attestation verifier whose evidence JWTs are accepted (iss)",
    )
    .option(
      "--attestation-jwks <url|file>",
      "the attestation verifier's JWKS: https:// URL or file",
    )
    .option(
      "--nonce-ttl <seconds>",
      "lifetime of attestation challenge nonces",
      String(DEFAULT_NONCE_TTL_MS / 1000),
    )
    .option("--client-ca <file>", "mTLS: CAs (PEM) trusted for client certificates (SPIFFE IDs)")
    .option("--client-crl <file>", "mTLS: CRLs (PEM) of the client CAs; each client CA needs one")
    .option(
      "--spiffe-trust-domain <domain>",
      "mTLS: accept SPIFFE IDs only from this trust domain (repeatable)",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      "--mtls-roles <file>",
      'mTLS: JSON {"spiffe://td/id" or "spiffe://td/prefix/*": [roles]}',
    )
    .option("--no-anomaly", "turn anomaly detection off (blocks already recorded still apply)")
    .option(
      "--anomaly-rate-factor <x>",
      "alert when a principal's keys per minute exceed x times its baseline",
      String(ANOMALY_DEFAULTS.rateFactor),
    )
    .option(
      "--anomaly-min-rate <n>",
      "... and at least n keys in the minute",
      String(ANOMALY_DEFAULTS.minRate),
    )
    .option(
      "--anomaly-warmup <minutes>",
      "minutes of history before rate alerts",
      String(ANOMALY_DEFAULTS.warmupMinutes),
    )
    .option(
      "--anomaly-baseline <minutes>",
      "span of the exponentially weighted baseline",
      String(ANOMALY_DEFAULTS.baselineMinutes),
    )
    .option("--no-anomaly-first-seen", "no alerts on first-seen addresses, certificates, workloads")
    .option("--no-anomaly-first-seen-principal", "no alert on a principal's very first request")
    .option("--anomaly-auto-block", "block a principal on a rate alert until an admin unblocks it")
    .option("--alert-webhook <url>", "POST alerts here (https://, or http:// to loopback only)")
    .option("--alert-webhook-secret-file <file>", "HMAC-SHA256 key for the webhook signature")
    .option(
      "--checkpoint-interval <seconds>",
      "also sign the audit head when entries are unsigned and no checkpoint is this old (0 = off)",
      String(DEFAULT_CHECKPOINT_INTERVAL_S),
    )
    .option(
      "--checkpoint-anchor <file>",
      "append every signed checkpoint to this append-only file outside the database (fsynced)",
    )
    .option(
      "--checkpoint-anchor-url <url>",
      "also POST every signed checkpoint here (https://, or http:// to loopback; best effort)",
    )
    .option("--no-console", "do not serve the web console at /console/ (docs/CONSOLE.md)")
    .option(
      "--console-oidc",
      "console sign-in with OIDC (code + PKCE): issuer --oidc-issuer, client id --oidc-audience",
    )
    .option(
      "--console-oidc-client-secret-file <file>",
      "the console's OIDC client secret (confidential client; default: public client, PKCE only)",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal serve --dev\n  tensorseal serve --dev --no-console\n  tensorseal serve --dev --client-ca ~/.tensorseal/service-dev/ca.pem --mtls-roles roles.json\n  tensorseal serve --dev --checkpoint-interval 30 --checkpoint-anchor /var/lib/tensorseal-anchor/checkpoints.jsonl\n  tensorseal serve --listen 0.0.0.0:8443 --db postgres://ts@db/tensorseal --tls-cert srv.pem --tls-key srv.key --root-key-file /run/secrets/root",
    );
}
