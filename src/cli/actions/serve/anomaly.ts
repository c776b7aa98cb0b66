/** Anomaly detection (--anomaly-*, --no-anomaly) and its alert webhook (--alert-webhook*). */
import { fail } from "../../../format/errors.js";
import type { AnomalyOptions } from "../../../service/index.js";
import type { ServeFlags } from "../../commands/serve/flags.js";
import { decimalFlag, intFlag } from "../../commands/service-shared.js";
import { webhookFlags } from "./webhook.js";

/** The anomaly flags as buildServer options (undefined: off); usage errors before anything listens. */
export async function anomalySettings(o: ServeFlags): Promise<AnomalyOptions | undefined> {
  // Checked first, as before the webhook flags had a helper: the same error wins.
  if (Boolean(o.alertWebhook) !== Boolean(o.alertWebhookSecretFile))
    fail("E_USAGE", "--alert-webhook and --alert-webhook-secret-file go together");
  if (o.anomaly === false) {
    if (o.alertWebhook || o.anomalyAutoBlock)
      fail("E_USAGE", "--no-anomaly turns alerts off: drop --alert-webhook/--anomaly-auto-block");
    return undefined;
  }
  const webhook = await webhookFlags(
    "--alert-webhook",
    o.alertWebhook,
    "--alert-webhook-secret-file",
    o.alertWebhookSecretFile,
  );
  return {
    rateFactor: decimalFlag("--anomaly-rate-factor", o.anomalyRateFactor, 1.1, 1e6),
    minRate: intFlag("--anomaly-min-rate", o.anomalyMinRate, 1, 1e9),
    warmupMinutes: intFlag("--anomaly-warmup", o.anomalyWarmup, 0, 10080, " minutes"),
    baselineMinutes: intFlag("--anomaly-baseline", o.anomalyBaseline, 1, 10080, " minutes"),
    firstSeen: o.anomalyFirstSeen !== false,
    firstSeenPrincipal: o.anomalyFirstSeenPrincipal !== false,
    autoBlock: o.anomalyAutoBlock === true,
    ...(webhook ? { webhook } : {}),
  };
}
