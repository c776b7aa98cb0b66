/**
 * The human report: a keys table (one row per key version) and an artifacts table, tab-separated
 * with a header row, then what was skipped and the notes. Every field is escaped by printRow.
 */
import type { Inventory, KeyEntry, Protector } from "./model.js";

export function tableRows(inv: Inventory): (readonly string[])[] {
  const rows: (readonly string[])[] = [];
  rows.push([
    "KEY",
    "PROVIDER",
    "VERSION",
    "STATE",
    "CREATED",
    "FILES",
    "ROTATION DUE",
    "TIER",
    "OWNER",
    "PURPOSE",
  ]);
  for (const k of inv.keys) {
    for (const v of k.versions.length > 0 ? k.versions : [null]) {
      const isPrimary = v !== null && v.version !== null && v.version === k.primaryVersion;
      rows.push([
        k.name,
        provider(k),
        v?.version == null ? "-" : `v${v.version}${isPrimary ? " (primary)" : ""}`,
        v?.state ?? (k.listed ? "-" : "not listed"),
        v?.created ?? "-",
        String(v?.files ?? 0),
        isPrimary || v === null ? due(k) : "",
        ...(isPrimary || v === null
          ? [k.tier ?? "-", k.owner ?? "-", k.purpose ?? "-"]
          : ["", "", ""]),
      ]);
    }
  }
  rows.push([]);
  rows.push([
    "ARTIFACT",
    "KEYS",
    "RECIPIENTS",
    "PLAINTEXT",
    "CONTEXT",
    "LABELS",
    "HEADER DIGEST",
    "TIER",
    "PURPOSE",
    "OWNER",
    "LAST RELEASE",
  ]);
  for (const a of inv.artifacts) {
    const ids = a.registry.map((r) => r.id);
    // A resealed file's old registration: kept for the audit trail, named as replaced.
    const gone = a.registry.flatMap((r) => (r.supersededBy ? [r.supersededBy] : []));
    rows.push([
      (a.file ?? `registry ${ids.join(",")}`) +
        (gone.length > 0 ? ` (superseded by ${gone.join(",")})` : ""),
      a.protectors.map(protector).join(", ") || "-",
      a.recipients.length > 0 ? a.recipients.join("; ") : "-",
      a.plaintextLength === null ? "-" : `${a.plaintextLength} bytes`,
      pairs(a.context),
      pairs(a.labels),
      a.headerDigest ?? "-",
      a.tier ?? "-",
      a.purpose ?? "-",
      a.owner ?? "-",
      a.lastRelease === undefined
        ? ids.length > 0
          ? "not read"
          : "-"
        : a.lastRelease === null
          ? "never"
          : `${a.lastRelease.ts} by ${a.lastRelease.principal ?? "?"}`,
    ]);
  }
  if (inv.skipped.length > 0) {
    rows.push([]);
    rows.push(["SKIPPED", "REASON"]);
    for (const s of inv.skipped) rows.push([s.file, s.reason]);
  }
  for (const n of inv.notes) rows.push([`note: ${n}`]);
  return rows;
}

function provider(k: KeyEntry): string {
  return k.scope === null ? k.provider : `${k.provider} ${k.scope}`;
}

function due(k: KeyEntry): string {
  if (k.rotationDue === null) return "-";
  const from = k.rotationDueFrom === "default" ? " (default period)" : "";
  return `${k.rotationDue}${from}${k.rotationOverdue ? " OVERDUE" : ""}`;
}

export function protector(p: Protector): string {
  switch (p.kind) {
    case "kek":
    case "service":
      return `${p.kind}:${p.key}@v${p.version}`;
    case "kms":
      return `kms:${p.provider}:${p.key}`;
    case "x25519":
    case "mlkem768x25519":
      return `${p.kind}:${p.tag}`;
    case "passphrase":
      return "passphrase";
    default:
      return p.type;
  }
}

function pairs(m: Readonly<Record<string, string>> | null): string {
  if (m === null) return "-";
  const s = Object.entries(m)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  return s || "-";
}
