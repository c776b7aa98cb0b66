/**
 * service.dual-control-off: the key service runs destroy or export on one admin's word (dual
 * control `--approvals destroy=M,export=M` with M below 2): one stolen admin credential can
 * destroy a key version (every file under it lost) or export key material. A tier policy
 * (`serve --tier-policy`) raises it to 2 for keys of tiers that require dual control, so the
 * finding names how many keys are still exposed, and is left out when none is and every key is
 * covered. Judged from the service's own settings, so only the service reports it
 * (GET /v1/overview, `findings`).
 */
import type { Finding } from "./findings.js";

/** The operations whose loss or leak cannot be undone: they should need two people. */
export const DUAL_CONTROL_OPS = ["destroy", "export"] as const;

export function judgeDualControl(
  required: Readonly<Record<(typeof DUAL_CONTROL_OPS)[number], number>>,
  keys: { readonly total: number; readonly exposed: number },
  where: string,
): Finding[] {
  const off = DUAL_CONTROL_OPS.filter((op) => required[op] < 2);
  // Keys all under a dual-control tier: nothing runs on one word today.
  if (off.length === 0 || (keys.total > 0 && keys.exposed === 0)) return [];
  return [
    {
      id: "service.dual-control-off",
      severity: "warning",
      message: `dual control is off for ${off.join(" and ")}: one admin's request runs it`,
      evidence: `${where}: approvals required ${DUAL_CONTROL_OPS.map((op) => `${op}=${required[op]}`).join(", ")}; ${keys.exposed} of ${keys.total} keys not in a tier that requires dual control`,
      fix: `tensorseal serve --approvals ${DUAL_CONTROL_OPS.map((op) => `${op}=${Math.max(2, required[op])}`).join(",")} (docs/SERVICE.md, dual control)`,
    },
  ];
}
