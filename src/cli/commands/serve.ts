import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import {
  Authorizer,
  buildServer,
  DEFAULT_NONCE_TTL_MS,
  devRootKey,
  ensureDevTls,
  loadKeySet,
  openDatabase,
  parseApprovalSpec,
  readServiceRootKey,
  recoverServiceRoot,
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
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal serve --dev\n  tensorseal serve --listen 0.0.0.0:8443 --db postgres://ts@db/tensorseal --tls-cert srv.pem --tls-key srv.key --root-key-file /run/secrets/root",
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
      const dev = o.dev ? await ensureDevTls(homeDir(), host) : null;
      const tls = dev ?? {
        key: await readFile(o.tlsKey, "utf8"),
        cert: await readFile(o.tlsCert, "utf8"),
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
      const db = await openDatabase(serviceDbUrl(o.db));
      const app = await buildServer({
        db,
        rootKey: root,
        tls,
        batchMax: Number(o.batchMax),
        logger: { level: o.logLevel },
        authorizer,
        approvals: { required, ttlMs: Math.round(ttlHours * 3_600_000) },
        ...(recovered ? { rootRecovery: recovered.recovery } : {}),
        ...(jwt ? { jwt } : {}),
        ...(attestation ? { attestation } : {}),
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
      if (dev) say(`development CA: ${dev.caPath} (clients: TENSORSEAL_SERVER_CA=${dev.caPath})`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await app.close();
      await db.close();
    });
}
