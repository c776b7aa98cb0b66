/**
 * file.leftover-slot: the inactive header slot still holds an older recipient list (an
 * interrupted rewrap) or its damaged remains, as `verify` reports with exit 10.
 */
import { leftoverMessage } from "../cli/describe.js";
import type { ParsedHeader } from "../format/header.js";
import type { Finding } from "./findings.js";

export function checkLeftoverSlot(h: ParsedHeader, file: string): Finding[] {
  const slot = h.inactiveSlot;
  if (slot.kind === "empty") return [];
  return [
    {
      id: "file.leftover-slot",
      severity: "warning",
      message: leftoverMessage(h),
      evidence:
        slot.kind === "stale"
          ? `active slot ${h.activeSlot} generation ${h.generation}; inactive slot holds generation ${slot.generation} (${slot.stanzas.length} stanza(s))`
          : `active slot ${h.activeSlot} generation ${h.generation}; inactive slot damaged`,
      fix: `tensorseal rewrap --to-latest ${file}`,
      file,
    },
  ];
}
