import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import {
  ANOMALY_DEFAULTS,
  type AnomalyOptions,
  Authorizer,
  buildServer,
  checkAnchorUrl,
  checkWebhookUrl,
  DEFAULT_CHECKPOINT_INTERVAL_S,
  DEFAULT_NONCE_TTL_MS,
  devRootKey,
  ensureDevTls,
  loadKeySet,
  openDatabase,
  parseApprovalSpec,
  readServiceRootKey,
  recoverServiceRoot,
  SpiffeRoles,
  spiffeTrustDomainOrThrow,
} from "../../service/index.js";
import { homeDir } from "../keys-context.js";

/** --db, else TENSORSEAL_SERVICE_DB, else sqlite:$TENSORSEAL_HOME/service.db. */
export function serviceDbUrl(flag: string | undefined): string {
  return flag ?? process.env.TENSORSEAL_SERVICE_DB ?? `sqlite:${join(homeDir(), "service.db")}`;
}

function parseListen(s: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : -1;
  if (!m || port > 65535) fail("E_USAGE", `--listen expects HOST:PORT, got ${JSON.stringify(s)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the key service (HTTPS; see docs/SERVICE.md)")
    .option("--listen <host:port>", "address to listen on", "127.0.0.1:8443")
    .option(
      "--db <url>",
      "sqlite:PATH or postgres://... (default: sqlite:$TENSORSEAL_HOME/service.db)",
    )
    .option(
      "--dev",
      "development: create a local CA, a server certificate and a root key in $TENSORSEAL_HOME/service-dev/",
    )
    .option("--tls-cert <file>", "server certificate chain (PEM)")
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
      "--approvals <OP=M,...>",
      "dual control: approvals from distinct principals per operation (destroy, export, policy; M 1..10, default 1 = off; recommended 2+)",
    )
    .option("--approval-ttl <hours>", "how long an approval request waits", "24")
    .option("--batch-max <n>", "most stanzas per batch unwrap", "100")
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
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal serve --dev\n  tensorseal serve --dev --client-ca ~/.tensorseal/service-dev/ca.pem --mtls-roles roles.json\n  tensorseal serve --dev --checkpoint-interval 30 --checkpoint-anchor /var/lib/tensorseal-anchor/checkpoints.jsonl\n  tensorseal serve --listen 0.0.0.0:8443 --db postgres://ts@db/tensorseal --tls-cert srv.pem --tls-key srv.key --root-key-file /run/secrets/root",
    )
    .action(async (o) => {
      const { host, port } = parseListen(o.listen);
      if (Boolean(o.tlsCert) !== Boolean(o.tlsKey))
        fail("E_USAGE", "--tls-cert and --tls-key go together");
      if (o.dev && o.tlsCert)
        fail("E_USAGE", "--dev makes its own certificate: drop --tls-cert/--tls-key, or --dev");
      if (!o.dev && !o.tlsCert) {
        fail(
          "E_USAGE",
          "the key service needs TLS: pass --tls-cert and --tls-key, or --dev for a local development CA",
        );
      }
      const mtls = await mtlsOptions(o);
      const dev = o.dev ? await ensureDevTls(homeDir(), host) : null;
      const tls = {
        ...(dev ?? {
          key: await readFile(o.tlsKey, "utf8"),
          cert: await readFile(o.tlsCert, "utf8"),
        }),
        ...(mtls?.tls ?? {}),
      };
      const rootFile: string | undefined =
        o.rootKeyFile ?? process.env.TENSORSEAL_SERVICE_ROOT_KEY_FILE;
      if (o.rootShares && o.rootKeyFile)
        fail("E_USAGE", "--root-shares and --root-key-file exclude each other: give one");
      if (!rootFile && !dev && !o.rootShares)
        fail(
          "E_USAGE",
          "no service root key: pass --root-key-file FILE (32 bytes or 64 hex) or --root-shares FILE,FILE,...",
        );
      const recovered = o.rootShares
        ? await recoverServiceRoot(String(o.rootShares).split(",").filter(Boolean))
        : null;
      const root = recovered
        ? recovered.root
        : rootFile
          ? await readServiceRootKey(rootFile)
          : await devRootKey(join(dev!.dir, "root.key"));
      let required: ReturnType<typeof parseApprovalSpec> = {};
      try {
        required = parseApprovalSpec(o.approvals ?? "");
      } catch (e) {
        fail("E_USAGE", (e as Error).message);
      }
      const ttlHours = Number(o.approvalTtl);
      if (!Number.isFinite(ttlHours) || ttlHours <= 0 || ttlHours > 24 * 30)
        fail("E_USAGE", "--approval-ttl must be more than 0 and at most 720 hours");
      const oidc = [o.oidcIssuer, o.oidcAudience, o.oidcJwks];
      if (oidc.some(Boolean) && !oidc.every(Boolean))
        fail("E_USAGE", "--oidc-issuer, --oidc-audience and --oidc-jwks go together");
      if (Boolean(o.attestationIssuer) !== Boolean(o.attestationJwks))
        fail("E_USAGE", "--attestation-issuer and --attestation-jwks go together");
      const ttl = Number(o.nonceTtl);
      if (!Number.isFinite(ttl) || ttl < 1 || ttl > 3600)
        fail("E_USAGE", "--nonce-ttl must be 1..3600 seconds");
      const interval = Number(o.checkpointInterval);
      if (!Number.isInteger(interval) || interval < 0 || interval > 86_400)
        fail("E_USAGE", "--checkpoint-interval must be 0 (off) .. 86400 seconds");
      if (o.checkpointAnchorUrl) {
        try {
          checkAnchorUrl(o.checkpointAnchorUrl);
        } catch (e) {
          fail("E_USAGE", `--checkpoint-anchor-url: ${(e as Error).message}`);
        }
      }
      // Invalid policies refuse to start (E_USAGE, exit 2) before anything listens.
      const authorizer = o.policy ? await Authorizer.fromDir(o.policy) : Authorizer.default();
      const jwt = o.oidcIssuer
        ? {
            issuer: o.oidcIssuer as string,
            audience: o.oidcAudience as string,
            keys: await loadKeySet(o.oidcJwks, "--oidc-jwks"),
            rolesClaim: o.oidcRolesClaim as string,
          }
        : undefined;
      const attestation = o.attestationIssuer
        ? {
            issuer: o.attestationIssuer as string,
            keys: await loadKeySet(o.attestationJwks, "--attestation-jwks"),
            nonceTtlMs: ttl * 1000,
          }
        : undefined;
      const anomaly = await anomalyOptions(o);
      const db = await openDatabase(serviceDbUrl(o.db));
      const app = await buildServer({
        db,
        rootKey: root,
        tls,
        batchMax: Number(o.batchMax),
        logger: { level: o.logLevel },
        authorizer,
        checkpointIntervalS: interval,
        ...(o.checkpointAnchor || o.checkpointAnchorUrl
          ? {
              checkpointAnchor: {
                ...(o.checkpointAnchor ? { file: o.checkpointAnchor as string } : {}),
                ...(o.checkpointAnchorUrl ? { url: o.checkpointAnchorUrl as string } : {}),
              },
            }
          : {}),
        approvals: { required, ttlMs: Math.round(ttlHours * 3_600_000) },
        ...(recovered ? { rootRecovery: recovered.recovery } : {}),
        ...(jwt ? { jwt } : {}),
        ...(attestation ? { attestation } : {}),
        ...(mtls ? { mtls: mtls.mtls } : {}),
        ...(anomaly ? { anomaly } : {}),
      });
      root.fill(0);
      const url = await app.listen({ host, port });
      const say = (s: string) => process.stderr.write(`tensorseal: ${s}\n`);
      say(`key service listening on ${url} (server id ${app.tensorseal.serverId}, ${db.where})`);
      say(
        `audit public key (pin it for \`audit verify --public-key\`): ${app.tensorseal.auditPublicKey}`,
      );
      say(
        `bootstrap policies: ${authorizer.source} (${Object.keys(authorizer.policies).length}); a set approved over the API (GET /v1/policies) takes precedence`,
      );
      const dual = Object.entries(required).filter(([, n]) => n > 1);
      say(
        dual.length > 0
          ? `dual control: ${dual.map(([op, n]) => `${op} needs ${n} approvals`).join(", ")}`
          : "dual control is off (every --approvals operation at 1): consider --approvals destroy=2,export=2,policy=2",
      );
      if (recovered)
        say(
          `root key rebuilt from shares ${recovered.recovery.shares.join(", ")} (audited as root.recover)`,
        );
      say(
        anomaly
          ? `anomaly detection on (auto-block ${anomaly.autoBlock ? "on" : "off"}, webhook ${anomaly.webhook ? new URL(anomaly.webhook.url).host : "none"})`
          : "anomaly detection off",
      );
      if (o.checkpointAnchor) {
        // Not fatal: a failed anchor write is logged and counted, the checkpoint stays in the DB.
        // Opening for append (as each write does) is the honest test; it writes nothing.
        const problem = await open(o.checkpointAnchor, "a", 0o644).then(
          (fh) => fh.close().then(() => ""),
          (e: Error) => ` (WARNING: cannot append to it: ${e.message}; anchoring will fail)`,
        );
        say(`checkpoints anchored to ${o.checkpointAnchor}${problem}`);
      }
      if (dev) say(`development CA: ${dev.caPath} (clients: TENSORSEAL_SERVER_CA=${dev.caPath})`);
      if (mtls) say(`mTLS: client certificates from ${o.clientCa} (SPIFFE ID principals)`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await app.close();
      await db.close();
    });
}

