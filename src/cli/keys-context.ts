/**
 * How the CLI finds keys: the keystore in $TENSORSEAL_HOME (unlocked by
 * TENSORSEAL_ROOT_KEY_FILE, TENSORSEAL_KEYSTORE_PASSPHRASE or a prompt), identity files given
 * with -i, file passphrases (TENSORSEAL_PASSPHRASE or a prompt), and HSM/KMS providers
 * configured from the environment for `kms` stanzas, limited to the keys the user allowed
 * (docs/PROVIDERS.md, "Allowed keys").
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fail } from "../format/errors.js";
import type { ParsedHeader } from "../format/header.js";
import { isPublicSuite } from "../format/public.js";
import type { Identity, Recipient } from "../format/stanza.js";
// Each from its own module, not the keys/index.js barrel: X25519 (HPKE) and the key service
// client (HTTPS) load only for a file or recipient that needs them (start-up is measured).
import { defaultHome, Keystore, type KeystoreOptions, type UsePurpose } from "../keys/keystore.js";
import {
  DEFAULT_WORK_FACTOR,
  MAX_WORK_FACTOR,
  MIN_WORK_FACTOR,
  passphraseIdentity,
  passphraseRecipient,
} from "../keys/passphrase.js";
import { AWS_KMS_PROVIDER, PKCS11_PROVIDER, providerIdentities } from "../keys/provider.js";
import {
  allowEntryProblem,
  mergeAllowLists,
  type ProviderAllowList,
  providerAllowListFromEnv,
  shown,
} from "../keys/provider-allow.js";
import type { ServiceClient } from "../keys/service/client.js";
import { say } from "./output.js";
import { projectAllowList } from "./project-config.js";
import { atCommandEnd, serverUrlOption } from "./session.js";
import { promptHidden, readFirstLine } from "./terminal.js";

export type KeystoreUnlock = { passphrase: string; workFactor?: number } | { rootKeyFile: string };

export function homeDir(): string {
  return defaultHome();
}

export function keystoreExists(home = homeDir()): boolean {
  return existsSync(join(home, "keystore.json"));
}

/**
 * The scrypt cost for a new keystore passphrase (log2 N). TENSORSEAL_SCRYPT_WORK_FACTOR may
 * raise it above the default; lowering it (what keeps CLI tests fast) would weaken every
 * keystore created with it, so it is honoured only with TENSORSEAL_TEST_KNOBS=1, and ignored
 * with a warning otherwise. Reads use whatever the keystore file records.
 */
export function workFactor(): number | undefined {
  const v = process.env.TENSORSEAL_SCRYPT_WORK_FACTOR;
  if (!v) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < MIN_WORK_FACTOR || n > MAX_WORK_FACTOR) {
    fail(
      "E_USAGE",
      `TENSORSEAL_SCRYPT_WORK_FACTOR must be an integer from ${MIN_WORK_FACTOR} to ${MAX_WORK_FACTOR}`,
    );
  }
  if (n >= DEFAULT_WORK_FACTOR || process.env.TENSORSEAL_TEST_KNOBS === "1") return n;
  say(
    `warning: ignoring TENSORSEAL_SCRYPT_WORK_FACTOR=${n}: below the default ${DEFAULT_WORK_FACTOR} it is a test-only setting (TENSORSEAL_TEST_KNOBS=1)`,
  );
  return undefined;
}

export async function keystoreUnlock(opts: { confirm?: boolean } = {}): Promise<KeystoreUnlock> {
  const keyFile = process.env.TENSORSEAL_ROOT_KEY_FILE;
  if (keyFile) return { rootKeyFile: keyFile };
  const fromEnv = process.env.TENSORSEAL_KEYSTORE_PASSPHRASE;
  const wf = workFactor();
  if (fromEnv) return { passphrase: fromEnv, ...(wf ? { workFactor: wf } : {}) };
  const passphrase = await promptHidden("Keystore passphrase: ");
  if (opts.confirm && (await promptHidden("Repeat passphrase: ")) !== passphrase) {
    fail("E_USAGE", "the passphrases do not match");
  }
  if (passphrase.length === 0) fail("E_USAGE", "the passphrase must not be empty");
  return { passphrase, ...(wf ? { workFactor: wf } : {}) };
}

