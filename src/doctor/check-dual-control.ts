/**
 * service.dual-control-off: the key service runs destroy or export on one admin's word (dual
 * control `--approvals destroy=M,export=M` with M below 2): one stolen admin credential can
 * destroy a key version (every file under it lost) or export key material. Judged from the
 * service's own settings, so only the service reports it (GET /v1/overview, `findings`).
 */
import type { Finding } from "./findings.js";

/** The operations whose loss or leak cannot be undone: they should need two people. */
export const DUAL_CONTROL_OPS = ["destroy", "export"] as const;

export function judgeDualControl(
  required: Readonly<Record<(typeof DUAL_CONTROL_OPS)[number], number>>,
  where: string,
): Finding[] {
  const off = DUAL_CONTROL_OPS.filter((op) => required[op] < 2);
  if (off.length === 0) return [];
  return [
    {
      id: "service.dual-control-off",
      severity: "warning",
      message: `dual control is off for ${off.join(" and ")}: one admin's request runs it`,
      evidence: `${where}: approvals required ${DUAL_CONTROL_OPS.map((op) => `${op}=${required[op]}`).join(", ")}`,
      fix: `tensorseal serve --approvals ${DUAL_CONTROL_OPS.map((op) => `${op}=${Math.max(2, required[op])}`).join(",")} (docs/SERVICE.md, dual control)`,
    },
  ];
}
