/**
 * The KEK versions a sealed file's `kek` stanzas are wrapped under, judged against this
 * keystore's lifecycle (spec/KEYSTORE.md §Lifecycle): destroyed (critical when no other stanza
 * of the file could open it, else error), disabled or scheduled for destruction (error), below
 * min_decryption_version (error: open refuses it), older than the primary (note: a campaign has
 * not reached it). Stanzas of keys this keystore does not hold are not judged.
 */
import type { ParsedHeader } from "../format/header.js";
import type { KeyInfo } from "../keys/index.js";
import { KEK_STANZA, parseKekStanza } from "../keys/kek.js";
import type { Finding } from "./findings.js";

type Judged = Omit<Finding, "file">;

const REWRAP = (file: string) => `tensorseal rewrap --to-latest ${file}`;

export function checkVersions(h: ParsedHeader, file: string, keys: readonly KeyInfo[]): Finding[] {
  const out: Finding[] = [];
  const byName = new Map(keys.map((k) => [k.name, k]));
  const judged = h.stanzas.map((s): { usable: boolean; finding: Judged | null } => {
    if (s.type !== KEK_STANZA) return { usable: true, finding: null };
    let ref: { name: string; version: number };
    try {
      ref = parseKekStanza(s);
    } catch {
      return { usable: false, finding: null };
    }
    const k = byName.get(ref.name);
    const v = k?.versions.find((x) => x.version === ref.version);
    if (!k || !v) return { usable: true, finding: null };
    const what = `kek ${k.name} version ${v.version}`;
    const evidence = `${what}: state ${v.state}; primary ${k.primaryVersion}; min_decryption_version ${k.minDecryptionVersion}`;
    switch (v.state) {
      case "destroyed":
        return {
          usable: false,
          finding: {
            id: "file.version-destroyed",
            severity: "critical",
            message: `wrapped under ${what}, destroyed on ${v.destroyed}`,
            evidence,
            fix: "open the file with another of its recipients and rewrap it; with none, restore it from a backup sealed to a live key",
          },
        };
      case "disabled":
      case "scheduled_for_destruction":
        return {
          usable: false,
          finding: {
            id: "file.version-retired",
            severity: "error",
            message: `wrapped under ${what}, which is ${v.state.replaceAll("_", " ")}${v.destroyAfter ? ` (destroyed after ${v.destroyAfter})` : ""}`,
            evidence: `${evidence}${v.destroyAfter ? `; destroy_after ${v.destroyAfter}` : ""}`,
            fix: `${v.state === "disabled" ? "" : `tensorseal keys cancel-destroy ${k.name} ${v.version}, then `}tensorseal keys enable ${k.name} ${v.version}, then ${REWRAP(file)}`,
          },
        };
      case "enabled":
        if (v.version < k.minDecryptionVersion)
          return {
            usable: false,
            finding: {
              id: "file.version-below-minimum",
              severity: "error",
              message: `wrapped under ${what}, below min_decryption_version ${k.minDecryptionVersion}: open refuses it`,
              evidence,
              fix: REWRAP(file),
            },
          };
        if (v.version < k.primaryVersion)
          return {
            usable: true,
            finding: {
              id: "file.version-not-latest",
              severity: "note",
              message: `wrapped under ${what}, not yet the primary version ${k.primaryVersion}`,
              evidence,
              fix: REWRAP(file),
            },
          };
    }
    return { usable: true, finding: null };
  });
  const anyUsable = judged.some((j) => j.usable);
  for (const j of judged) {
    if (!j.finding) continue;
    // A destroyed version is data loss only when nothing else in the header can open the file.
    const downgrade = j.finding.id === "file.version-destroyed" && anyUsable;
    out.push({ ...j.finding, ...(downgrade && { severity: "error" }), file });
  }
  return out;
}