/**
 * Test-only knobs, honoured only with TENSORSEAL_TEST_KNOBS=1: TENSORSEAL_NOW (ISO time) fixes
 * the keystore's clock, TENSORSEAL_WRAP_LIMIT lowers the forced-rotation wrap count.
 */
export function keystoreOptions(): KeystoreOptions {
  if (process.env.TENSORSEAL_TEST_KNOBS !== "1") return {};
  const out: { now?: () => Date; wrapLimit?: number } = {};
  const now = process.env.TENSORSEAL_NOW;
  if (now) {
    const t = new Date(now);
    if (Number.isNaN(t.getTime()))
      fail("E_USAGE", `TENSORSEAL_NOW ${JSON.stringify(now)} is not an ISO time`);
    out.now = () => new Date(t);
  }
  const limit = process.env.TENSORSEAL_WRAP_LIMIT;
  if (limit) out.wrapLimit = Number(limit);
  return out;
}

let cached: Keystore | null = null;
export async function openKeystore(): Promise<Keystore> {
  cached ??= await Keystore.open(homeDir(), await keystoreUnlock(), keystoreOptions());
  return cached;
}

// This module loads only for commands that use keys; those close what they opened here.
atCommandEnd(closeKeystore);

/** Gives back unused reserved wraps and wipes the keystore from memory (end of a command). */
export async function closeKeystore(): Promise<void> {
  closeServiceClient();
  const ks = cached;
  cached = null;
  if (!ks) return;
  try {
    await ks.flush();
  } finally {
    ks.close();
  }
}

export async function filePassphrase(opts: { confirm: boolean; file?: string }): Promise<string> {
  if (opts.file) return readFirstLine(opts.file);
  const fromEnv = process.env.TENSORSEAL_PASSPHRASE;
  if (fromEnv) return fromEnv;
  const p = await promptHidden("File passphrase: ");
  if (opts.confirm && (await promptHidden("Repeat passphrase: ")) !== p) {
    fail("E_USAGE", "the passphrases do not match");
  }
  if (p.length === 0) fail("E_USAGE", "the passphrase must not be empty");
  return p;
}

let service: ServiceClient | null = null;

/** The key service client module: loaded only when a key service is configured. */
const serviceModule = () => import("../keys/service/client.js");

async function serviceClient(required: boolean): Promise<ServiceClient | null> {
  const url = serverUrlOption() ?? process.env.TENSORSEAL_SERVER;
  if (url) service ??= (await serviceModule()).serviceClientFromEnv(url);
  if (!service && required) {
    fail(
      "E_USAGE",
      "service:NAME recipients need the key service: pass --server URL or set TENSORSEAL_SERVER",
    );
  }
  return service;
}

/** The key service `--server` / TENSORSEAL_SERVER names, or null when none is configured. */
export async function configuredService(): Promise<ServiceClient | null> {
  return serviceClient(false);
}

/** Drops the key service connection (end of a command). */
export function closeServiceClient(): void {
  service?.close();
  service = null;
}

export interface KeyOptions {
  key?: string[];
  recipient?: string[];
  /** Identity files, or provider keys to allow for this run (aws-kms:KEY, pkcs11:TOKEN[/KEY]). */
  identity?: string[];
  /** rewrap --add-recipient: provider keys named here are allowed for this run too. */
  addRecipient?: string[];
  passphrase?: boolean;
  passphraseFile?: string;
  /** Evidence program for attested release of service stanzas (TENSORSEAL_ATTEST_COMMAND). */
  attest?: string;
}

/** Recipients for `seal`: explicit ones, else the keystore's `default` key. */
export async function recipientsFor(o: KeyOptions): Promise<Recipient[]> {
  const out: Recipient[] = [];
  for (const name of o.key ?? []) out.push((await openKeystore()).recipient(name));
  for (const r of o.recipient ?? []) {
    if (r.startsWith("service:")) {
      const client = (await serviceClient(true))!;
      out.push((await serviceModule()).serviceRecipient(client, r.slice(8)));
    } else {
      const { parseRecipient } = await import("../keys/recipients.js");
      out.push(r.startsWith("kek:") ? parseRecipient(r, await openKeystore()) : parseRecipient(r));
    }
  }
  if (o.passphrase || o.passphraseFile) {
    const p = await filePassphrase({ confirm: true, file: o.passphraseFile });
    out.push(passphraseRecipient(p, workFactor()));
  }
  if (out.length === 0) {
    if (!keystoreExists()) {
      fail(
        "E_USAGE",
        "no recipient given and no keystore: pass --recipient, --passphrase, or run `tensorseal init`",
      );
    }
    out.push((await openKeystore()).recipient("default"));
  }
  return out;
}

