/**
 * The service root key in the custody of an HSM or KMS (Vault's "auto-unseal"): the 32-byte root
 * is wrapped by a PKCS#11 or AWS KMS key with the same `kms` stanza files use (spec/FORMAT.md
 * §3.5), and the wrapped form is all that lies on disk. `serve --root-sealed FILE` asks the
 * provider to unwrap it at start and fails closed when the provider is unreachable or refuses.
 *
 *   { "format": "tensorseal-service-root-sealed/v1", "root": ROOT_ID, "custody": "pkcs11:T/K",
 *     "stanza": { "type": "kms", "fields": [base64...] } }
 *
 * ROOT_ID is the public check prefix share files use too: an unwrap that yields another root is
 * refused here, before the database's own check. The file holds nothing secret without the
 * provider key, and no identity: which custody a database accepts is recorded in the database
 * under dual control (root-custody.ts).
 */
import { readFile, stat } from "node:fs/promises";
import { writeFileAtomic } from "../engine/output.js";
import { fail, isTensorSealError } from "../format/errors.js";
import type { Stanza } from "../format/stanza.js";
import {
  KMS_STANZA,
  loadProvider,
  parseKmsStanza,
  parseProviderRecipient,
} from "../keys/provider.js";
import { deriveRootKeys } from "./keys/sealing.js";

export const SEALED_ROOT_FORMAT = "tensorseal-service-root-sealed/v1";
const MAX_SEALED_ROOT_BYTES = 64 * 1024;

export interface SealedRoot {
  readonly root: string;
  /** `provider:keyRef` as the stanza names it (for aws-kms: the key ARN KMS reported). */
  readonly custody: string;
  readonly stanza: Stanza;
}

/** What `root.unseal` audits and the custody record matches: the provider key, nothing else. */
export interface RootUnseal {
  readonly custody: string;
  readonly root: string;
}

/** The root's public id (half its check value): what share files and sealed roots name. */
export function serviceRootId(root: Uint8Array): string {
  return deriveRootKeys(root).check.slice(0, 32);
}

function custodyOf(s: Stanza): string {
  const k = parseKmsStanza(s);
  return `${k.provider}:${k.keyRef}`;
}

/** Wraps `root` to `to` (`pkcs11:TOKEN/KEY` or `aws-kms:KEY`) and writes FILE atomically (0600). */
export async function sealServiceRoot(root: Buffer, to: string, file: string): Promise<SealedRoot> {
  const recipient = parseProviderRecipient(to);
  if (!recipient)
    fail("E_USAGE", `--to ${JSON.stringify(to)}: expected pkcs11:TOKEN/KEY or aws-kms:KEY`);
  const stanza = await recipient.wrap(root);
  const sealed: SealedRoot = { root: serviceRootId(root), custody: custodyOf(stanza), stanza };
  const doc = {
    format: SEALED_ROOT_FORMAT,
    root: sealed.root,
    custody: sealed.custody,
    stanza: { type: stanza.type, fields: stanza.fields.map((f) => f.toString("base64")) },
  };
  await writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`);
  return sealed;
}

function malformed(file: string, why: string): never {
  return fail("E_MALFORMED", `${file} is not a sealed service root (${why})`);
}

export function parseSealedRoot(text: string, file: string): SealedRoot {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return malformed(file, "not JSON");
  }
  if (doc?.format !== SEALED_ROOT_FORMAT) malformed(file, `format is not ${SEALED_ROOT_FORMAT}`);
  const st = doc.stanza as { type?: unknown; fields?: unknown } | undefined;
  if (typeof doc.root !== "string" || !/^[0-9a-f]{32}$/.test(doc.root))
    malformed(file, "root is not 32 hex characters");
  if (st?.type !== KMS_STANZA || !Array.isArray(st.fields) || st.fields.length > 16)
    malformed(file, "stanza is not a kms stanza");
  const fields = (st.fields as unknown[]).map((f) => {
    if (typeof f !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(f))
      malformed(file, "a stanza field is not base64");
    return Buffer.from(f, "base64");
  });
  const stanza: Stanza = { type: KMS_STANZA, fields };
  const custody = custodyOf(stanza);
  if (doc.custody !== custody) malformed(file, "custody does not match the stanza's key");
  return { root: doc.root as string, custody, stanza };
}

/**
 * Reads FILE and has its provider unwrap the root. Every failure stops the start: an unreachable
 * or refusing provider is E_PROVIDER, a root other than the one recorded is E_KEYSTORE.
 */
export async function unsealServiceRoot(
  file: string,
): Promise<{ root: Buffer; unseal: RootUnseal }> {
  // Sized before it is read: a wrong path (a device, a huge file) is refused, not slurped.
  const size = await stat(file).then(
    (s) => (s.isFile() ? s.size : -1),
    () => fail("E_USAGE", `cannot read the sealed service root ${file}`),
  );
  if (size < 0 || size > MAX_SEALED_ROOT_BYTES)
    malformed(file, "not a regular file of at most 64 KiB");
  const text = await readFile(file, "utf8").catch(() =>
    fail("E_USAGE", `cannot read the sealed service root ${file}`),
  );
  const sealed = parseSealedRoot(text, file);
  const provider = parseKmsStanza(sealed.stanza).provider;
  let root: Buffer | null;
  try {
    root = await (await loadProvider(provider)).unwrap(sealed.stanza);
  } catch (e) {
    if (isTensorSealError(e)) throw e;
    return fail("E_PROVIDER", `${provider}: unsealing the service root failed`, e);
  }
  if (root?.length !== 32) {
    root?.fill(0);
    return fail("E_PROVIDER", `${provider}: the provider did not return a 32-byte root`);
  }
  if (serviceRootId(root) !== sealed.root) {
    root.fill(0);
    fail("E_KEYSTORE", `${file}: the unwrapped root is not the one the file names`);
  }
  return { root, unseal: { custody: sealed.custody, root: sealed.root } };
}
