/**
 * Tiers violated by files already written (docs/GOVERNANCE.md §Tiers): the tier a file's
 * authenticated header names (spec/FORMAT.md §2.2.1) against what that tier requires now.
 *   file.tier-violation  a stanza of a recipient kind the tier does not allow (error)
 *   file.tier-rotation   a kek stanza under a local version older than the tier's period
 *   file.tier-unknown    a tier the configuration does not define
 * Files without a tier are not judged.
 */
import type { ParsedHeader } from "../format/header.js";
import { metadataOf } from "../format/metadata.js";
import type { KeyInfo } from "../keys/index.js";
import { KEK_STANZA, parseKekStanza } from "../keys/kek.js";
import { kindViolations, rotationViolation, stanzaKind, type TierConfig } from "../tiers/policy.js";
import type { Finding } from "./findings.js";

export function checkTiers(
  h: ParsedHeader,
  file: string,
  tiers: TierConfig,
  keys: readonly KeyInfo[],
  now: Date,
): Finding[] {
  const name = metadataOf(h.descriptor.labels).tier;
  if (name === undefined) return [];
  const where = tiers.source ?? "the built-in tiers";
  const tier = tiers.tiers.get(name);
  if (!tier)
    return [
      {
        id: "file.tier-unknown",
        severity: "warning",
        message: `the file names tier ${name}, which is not defined`,
        evidence: `tensorseal:tier ${name}; tiers defined in ${where}: ${[...tiers.tiers.keys()].join(", ")}`,
        fix: `define tier ${name} under tiers: in .tensorseal.yaml, or open the file and seal it again with --tier NAME`,
        file,
      },
    ];
  const out: Finding[] = [];
  const kinds = h.stanzas.map(stanzaKind);
  for (const message of kindViolations(tier, kinds))
    out.push({
      id: "file.tier-violation",
      severity: "error",
      message,
      evidence: `tensorseal:tier ${name} (${where}); stanzas: ${kinds.join(", ")}`,
      fix: `tensorseal rewrap ${file} --remove-recipient KIND (adding an allowed recipient with --add-recipient if none is left), or tensorseal reseal ${file} -r RECIPIENT`,
      file,
    });
  for (const s of h.stanzas) {
    if (s.type !== KEK_STANZA) continue;
    let ref: { name: string; version: number };
    try {
      ref = parseKekStanza(s);
    } catch {
      continue; // a malformed stanza is the versions check's to report
    }
    const key = keys.find((k) => k.name === ref.name);
    const v = key?.versions.find((x) => x.version === ref.version);
    if (!v) continue;
    const why = rotationViolation(tier, { ...ref, created: v.created }, now);
    if (why)
      out.push({
        id: "file.tier-rotation",
        severity: "warning",
        message: why,
        evidence: `tensorseal:tier ${name}; kek ${ref.name} v${ref.version} created ${v.created}`,
        fix: `tensorseal keys rotate ${ref.name} && tensorseal rewrap --to-latest ${file}`,
        file,
      });
  }
  return out;
}