/**
 * Identities for reading a file: what the options name, plus the keystore for kek stanzas.
 * `header` is null for stdin, where the stanzas are not known before the keys are needed.
 */
export async function identitiesFor(
  header: ParsedHeader | null,
  o: KeyOptions,
  purpose: UsePurpose = "decrypt",
): Promise<Identity[]> {
  // A public (integrity-only) file publishes its key: no keystore, prompt or provider is asked.
  if (header && isPublicSuite(header.descriptor.suite)) return [];
  const out: Identity[] = [];
  const named = namedProviderKeys([...(o.identity ?? []), ...(o.addRecipient ?? [])]);
  for (const path of o.identity ?? []) {
    if (providerKeyPrefix(path)) continue;
    const { parseIdentityFile } = await import("../keys/recipients.js");
    // Synchronous: a small file, and fs/promises stays out of a small open (issue 11).
    out.push(...parseIdentityFile(readFileSync(path, "utf8")));
  }
  const types = header ? new Set(header.stanzas.map((s) => s.type)) : null;
  const wantsPassphrase = types
    ? types.size === 1 && types.has("passphrase") && out.length === 0
    : Boolean(process.env.TENSORSEAL_PASSPHRASE);
  if (o.passphrase || o.passphraseFile || wantsPassphrase) {
    out.push(passphraseIdentity(await filePassphrase({ confirm: false, file: o.passphraseFile })));
  }
  if ((types === null || types.has("kek")) && keystoreExists())
    out.push((await openKeystore()).identity({ purpose }));
  // HSM/KMS stanzas name their provider and key; the identities use only the keys the user
  // allowed (flags, environment, project config), and connect only for such a stanza.
  if (types === null || types.has("kms"))
    out.push(
      ...providerIdentities(mergeAllowLists(named, providerAllowListFromEnv(), projectAllowList())),
    );
  // Service stanzas go to the configured key service (which answers only for its own).
  const svc = types === null || types.has("service") ? await serviceClient(false) : null;
  if (svc) {
    const m = await serviceModule();
    const attest = o.attest ?? (process.env.TENSORSEAL_ATTEST_COMMAND || undefined);
    const evidence = attest
      ? (await import("../keys/service/evidence-command.js")).commandEvidence(attest)
      : undefined;
    out.push(m.serviceIdentity(svc, evidence ? { evidence } : {}));
  }
  if (out.length === 0) {
    const what = types ? `stanzas: ${[...types].join(", ")}` : "sealed stream";
    fail(
      "E_NO_IDENTITY",
      `no key for this file (${what}): pass -i IDENTITY_FILE, --passphrase, or set up the keystore`,
    );
  }
  return out;
}

function providerKeyPrefix(s: string): "aws-kms" | "pkcs11" | null {
  if (s.startsWith(`${AWS_KMS_PROVIDER}:`)) return AWS_KMS_PROVIDER;
  if (s.startsWith(`${PKCS11_PROVIDER}:`)) return PKCS11_PROVIDER;
  return null;
}

/** `-i aws-kms:KEY` / `-i pkcs11:TOKEN[/KEY]` (and provider recipients of rewrap): allowed now. */
function namedProviderKeys(values: readonly string[]): ProviderAllowList {
  const awsKms: string[] = [];
  const pkcs11: string[] = [];
  for (const v of values) {
    const provider = providerKeyPrefix(v);
    if (!provider) continue;
    const entry = v.slice(provider.length + 1);
    const why = allowEntryProblem(provider, entry);
    if (why) fail("E_USAGE", `${provider}:${shown(entry)}: ${why}`);
    (provider === AWS_KMS_PROVIDER ? awsKms : pkcs11).push(entry);
  }
  return { awsKms, pkcs11 };
}
