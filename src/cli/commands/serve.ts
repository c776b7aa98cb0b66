import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import {
  Authorizer,
  buildServer,
  checkAnchorUrl,
  DEFAULT_CHECKPOINT_INTERVAL_S,
  DEFAULT_NONCE_TTL_MS,
  devRootKey,
  ensureDevTls,
  loadKeySet,
  openDatabase,
  readServiceRootKey,
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
      "\nExamples:\n  tensorseal serve --dev\n  tensorseal serve --dev --checkpoint-interval 30 --checkpoint-anchor /var/lib/tensorseal-anchor/checkpoints.jsonl\n  tensorseal serve --listen 0.0.0.0:8443 --db postgres://ts@db/tensorseal --tls-cert srv.pem --tls-key srv.key --root-key-file /run/secrets/root",
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
      if (!rootFile && !dev)
        fail("E_USAGE", "no service root key: pass --root-key-file FILE (32 bytes or 64 hex)");
      const root = rootFile
        ? await readServiceRootKey(rootFile)
        : await devRootKey(join(dev!.dir, "root.key"));
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
      say(`policies: ${authorizer.source} (${Object.keys(authorizer.policies).length})`);
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
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await app.close();
      await db.close();
    });
}
