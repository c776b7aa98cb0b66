/** The lines `serve` prints on stderr once it listens (tests and operators grep some of them). */
import type {
  AnomalyOptions,
  Authorizer,
  DevTls,
  RootRecovery,
  RootUnseal,
} from "../../../service/index.js";
import type { TierPolicy } from "../../../service/tiers.js";
import { say } from "../../output.js";
import type { ApprovalSettings } from "./approvals.js";
import { anchorFileProblem } from "./checkpoints.js";

export interface Summary {
  readonly url: string;
  readonly serverId: string;
  readonly auditPublicKey: string;
  /** The database, credentials redacted (`db.where`). */
  readonly where: string;
  readonly authorizer: Authorizer;
  readonly approvals: ApprovalSettings;
  readonly recovery: RootRecovery | null;
  readonly unseal: RootUnseal | null;
  readonly anomaly: AnomalyOptions | undefined;
  readonly anchorFile: string | undefined;
  readonly dev: DevTls | null;
  /** --client-ca when mTLS is on. */
  readonly clientCa: string | null;
  /** False with --no-console. */
  readonly console: boolean;
  /** --tier-policy, when given. */
  readonly tiers?: TierPolicy | undefined;
}

export async function printSummary(s: Summary): Promise<void> {
  say(`key service listening on ${s.url} (server id ${s.serverId}, ${s.where})`);
  say(`audit public key (pin it for \`audit verify --public-key\`): ${s.auditPublicKey}`);
  say(
    `bootstrap policies: ${s.authorizer.source} (${Object.keys(s.authorizer.policies).length}); a set approved over the API (GET /v1/policies) takes precedence`,
  );
  const dual = Object.entries(s.approvals.required).filter(([, n]) => n > 1);
  say(
    dual.length > 0
      ? `dual control: ${dual.map(([op, n]) => `${op} needs ${n} approvals`).join(", ")}`
      : "dual control is off (every --approvals operation at 1): consider --approvals destroy=2,export=2,policy=2",
  );
  if (s.tiers) say(`tiers: ${tierSummary(s.tiers)}`);
  if (s.approvals.webhook)
    say(`approval events to ${new URL(s.approvals.webhook.url).host} (signed)`);
  if (s.unseal) say(`root key unsealed by ${s.unseal.custody} (audited as root.unseal)`);
  if (s.recovery)
    say(`root key rebuilt from shares ${s.recovery.shares.join(", ")} (audited as root.recover)`);
  say(
    s.anomaly
      ? `anomaly detection on (auto-block ${s.anomaly.autoBlock ? "on" : "off"}, webhook ${s.anomaly.webhook ? new URL(s.anomaly.webhook.url).host : "none"})`
      : "anomaly detection off",
  );
  say(
    s.console
      ? `web console: ${new URL("/console/", s.url)} (sign in with an API token; docs/CONSOLE.md)`
      : "web console off (--no-console)",
  );
  if (s.anchorFile)
    say(`checkpoints anchored to ${s.anchorFile}${await anchorFileProblem(s.anchorFile)}`);
  if (s.dev) say(`development CA: ${s.dev.caPath} (clients: TENSORSEAL_SERVER_CA=${s.dev.caPath})`);
  if (s.clientCa) say(`mTLS: client certificates from ${s.clientCa} (SPIFFE ID principals)`);
}

/** One clause per tier with minimums: `restricted (rotation <= 7776000s, attestation, ...)`. */
function tierSummary(p: TierPolicy): string {
  const parts = p.list().map((t) => {
    const rules = [
      ...(t.rotationPeriod !== null ? [`rotation <= ${t.rotationPeriod}s`] : []),
      ...(t.attestation ? ["attested release"] : []),
      ...(t.dualControl ? ["dual control"] : []),
      ...(t.cacheTtl !== null ? [`client cache <= ${t.cacheTtl}s`] : []),
      ...(t.postQuantum ? ["post-quantum KEM"] : []),
      ...(t.recipients !== null ? [`recipients ${t.recipients.join("/")}`] : []),
    ];
    return rules.length > 0 ? `${t.name} (${rules.join(", ")})` : null;
  });
  const set = parts.filter((x) => x !== null);
  return set.length > 0 ? set.join("; ") : "no minimums";
}
