/**
 * contain: stop releases for the scope at once, and fail closed (any refusal stops the step and
 * the incident stays "open"; the failed action is in the record).
 *   key        rotate when the primary is compromised, then disable each compromised version
 *              (local keystore or key service)
 *   principal  the service's `contain` operation: block it (every replica refuses it within its
 *              cache window), revoke its token and the client certificates it used
 *   endpoint   the same for every principal that received a file key from that address
 *   artifact   nothing can take back a file key already released: recorded; eradicate reseals
 * Under dual control (`serve --approvals contain=2`) the containment is an approval request: the
 * step records it as waiting and stops; a second principal approves it on the service, and the
 * rerun sees it executed and marks the incident contained. Nothing is contained before that.
 */
import { printable } from "../format/printable.js";
import { releasesFor } from "./audit.js";
import { type IncidentContext, needControl, needService } from "./context.js";
import { approvalOutcome } from "./controls.js";
import { type Outcome, StepRunner } from "./journal.js";

export interface ContainOptions {
  /** endpoint scope: look for principals from this time (ISO). */
  readonly since?: string;
  /** Client certificate fingerprints to revoke besides those the service saw the principal use. */
  readonly fingerprints?: readonly string[];
}

export interface ContainResult {
  readonly run: StepRunner;
  /** The containment waits for an approval (the incident stays open). */
  readonly waiting: boolean;
}

export async function contain(
  ctx: IncidentContext,
  o: ContainOptions = {},
): Promise<ContainResult> {
  const { inc } = ctx;
  const run = new StepRunner(ctx.home, inc, "contain", ctx.now);
  let waiting = false;
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
    waiting = await containPrincipals(ctx, run, [inc.scope.value], o.fingerprints ?? []);
  } else if (inc.scope.kind === "endpoint") {
    const client = needService(ctx, "an endpoint incident");
    const found = await run.act(
      "find-principals",
      `find principals served at ${inc.scope.value}`,
      async () => {
        const rel = await releasesFor(client, inc.scope, [], o.since);
        return { detail: { principals: [...new Set(rel.map((r) => r.principal))].sort() } };
      },
    );
    const principals = (found.detail?.principals as string[]) ?? [];
    if (principals.length > 0)
      waiting = await containPrincipals(ctx, run, principals, o.fingerprints ?? []);
  } else {
    await run.act("note", "record: a released file key cannot be revoked", async () => ({
      detail: { note: "no service control blocks one artifact; eradicate reseals it" },
    }));
  }
  if (!waiting) {
    if (inc.state === "open") inc.state = "contained";
    inc.times.contained ??= ctx.now().toISOString();
  }
  await run.save();
  return { run, waiting };
}

/**
 * One `contain` request on the key service for all the principals (one approval covers them):
 * executed at once, or waiting for a second principal's approval; a rerun asks for the state of
 * the request it made instead of making another.
 */
async function containPrincipals(
  ctx: IncidentContext,
  run: StepRunner,
  principals: string[],
  fingerprints: readonly string[],
): Promise<boolean> {
  const client = needService(ctx, "a principal incident");
  const out = await run.act(
    "contain:principals",
    `block and revoke the credentials of ${principals.map(printable).join(", ")}`,
    async (prior): Promise<Outcome> => {
      let body: Record<string, unknown>;
      if (prior?.approval && prior.state !== "failed") {
        const p = `/v1/approvals/${encodeURIComponent(prior.approval.id)}`;
        const r = await client.get(p);
        if (r.status !== 200) client.refused(p, r);
        body = r.body;
      } else {
        const r = await client.post("/v1/approvals", {
          operation: "contain",
          principals,
          ...(fingerprints.length ? { fingerprints: [...fingerprints] } : {}),
          reason: `incident ${ctx.inc.id}`,
        });
        if (r.status !== 200 && r.status !== 202) client.refused("/v1/approvals", r);
        body = r.body;
      }
      const o = approvalOutcome(body);
      const outcome = body.outcome as
        | { contained?: Record<string, unknown>[]; skipped?: string[] }
        | undefined;
      return {
        ...o,
        detail: {
          principals,
          ...(outcome?.contained ? { contained: outcome.contained } : {}),
          ...(outcome?.skipped ? { skipped: outcome.skipped } : {}),
        },
      };
    },
  );
  return out.waiting === true;
}
