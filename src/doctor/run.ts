/**
 * Runs every check and returns the findings, sorted worst first (then by rule and file) so two
 * runs over the same state print the same report. Nothing is written, nothing is unlocked
 * beyond what the environment already allows (keystore-view.ts).
 */
import { dirname } from "node:path";
import { inspectFile } from "../engine/index.js";
import { isTensorSealError } from "../format/errors.js";
import type { ParsedHeader } from "../format/header.js";
import { type FoundFiles, findSealedFiles } from "../keys/campaign-paths.js";
import type { KeyInfo, KeystoreOptions } from "../keys/index.js";
import { builtinTierConfig, type TierConfig } from "../tiers/policy.js";
import { checkKeystoreKdf, checkPassphraseStanzas } from "./check-kdf.js";
import { checkPermissions } from "./check-permissions.js";
import { checkPlaintextCopies } from "./check-plaintext.js";
import { checkRotation } from "./check-rotation.js";
import { checkRuntime } from "./check-runtime.js";
import { checkLeftoverSlot } from "./check-slot.js";
import { checkTiers } from "./check-tiers.js";
import { checkService } from "./check-tls.js";
import { checkVersions } from "./check-versions.js";
import { type Finding, rank } from "./findings.js";
import { type KeystoreView, readKeystoreView } from "./keystore-view.js";
import { secretKind } from "./secret-files.js";
import type { ServiceAccess } from "./service-access.js";

export interface DoctorOptions {
  readonly paths: readonly string[];
  /** $TENSORSEAL_HOME. */
  readonly home: string;
  readonly now: Date;
  /** Seconds; for keys without their own rotation period (null: not judged). */
  readonly defaultRotation: number | null;
  readonly server?: string | undefined;
  /** Days before a service certificate's expiry that it is reported. */
  readonly certDays: number;
  /** The service database whose bootstrap tokens are checked (none: not checked). */
  readonly db?: string | undefined;
  /** Age in days from which a live bootstrap token is reported. */
  readonly tokenDays: number;
  /** Days audit entries may wait for a signed checkpoint (default 1). */
  readonly checkpointDays?: number;
  readonly keystoreOptions: KeystoreOptions;
  /** The breach drill history file (drill.* checks); not checked when absent. */
  readonly drillHistory?: string;
  /** Days after which the newest drill is stale. */
  readonly drillDays?: number;
  /** Report a missing drill history (the caller asked for drills with --drill-days). */
  readonly drillRequired?: boolean;
  /** The tiers files are judged against (default: the built-ins). */
  readonly tiers?: TierConfig;
  /** PATHS already walked by the caller (the report shares one walk with the inventory). */
  readonly found?: FoundFiles;
  /** Local Cedar policy file or directory of *.cedar files (service.policy-overbroad). */
  readonly policy?: string | undefined;
  /** Days after which a root share file is reported (root.shares-untested; default 180). */
  readonly shareDays?: number;
}

export interface DoctorReport {
  readonly findings: Finding[];
  /** Sealed files whose headers were examined. */
  readonly filesChecked: number;
  readonly keystoreVerified: boolean | null;
}

export async function runDoctor(o: DoctorOptions): Promise<DoctorReport> {
  const ks = await readKeystoreView(o.home, o.keystoreOptions);
  try {
    return await checkAll(o, ks);
  } finally {
    ks?.keystore?.close();
  }
}

