/**
 * `tensorseal service cert issue|revoke|list-revoked`: client certificates for mTLS. `issue`
 * is development only (the `serve --dev` CA in $TENSORSEAL_HOME/service-dev/); `revoke` and
 * `list-revoked` act on the service database like `service token`, and every replica honours
 * a revocation within 2 seconds (its positive lookup cache).
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import type { RevokedCertRepo } from "../../service/index.js";
import { printJson } from "../options.js";
import { say } from "../output.js";
import { intFlag, serviceGroup } from "./service-shared.js";

/** The key service (Fastify, database drivers, Cedar): loaded only when a subcommand runs. */
const keyService = () => import("../../service/index.js");

async function withRevoked<T>(
  db: string | undefined,
  f: (r: RevokedCertRepo) => Promise<T>,
): Promise<T> {
  const { openDatabase, RevokedCertRepo } = await keyService();
  const { serviceDbUrl } = await import("../service-db.js");
  const d = await openDatabase(serviceDbUrl(db));
  try {
    return await f(new RevokedCertRepo(d));
  } finally {
    await d.close();
  }
}

export function registerServiceCert(program: Command): void {
  const service = serviceGroup(program);
  const cert = service
    .command("cert")
    .description("mTLS client certificates: issue (dev CA), revoke, list revoked");
  cert
    .command("issue")
    .description("development only: a client certificate for a SPIFFE ID from the --dev CA")
    .requiredOption("--spiffe-id <id>", "spiffe://TRUST-DOMAIN/PATH (the URI SAN)")
    .requiredOption("-o, --out <dir>", "directory for client.pem and client.key (0600)")
    .option("--days <n>", "validity in days (1..825)", "30")
    .option("--json", "print JSON: {fingerprint, cert, key, spiffeId, days}")
    .addHelpText(
      "after",
      "\nExample:\n  tensorseal service cert issue --spiffe-id spiffe://dev.local/ns/ml/sa/loader -o ./id\n  TENSORSEAL_SERVER_CERT=id/client.pem TENSORSEAL_SERVER_KEY=id/client.key tensorseal open m.tseal",
    )
    .action(async (o) => {
      const { issueClientCert, loadDevCa, parseSpiffeId, writeClientCert } = await keyService();
      const { homeDir } = await import("../keys-context.js");
      const id = parseSpiffeId(o.spiffeId);
      if ("invalid" in id) fail("E_USAGE", `--spiffe-id ${o.spiffeId}: ${id.invalid}`);
      const days = intFlag("--days", o.days, 1, 825);
      const ca = await loadDevCa(homeDir());
      const notBefore = new Date(Date.now() - 60_000);
      const issued = issueClientCert(ca, {
        uris: [o.spiffeId],
        notBefore,
        notAfter: new Date(notBefore.getTime() + days * 86_400_000),
      });
      const paths = await writeClientCert(resolve(o.out), issued);
      if (o.json) {
        const { fingerprint } = issued;
        printJson({ fingerprint, cert: paths.cert, key: paths.key, spiffeId: o.spiffeId, days });
        return;
      }
      process.stdout.write(`${issued.fingerprint}\n`);
      say(
        `${paths.cert} and ${paths.key} for ${o.spiffeId} (${days} days, sha256 fingerprint on stdout)`,
      );
    });
  cert
    .command("revoke")
    .description("revoke a client certificate by SHA-256 fingerprint (replicas: within 2 s)")
    .argument("<fingerprint>", "SHA-256 of the certificate's DER (hex, colons allowed)")
    .option("--reason <text>", "why (kept with the revocation)", "")
    .option("--db <url>", "service database (default: sqlite:$TENSORSEAL_HOME/service.db)")
    .option("--json", "print JSON: {fingerprint, revoked: true, already: BOOLEAN}")
    .addHelpText(
      "after",
      "\nThe fingerprint is what `service cert issue` printed, or what openssl prints for the\ncertificate (colons allowed).\n\nExample:\n  tensorseal service cert revoke \"$(openssl x509 -in id/client.pem -noout -fingerprint -sha256 | cut -d= -f2)\" --reason 'laptop lost'",
    )
    .action(async (fingerprint: string, o) => {
      const { normalizeFingerprint } = await keyService();
      const fp = normalizeFingerprint(fingerprint);
      if (!fp)
        fail("E_USAGE", "a fingerprint is the SHA-256 of the certificate's DER: 64 hex digits");
      const fresh = await withRevoked(o.db, (r) => r.revoke(fp, o.reason));
      if (o.json) printJson({ fingerprint: fp, revoked: true, already: !fresh });
      else say(`certificate ${fp} ${fresh ? "revoked" : "was already revoked"}`);
    });
  cert
    .command("list-revoked")
    .description("list revoked client certificates (fingerprint, reason, time)")
    .option("--db <url>", "service database (default: sqlite:$TENSORSEAL_HOME/service.db)")
    .option("--json", "print JSON (the output is JSON anyway)")
    .addHelpText("after", "\nExample:\n  tensorseal service cert list-revoked")
    .action(async (o) => printJson(await withRevoked(o.db, (r) => r.list())));
}
