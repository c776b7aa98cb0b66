/**
 * `tensorseal serve`: parse the flags, turn each feature's flags into buildServer options
 * (serve/*.ts; every usage error before anything listens, checked in the same order as ever, so
 * the same error wins when several flags are wrong), build, listen, print a summary, reload the
 * TLS material on SIGHUP or when its files change, and close cleanly on SIGINT/SIGTERM.
 */
import type { FastifyInstance } from "fastify";
import { fail } from "../../format/errors.js";
import { Authorizer, buildServer, openDatabase } from "../../service/index.js";
import { loadTierPolicy } from "../../service/tiers.js";
import type { ServeFlags } from "../commands/serve/flags.js";
import { serviceDbUrl } from "../service-db.js";
import { anomalySettings } from "./serve/anomaly.js";
import { approvalSettings } from "./serve/approvals.js";
import { checkpointSettings } from "./serve/checkpoints.js";
import { consoleSettings } from "./serve/console.js";
import { checkIdentityFlags, identitySettings } from "./serve/identity.js";
import { limitSettings } from "./serve/limits.js";
import { rootSettings } from "./serve/root.js";
import { printSummary } from "./serve/summary.js";
import { parseListen, tlsSettings } from "./serve/tls.js";
import { reloadTlsOnChange } from "./serve/tls-reload.js";

/** Why a listen can fail that the operator fixes with another --listen (E_USAGE, exit 2). */
const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: "the address is already in use (another process listens there)",
  EACCES: "permission denied (ports below 1024 need privileges)",
  EADDRNOTAVAIL: "the address is not one of this host's",
};

async function listenOrExplain(
  app: FastifyInstance,
  listen: string,
  host: string,
  port: number,
): Promise<string> {
  try {
    return await app.listen({ host, port });
  } catch (e) {
    const why = LISTEN_ERRORS[(e as NodeJS.ErrnoException).code ?? ""];
    if (!why) throw e;
    return fail("E_USAGE", `cannot listen on ${listen} (--listen): ${why}`);
  }
}

export async function serve(o: ServeFlags): Promise<void> {
  const { host, port } = parseListen(o.listen);
  const limits = limitSettings(o);
  const tls = await tlsSettings(o, host);
  const root = await rootSettings(o, tls.dev);
  const approvals = await approvalSettings(o);
  const nonceTtlS = checkIdentityFlags(o);
  const checkpoints = checkpointSettings(o);
  // Invalid policies refuse to start (E_USAGE, exit 2) before anything listens.
  const authorizer = o.policy ? await Authorizer.fromDir(o.policy) : Authorizer.default();
  const identity = await identitySettings(o, nonceTtlS);
  const anomaly = await anomalySettings(o);
  const consoleOpts = await consoleSettings(o);
  const tiers = o.tierPolicy ? loadTierPolicy(o.tierPolicy) : undefined;

  const db = await openDatabase(serviceDbUrl(o.db));
  const app = await buildServer({
    db,
    rootKey: root.root,
    tls: tls.tls,
    ...limits,
    logger: { level: o.logLevel },
    authorizer,
    ...checkpoints,
    approvals,
    ...(tiers ? { tiers } : {}),
    ...(root.recovery ? { rootRecovery: root.recovery } : {}),
    ...(root.unseal ? { rootUnseal: root.unseal } : {}),
    ...identity,
    ...(tls.mtls ? { mtls: tls.mtls } : {}),
    ...(anomaly ? { anomaly } : {}),
    // The web console (docs/CONSOLE.md): on unless --no-console.
    ...(consoleOpts ? { console: consoleOpts } : {}),
  });
  root.root.fill(0);

  const url = await listenOrExplain(app, o.listen, host, port).catch(async (e) => {
    // Nothing was served: close what was opened (a final checkpoint included) and report.
    await app.close();
    await db.close();
    throw e;
  });
  // Listening from here on: SIGINT/SIGTERM now mean a clean close (the audit head signed),
  // also while the summary below is still being printed (no listener = the default action,
  // an immediate death with the head unsigned).
  const stop = new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await printSummary({
    url,
    serverId: app.tensorseal.serverId,
    auditPublicKey: app.tensorseal.auditPublicKey,
    where: db.where,
    authorizer,
    approvals,
    recovery: root.recovery,
    unseal: root.unseal,
    anomaly,
    anchorFile: o.checkpointAnchor,
    dev: tls.dev,
    clientCa: tls.mtls ? o.clientCa! : null,
    console: o.console,
    tiers,
  });

  const stopReload = reloadTlsOnChange(app, o, host);
  await stop;
  stopReload();
  await app.close();
  await db.close();
}