/** --client-ca and the options that need it; E_USAGE (exit 2) for anything wrong. */
async function mtlsOptions(o: Record<string, unknown>) {
  const domains = o.spiffeTrustDomain as string[];
  if (!o.clientCa) {
    if (o.clientCrl || o.mtlsRoles || domains.length > 0)
      fail("E_USAGE", "--client-crl, --mtls-roles and --spiffe-trust-domain need --client-ca");
    return null;
  }
  const read = async (flag: string, file: string) => {
    try {
      return await readFile(file, "utf8");
    } catch (e) {
      return fail("E_USAGE", `${flag} ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
  };
  const clientCa = await read("--client-ca", o.clientCa as string);
  if (!clientCa.includes("-----BEGIN CERTIFICATE-----"))
    fail("E_USAGE", `--client-ca ${o.clientCa}: no PEM certificate in it`);
  const crl = o.clientCrl ? await read("--client-crl", o.clientCrl as string) : undefined;
  if (crl !== undefined && !crl.includes("-----BEGIN X509 CRL-----"))
    fail("E_USAGE", `--client-crl ${o.clientCrl}: no PEM CRL in it`);
  let roles: SpiffeRoles | undefined;
  try {
    for (const d of domains) spiffeTrustDomainOrThrow(d);
    if (o.mtlsRoles)
      roles = SpiffeRoles.parse(await read("--mtls-roles", o.mtlsRoles as string), "--mtls-roles");
  } catch (e) {
    return fail("E_USAGE", (e as Error).message);
  }
  return {
    tls: { clientCa, ...(crl ? { crl } : {}) },
    mtls: { trustDomains: domains, ...(roles ? { roles } : {}) },
  };
}

/** The anomaly flags as buildServer options; usage errors before anything listens. */
async function anomalyOptions(o: Record<string, unknown>): Promise<AnomalyOptions | undefined> {
  const num = (flag: string, v: unknown, lo: number, hi: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < lo || n > hi) fail("E_USAGE", `${flag} must be ${lo}..${hi}`);
    return n;
  };
  if (Boolean(o.alertWebhook) !== Boolean(o.alertWebhookSecretFile))
    fail("E_USAGE", "--alert-webhook and --alert-webhook-secret-file go together");
  if (o.anomaly === false) {
    if (o.alertWebhook || o.anomalyAutoBlock)
      fail("E_USAGE", "--no-anomaly turns alerts off: drop --alert-webhook/--anomaly-auto-block");
    return undefined;
  }
  let webhook: AnomalyOptions["webhook"];
  if (o.alertWebhook) {
    try {
      checkWebhookUrl(String(o.alertWebhook));
    } catch (e) {
      fail("E_USAGE", `--alert-webhook: ${(e as Error).message}`);
    }
    const file = String(o.alertWebhookSecretFile);
    const text = await readFile(file, "utf8").catch((e: Error) =>
      fail("E_USAGE", `cannot read --alert-webhook-secret-file ${file}: ${e.message}`),
    );
    const secret = Buffer.from(text.trim());
    if (secret.length < 16)
      fail("E_USAGE", "--alert-webhook-secret-file must hold at least 16 bytes");
    webhook = { url: String(o.alertWebhook), secret };
  }
  return {
    rateFactor: num("--anomaly-rate-factor", o.anomalyRateFactor, 1.1, 1e6),
    minRate: num("--anomaly-min-rate", o.anomalyMinRate, 1, 1e9),
    warmupMinutes: num("--anomaly-warmup", o.anomalyWarmup, 0, 10080),
    baselineMinutes: num("--anomaly-baseline", o.anomalyBaseline, 1, 10080),
    firstSeen: o.anomalyFirstSeen !== false,
    firstSeenPrincipal: o.anomalyFirstSeenPrincipal !== false,
    autoBlock: o.anomalyAutoBlock === true,
    ...(webhook ? { webhook } : {}),
  };
}
