/** Anomaly detection (--anomaly-*, --no-anomaly) and its alert webhook (--alert-webhook*). */
import { readFile } from "node:fs/promises";
import { fail } from "../../../format/errors.js";
import { type AnomalyOptions, checkWebhookUrl } from "../../../service/index.js";
import type { ServeFlags } from "./flags.js";

/** The anomaly flags as buildServer options (undefined: off); usage errors before anything listens. */
export async function anomalySettings(o: ServeFlags): Promise<AnomalyOptions | undefined> {
  const num = (flag: string, v: unknown, lo: number, hi: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < lo || n > hi) fail("E_USAGE", `${flag} must be ${lo}..${hi}`);
    return n;
  };
  if (Boolean(o.alertWebhook) !== Boolean(o.alertWebhookSecretFile))
    fail("E_USAGE", "--alert-webhook and --alert-webhook-secret-file go together");
  if (o.anomaly === false) {
    if (o.alertWebhook || o.anomalyAutoBlock)
      fail("E_USAGE", "--no-anomaly turns alerts off: drop --alert-webhook/--anomaly-auto-block");
    return undefined;
  }
  let webhook: AnomalyOptions["webhook"];
  if (o.alertWebhook) {
    try {
      checkWebhookUrl(String(o.alertWebhook));
    } catch (e) {
      fail("E_USAGE", `--alert-webhook: ${(e as Error).message}`);
    }
    const file = String(o.alertWebhookSecretFile);
    const text = await readFile(file, "utf8").catch((e: Error) =>
      fail("E_USAGE", `cannot read --alert-webhook-secret-file ${file}: ${e.message}`),
    );
    const secret = Buffer.from(text.trim());
    if (secret.length < 16)
      fail("E_USAGE", "--alert-webhook-secret-file must hold at least 16 bytes");
    webhook = { url: String(o.alertWebhook), secret };
  }
  return {
    rateFactor: num("--anomaly-rate-factor", o.anomalyRateFactor, 1.1, 1e6),
    minRate: num("--anomaly-min-rate", o.anomalyMinRate, 1, 1e9),
    warmupMinutes: num("--anomaly-warmup", o.anomalyWarmup, 0, 10080),
    baselineMinutes: num("--anomaly-baseline", o.anomalyBaseline, 1, 10080),
    firstSeen: o.anomalyFirstSeen !== false,
    firstSeenPrincipal: o.anomalyFirstSeenPrincipal !== false,
    autoBlock: o.anomalyAutoBlock === true,
    ...(webhook ? { webhook } : {}),
  };
}
