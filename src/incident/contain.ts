/**
 * contain: stop releases for the scope at once, and fail closed (any refusal stops the step and
 * the incident stays "open"; the failed action is in the record).
 *   key        rotate when the primary is compromised, then disable each compromised version
 *              (local keystore or key service)
 *   principal  block it on the key service (every replica refuses it within its cache window)
 *   endpoint   block every principal that received a file key from that address
 *   artifact   nothing can take back a file key already released: recorded; eradicate reseals
 */
import { printable } from "../format/printable.js";
import { releasesFor } from "./audit.js";
import { type IncidentContext, needControl, needService } from "./context.js";
import { StepRunner } from "./journal.js";

export async function contain(ctx: IncidentContext, since?: string): Promise<StepRunner> {
  const { inc } = ctx;
  const run = new StepRunner(ctx.home, inc, "contain", ctx.now);
  if (inc.scope.kind === "key") {
    const control = needControl(ctx);
    for (const c of inc.compromised) {
      await run.act(
        `rotate:${c.key}`,
        `rotate ${c.key} if its primary is compromised`,
        async () => {
          const k = await control.key(c.key);
          if (!c.versions.includes(k.primary))
            return { detail: { primary: k.primary, rotated: false } };
          return { detail: { primary: await control.rotate(c.key), rotated: true } };
        },
      );
      for (const v of c.versions) {
        await run.act(`disable:${c.key}@${v}`, `disable ${c.key} v${v}`, async () => {
          await control.disable(c.key, v);
          const state = (await control.key(c.key)).versions.find((x) => x.version === v)?.state;
          return { detail: { state } };
        });
      }
    }
  } else if (inc.scope.kind === "principal") {
    await block(ctx, run, inc.scope.value);
  } else if (inc.scope.kind === "endpoint") {
    const client = needService(ctx, "an endpoint incident");
    const found = await run.act(
      "find-principals",
      `find principals served at ${inc.scope.value}`,
      async () => {
        const rel = await releasesFor(client, inc.scope, [], since);
        return { detail: { principals: [...new Set(rel.map((r) => r.principal))].sort() } };
      },
    );
    for (const p of (found.detail?.principals as string[]) ?? []) await block(ctx, run, p);
  } else {
    await run.act("note", "record: a released file key cannot be revoked", async () => ({
      detail: { note: "no service control blocks one artifact; eradicate reseals it" },
    }));
  }
  if (inc.state === "open") inc.state = "contained";
  inc.times.contained ??= ctx.now().toISOString();
  await run.save();
  return run;
}

async function block(ctx: IncidentContext, run: StepRunner, principal: string): Promise<void> {
  const client = needService(ctx, "a principal incident");
  await run.act(`block:${principal}`, `block ${printable(principal)}`, async () => {
    const path = `/v1/principals/${encodeURIComponent(principal)}/block`;
    const r = await client.post(path, { reason: `incident ${ctx.inc.id}` });
    // The responder's own principal (an endpoint incident where the responder also worked):
    // the service refuses a self-block; recorded, and the report shows it.
    if (r.status === 409)
      return { detail: { blocked: false, skipped: "the responder's own principal" } };
    if (r.status !== 200) client.refused(path, r);
    return { detail: { blocked: true } };
  });
}
