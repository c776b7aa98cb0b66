/** --listen; the server's TLS material (--dev, or --tls-cert/--tls-key); mTLS (--client-ca...). */
import { readFile } from "node:fs/promises";
import { fail } from "../../../format/errors.js";
import {
  type DevTls,
  ensureDevTls,
  type MtlsOptions,
  type ServerOptions,
  SpiffeRoles,
  spiffeTrustDomainOrThrow,
} from "../../../service/index.js";
import type { ServeFlags } from "../../commands/serve/flags.js";
import { homeDir } from "../../keys-context.js";

export function parseListen(s: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : -1;
  if (!m || port > 65535) fail("E_USAGE", `--listen expects HOST:PORT, got ${JSON.stringify(s)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

export interface TlsSettings {
  readonly tls: NonNullable<ServerOptions["tls"]>;
  /** Set with --dev: the development CA (and where its root key lives). */
  readonly dev: DevTls | null;
  /** Set with --client-ca. */
  readonly mtls: MtlsOptions | null;
}

/** The service always serves TLS: --dev makes its own CA and certificate, else both files. */
export async function tlsSettings(o: ServeFlags, host: string): Promise<TlsSettings> {
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
  const mtls = await mtlsSettings(o);
  const dev = o.dev ? await ensureDevTls(homeDir(), host) : null;
  const tls = {
    ...(dev ?? {
      key: await readFile(o.tlsKey!, "utf8"),
      cert: await readFile(o.tlsCert!, "utf8"),
    }),
    ...(mtls?.tls ?? {}),
  };
  return { tls, dev, mtls: mtls?.mtls ?? null };
}

/** --client-ca and the options that need it; E_USAGE (exit 2) for anything wrong. */
async function mtlsSettings(o: ServeFlags) {
  const domains = o.spiffeTrustDomain;
  if (!o.clientCa) {
    if (o.clientCrl || o.mtlsRoles || domains.length > 0)
      fail("E_USAGE", "--client-crl, --mtls-roles and --spiffe-trust-domain need --client-ca");
    return null;
  }
  const clientCa = await readFlagFile("--client-ca", o.clientCa);
  if (!clientCa.includes("-----BEGIN CERTIFICATE-----"))
    fail("E_USAGE", `--client-ca ${o.clientCa}: no PEM certificate in it`);
  const crl = o.clientCrl ? await readFlagFile("--client-crl", o.clientCrl) : undefined;
  if (crl !== undefined && !crl.includes("-----BEGIN X509 CRL-----"))
    fail("E_USAGE", `--client-crl ${o.clientCrl}: no PEM CRL in it`);
  let roles: SpiffeRoles | undefined;
  try {
    for (const d of domains) spiffeTrustDomainOrThrow(d);
    if (o.mtlsRoles)
      roles = SpiffeRoles.parse(await readFlagFile("--mtls-roles", o.mtlsRoles), "--mtls-roles");
  } catch (e) {
    return fail("E_USAGE", (e as Error).message);
  }
  return {
    tls: { clientCa, ...(crl ? { crl } : {}) },
    mtls: { trustDomains: domains, ...(roles ? { roles } : {}) },
  };
}

/** A flag's file as text; E_USAGE naming the flag, the file and the errno code if unreadable. */
async function readFlagFile(flag: string, file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    return fail("E_USAGE", `${flag} ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}