async function checkAll(o: DoctorOptions, ks: KeystoreView | null): Promise<DoctorReport> {
  const findings: Finding[] = checkRuntime(process.versions.node, process.versions.openssl, o.now);
  const keys: readonly KeyInfo[] = ks?.keys ?? [];
  if (ks) {
    if (!ks.verified)
      findings.push({
        id: "keystore.unverified",
        severity: "note",
        message: "the keystore was read without checking its MAC (no unlock in the environment)",
        evidence: "neither TENSORSEAL_ROOT_KEY_FILE nor TENSORSEAL_KEYSTORE_PASSPHRASE is set",
        fix: "set TENSORSEAL_ROOT_KEY_FILE or TENSORSEAL_KEYSTORE_PASSPHRASE for this run",
        file: ks.path,
      });
    findings.push(...checkRotation(ks.keys, o.now, o.defaultRotation, ks.path));
    findings.push(...checkKeystoreKdf(ks.root, ks.path));
    findings.push(...(await checkPermissions(ks.path, "keystore")));
    findings.push(...(await checkPermissions(dirname(ks.path), "keystore-dir")));
  }
  for (const env of ["TENSORSEAL_ROOT_KEY_FILE", "TENSORSEAL_SERVICE_ROOT_KEY_FILE"]) {
    const file = process.env[env];
    if (file) findings.push(...(await checkPermissions(file, "root-key")));
  }
  let filesChecked = 0;
  const shares: string[] = [];
  if (o.paths.length > 0) {
    const found = o.found ?? (await findSealedFiles(o.paths));
    const others = found.skipped
      .filter((s) => s.reason.startsWith("not sealed"))
      .map((s) => s.file);
    for (const file of found.files) {
      const header = await readHeader(file);
      if (header === "not-sealed") others.push(file);
      else if (typeof header === "string")
        findings.push({
          id: "file.unreadable-header",
          severity: "error",
          message: "the file is marked as sealed but its header cannot be read",
          evidence: header,
          fix: "restore the file from a backup, or remove it if it is not a sealed file",
          file,
        });
      else {
        filesChecked++;
        findings.push(...checkVersions(header, file, keys));
        findings.push(...checkLeftoverSlot(header, file));
        findings.push(...checkPassphraseStanzas(header, file));
        findings.push(...checkTiers(header, file, o.tiers ?? builtinTierConfig(), keys, o.now));
      }
    }
    for (const file of others) {
      const kind = await secretKind(file);
      if (kind) findings.push(...(await checkPermissions(file, kind)));
      if (kind === "share") shares.push(file);
    }
    if (ks?.keystore) {
      const identities = [ks.keystore.identity()];
      findings.push(...(await checkPlaintextCopies(found.files, others, identities)));
    }
  }
  if (shares.length > 0 || ks) {
    const { checkShares, DEFAULT_SHARE_DAYS } = await import("./check-shares.js");
    findings.push(
      ...(await checkShares({
        files: shares,
        home: o.home,
        keystoreId: ks?.id ?? null,
        now: o.now,
        maxDays: o.shareDays ?? DEFAULT_SHARE_DAYS,
      })),
    );
  }
  if (o.server) {
    const tls = await checkService(o.server, o.now, o.certDays);
    findings.push(...tls);
    // The token goes only where the scheme check passed and the service answered TLS.
    if (!tls.some((f) => f.id === "service.plaintext-http" || f.id === "service.unreachable")) {
      // One client for every API check: one TLS session and keep-alive connection per run.
      const { openServiceAccess } = await import("./service-access.js");
      const access = openServiceAccess(o.server);
      try {
        findings.push(...(await serviceApiChecks(access, o)));
      } finally {
        access.client?.close();
      }
    }
  }
  if (o.policy) {
    const { checkPolicyFiles } = await import("./check-policy.js");
    findings.push(...(await checkPolicyFiles(o.policy)));
  }
  if (o.db) {
    // The service's database layer (kysely, drivers) loads only when a database is checked.
    const { checkTokens } = await import("./check-tokens.js");
    findings.push(...(await checkTokens(o.db, o.now, o.tokenDays)));
    const { checkAuditDb, DEFAULT_CHECKPOINT_DAYS } = await import("./check-audit.js");
    findings.push(
      ...(await checkAuditDb(o.db, o.now, o.checkpointDays ?? DEFAULT_CHECKPOINT_DAYS)),
    );
  }
  if (o.drillHistory) {
    const { readHistory } = await import("./drill-history.js");
    const { checkDrills, DEFAULT_DRILL_DAYS } = await import("./check-drills.js");
    const history = await readHistory(o.drillHistory);
    findings.push(
      ...checkDrills(
        history,
        o.drillHistory,
        o.now,
        o.drillDays ?? DEFAULT_DRILL_DAYS,
        o.drillRequired ?? false,
      ),
    );
  }
  // A keystore under PATHS may be the one in $TENSORSEAL_HOME too: report it once.
  const seen = new Set<string>();
  const unique = findings.filter((f) => {
    const key = `${f.id}\0${f.file ?? ""}\0${f.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  unique.sort(
    (a, b) =>
      rank(b.severity) - rank(a.severity) ||
      cmp(a.id, b.id) ||
      cmp(a.file ?? "", b.file ?? "") ||
      cmp(a.message, b.message),
  );
  return { findings: unique, filesChecked, keystoreVerified: ks ? ks.verified : null };
}

/** The checks that ask the service's API, all through `access`'s one client. */
export async function serviceApiChecks(
  access: ServiceAccess,
  o: DoctorOptions,
): Promise<Finding[]> {
  const out: Finding[] = [];
  const { checkServiceKeys } = await import("./check-service-keys.js");
  out.push(...(await checkServiceKeys(access, o.now, o.defaultRotation)));
  const { checkServiceSettings } = await import("./check-service-settings.js");
  out.push(...(await checkServiceSettings(access)));
  // Cedar (wasm) loads only when policies are checked.
  const { checkServicePolicies } = await import("./check-policy.js");
  out.push(...(await checkServicePolicies(access)));
  // Over the API only when no database is checked: the same log, read once.
  if (!o.db) {
    const { checkAuditServer, DEFAULT_CHECKPOINT_DAYS } = await import("./check-audit.js");
    out.push(
      ...(await checkAuditServer(access, o.now, o.checkpointDays ?? DEFAULT_CHECKPOINT_DAYS)),
    );
  }
  return out;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The header, "not-sealed" for a named file without the magic, or why it cannot be read. */
async function readHeader(file: string): Promise<ParsedHeader | string> {
  try {
    return await inspectFile(file);
  } catch (e) {
    if (!isTensorSealError(e)) throw e;
    if (e.code === "E_NOT_TSEAL" && !file.endsWith(".tseal")) return "not-sealed";
    return `${e.code}: ${e.file === file ? e.detail : e.message}`;
  }
}
