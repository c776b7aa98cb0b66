/**
 * service.key-rotation-overdue: a key of the key service whose primary version is older than
 * its rotation period, by the rule local keys follow (check-rotation.ts, rotationDue): its own
 * period (`service keys set --rotation-period`) overdue is a warning (`service keys rotate-due`
 * should have rotated it); without one, the default period makes it a note. Listing keys needs
 * an admin token (TENSORSEAL_SERVER_TOKEN[_FILE]): without one, or refused, a note says the
 * check was skipped. Plain HTTP to another host is never sent the token (service.plaintext-http).
 */
import { rotationDue } from "../keys/rotation-due.js";
import type { Finding } from "./findings.js";
import { getForCheck, type ServiceAccess } from "./service-access.js";

export interface ListedKey {
  name: string;
  primaryVersion: number;
  rotationPeriod?: number | null;
  versions: { version: number; created: string }[];
}

export async function checkServiceKeys(
  access: ServiceAccess,
  now: Date,
  defaultPeriod: number | null,
): Promise<Finding[]> {
  const { origin } = access;
  const skipped = (why: string): Finding[] => [
    {
      id: "service.keys-unchecked",
      severity: "note",
      message: `the key service's key rotation was not checked: ${why}`,
      evidence: `${origin}: GET /v1/keys`,
      fix: "give doctor an admin token (TENSORSEAL_SERVER_TOKEN or TENSORSEAL_SERVER_TOKEN_FILE)",
    },
  ];
  // Unreachable: service.unreachable (check-tls.ts) reports it as well.
  const got = await getForCheck(access, "/v1/keys");
  if ("why" in got) return skipped(got.why);
  return judgeServiceKeys(got.body.keys as ListedKey[], now, defaultPeriod, origin);
}

/**
 * The rule itself, on listed keys (names, versions, dates: never material): shared by
 * `doctor --server` and the key service's overview (GET /v1/overview, `findings`), which
 * judges its own keys with `where` naming itself.
 */
export function judgeServiceKeys(
  keys: readonly ListedKey[],
  now: Date,
  defaultPeriod: number | null,
  where: string,
): Finding[] {
  const out: Finding[] = [];
  for (const k of keys) {
    const own = k.rotationPeriod ?? null;
    const due = rotationDue({ ...k, rotationPeriod: own }, defaultPeriod);
    if (!due || Date.parse(due.due) > now.getTime()) continue;
    const age = (now.getTime() - Date.parse(due.primaryCreated)) / 1000;
    const source = own !== null ? "its rotation period" : "the default rotation period";
    out.push({
      id: "service.key-rotation-overdue",
      severity: own !== null ? "warning" : "note",
      message: `service key ${k.name}: primary version ${k.primaryVersion} is ${days(age)} old, past ${source} of ${days(due.period)}`,
      evidence: `${where}: version ${k.primaryVersion} created ${due.primaryCreated}; ${own !== null ? "rotationPeriod" : "doctor.rotation_period default"} ${due.period}s; due ${due.due}; checked at ${now.toISOString()}`,
      fix:
        own !== null
          ? "tensorseal service keys rotate-due (from cron) && tensorseal rewrap --to-latest PATHS"
          : `tensorseal service keys rotate ${k.name}, or give it a period: tensorseal service keys set ${k.name} --rotation-period 90d`,
    });
  }
  return out;
}

function days(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  return d >= 1 ? `${d} day${d === 1 ? "" : "s"}` : `${Math.floor(seconds)}s`;
}
