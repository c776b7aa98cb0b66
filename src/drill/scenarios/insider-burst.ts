/**
 * Insider burst of unwraps: a principal with a legitimate unwrap token drains keys in bulk. The
 * service's anomaly detection (rate against the baseline, with auto-block, as `serve
 * --anomaly-*` configures it) must raise a rate alert within DETECT_WITHIN_MS, block the
 * principal, and refuse its further unwraps; the number of keys it got is bounded.
 */
import { performance } from "node:perf_hooks";
import type { AnomalyOptions } from "../../service/anomaly/options.js";
import type { DrillContext, Scenario } from "../types.js";
import { ok200 } from "./util.js";

/** The drill's service settings: 20 keys in a minute with no history is a burst. */
export const BURST_ANOMALY: AnomalyOptions = {
  warmupMinutes: 0,
  minRate: 20,
  rateFactor: 10,
  autoBlock: true,
  firstSeen: false,
};
const DETECT_WITHIN_MS = 5000;
const BURST = 200;

export const insiderBurst: Scenario = {
  name: "insider-burst",
  summary:
    "an insider's token unwraps keys in bulk: a rate alert, the principal blocked, further unwraps refused",
  weakenings: {
    "no-anomaly": "anomaly detection is off",
    "no-auto-block": "a rate alert does not block the principal",
  },
  async run(ctx: DrillContext) {
    const anomaly = ctx.weakened.has("no-anomaly")
      ? undefined
      : { ...BURST_ANOMALY, autoBlock: !ctx.weakened.has("no-auto-block") };
    const svc = await ctx.sandbox.startService(anomaly ? { anomaly } : {});
    await ok200(svc.admin, "/v1/keys", { name: "prod" });
    const { stanza } = await ok200(svc.admin, "/v1/datakeys/generate", { key: "prod" });
    const insider = await svc.principal(["unwrap"]);
    const unwrap = () => insider.client.post("/v1/datakeys/unwrap", { stanza });
    const alerted = async () =>
      (await svc.db.db
        .selectFrom("audit")
        .select("seq")
        .where("action", "=", "alert.rate")
        .where("principal", "=", insider.id)
        .executeTakeFirst()) !== undefined;
    // Ordinary use first: a handful of unwraps, no alert.
    for (let i = 0; i < 3; i++) if ((await unwrap()).status !== 200) break;
    ctx.check("ordinary use does not alert", !(await alerted()));

    ctx.breach();
    const t0 = performance.now();
    let released = 0;
    let detectedMs: number | null = null;
    let refused = false;
    for (let i = 0; i < BURST; i++) {
      const r = await unwrap();
      if (detectedMs === null && (await alerted())) {
        detectedMs = performance.now() - t0;
        ctx.detected();
      }
      if (r.status === 200) released++;
      else {
        refused = r.status === 403;
        if (refused) ctx.contained();
        break;
      }
    }
    ctx.check(
      `a rate alert within ${DETECT_WITHIN_MS / 1000} s`,
      detectedMs !== null && detectedMs <= DETECT_WITHIN_MS,
      detectedMs === null ? "no alert.rate entry" : `${Math.round(detectedMs)} ms`,
    );
    const blocked = await svc.admin.get("/v1/principals/blocked");
    const list = (blocked.body.blocked as { principal: string }[] | undefined) ?? [];
    ctx.check(
      "the principal is blocked",
      list.some((b) => b.principal === insider.id),
      `${list.length} blocked`,
    );
    ctx.check(
      `the insider got at most ${BURST_ANOMALY.minRate} keys in the burst`,
      released <= (BURST_ANOMALY.minRate ?? 0),
      `${released} released`,
    );
    ctx.check(
      "the burst was stopped: a further unwrap is refused (403)",
      refused && (await unwrap()).status === 403,
      `${released} keys released of ${BURST} asked`,
    );
    const fresh = await ok200(svc.admin, "/v1/datakeys/generate", { key: "prod" });
    ctx.check(
      "the block covers every stanza, not only the one drained",
      (await insider.client.post("/v1/datakeys/unwrap", { stanza: fresh.stanza })).status === 403,
    );
  },
};
