/**
 * `serve` picks up new TLS material without a restart: on SIGHUP, and when one of the files
 * named by --tls-cert, --tls-key, --client-ca or --client-crl changes (polled, so a mounted
 * secret that is swapped by a symlink is seen too). The files are read and checked exactly as
 * at start-up, then handed to the server (service/tls/reload.ts), which audits and installs
 * them. A reload that fails (a half-written rotation, a key that does not match, an expired
 * certificate) is logged and changes nothing: the service goes on with what it had.
 */
import { unwatchFile, watchFile } from "node:fs";
import type { FastifyInstance } from "fastify";
import type { ServeFlags } from "../../commands/serve/flags.js";
import { tlsSettings } from "./tls.js";

/** How often the files are checked; a change is acted on once the files are quiet. */
const POLL_MS = 2000;
const SETTLE_MS = 500;

/** Starts watching; the returned function stops it. */
export function reloadTlsOnChange(app: FastifyInstance, o: ServeFlags, host: string): () => void {
  let running: Promise<void> = Promise.resolve();
  const reload = (why: string) => {
    running = running.then(async () => {
      try {
        const { tls } = await tlsSettings(o, host);
        await app.tensorseal.reloadTls(tls);
      } catch (e) {
        app.log.error(
          { reason: why, error: (e as Error).message },
          "TLS reload failed: still serving the previous TLS material",
        );
      }
    });
  };
  const onSignal = () => reload("SIGHUP");
  process.on("SIGHUP", onSignal);

  let settle: NodeJS.Timeout | null = null;
  const onChange = () => {
    if (settle) clearTimeout(settle);
    settle = setTimeout(() => reload("file changed"), SETTLE_MS);
    settle.unref();
  };
  const files = [o.tlsCert, o.tlsKey, o.clientCa, o.clientCrl].filter(
    (f): f is string => typeof f === "string",
  );
  for (const f of files) watchFile(f, { interval: POLL_MS, persistent: false }, onChange);

  return () => {
    process.off("SIGHUP", onSignal);
    for (const f of files) unwatchFile(f, onChange);
    if (settle) clearTimeout(settle);
  };
}
