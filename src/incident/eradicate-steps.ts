/**
 * The file work of eradicate: which files to reseal, the reseal and rewrap campaigns, the
 * rescan, and the window in which a key service version is enabled again (--reenable). Each is
 * an action of the step journal (journal.ts); the campaigns keep their own journals beside the
 * record, so a rerun after a crash finishes without redoing a file.
 */
import { rewrapToLatest } from "../keys/campaign.js";
import { resealCampaign } from "../keys/reseal-campaign.js";
import { restanzaRegistrar, successorRegistrar } from "../keys/service/registry.js";
import { type IncidentContext, needControl } from "./context.js";
import type { EradicateOptions } from "./eradicate.js";
import { type ScannedFile, scanPaths } from "./files.js";
import type { StepRunner } from "./journal.js";
import { incidentPath } from "./store.js";
import type { FileOutcome } from "./types.js";

/** Files to reseal now: exposed ones still on the header they were assessed with, or (key scope) still on a compromised version. */
function resealTargets(ctx: IncidentContext, files: readonly ScannedFile[]): ScannedFile[] {
  const { inc } = ctx;
  const exposed = new Map(
    (inc.assessment?.files ?? []).filter((f) => f.class === "exposed").map((f) => [f.file, f]),
  );
  return files.filter((f) => {
    const a = exposed.get(f.file);
    if (!a) return false;
    if (inc.scope.kind !== "key") return a.headerDigest === f.headerDigest;
    return onCompromised(ctx, f);
  });
}

function onCompromised(ctx: IncidentContext, f: ScannedFile): boolean {
  const type = ctx.control?.type;
  return f.refs.some((r) =>
    ctx.inc.compromised.some(
      (c) =>
        r.type === type &&
        r.key === c.key &&
        c.versions.includes(r.version) &&
        (type === "kek" || r.serverId === ctx.control?.serverId),
    ),
  );
}

export async function resealStep(
  ctx: IncidentContext,
  run: StepRunner,
  o: EradicateOptions,
): Promise<void> {
  await run.act("reseal", "reseal exposed files (new file keys)", async (prior) => {
    const scan = await scanPaths(o.paths);
    const targets = resealTargets(ctx, scan.files);
    // Planned before any file changes: after a crash the files done are found by their digests.
    const planned = (prior?.detail?.planned as { file: string; old: string }[] | undefined) ?? [];
    const plan = [
      ...planned,
      ...targets
        .filter((t) => !planned.some((p) => p.file === t.file))
        .map((t) => ({ file: t.file, old: t.headerDigest })),
    ];
    await run.note("reseal", { planned: plan });
    const r = await resealCampaign({
      files: targets.map((t) => t.file),
      journal: incidentPath(ctx.home, ctx.inc.id, ".reseal.jsonl"),
      target: { incident: ctx.inc.id },
      identities: o.identities,
      recipients: o.recipients,
      ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
      // The registry follows: each registered artifact gets the resealed file as its successor.
      ...(ctx.client ? { beforeCommit: successorRegistrar(ctx.client) } : {}),
    });
    const now = new Map(scan.files.map((f) => [f.file, f.headerDigest]));
    for (const p of plan) {
      const done = r.files.find((f) => f.file === p.file);
      if (done?.outcome === "resealed")
        record(ctx, {
          file: p.file,
          outcome: "resealed",
          oldHeaderDigest: p.old,
          newHeaderDigest: done.newHeaderDigest!,
        });
      else if (done)
        record(ctx, { file: p.file, outcome: "unreachable", error: done.error ?? "failed" });
      else if (now.get(p.file) !== p.old)
        // Not a target any more: an interrupted run of this step resealed it.
        record(ctx, {
          file: p.file,
          outcome: "resealed",
          oldHeaderDigest: p.old,
          newHeaderDigest: now.get(p.file) ?? "",
        });
    }
    return {
      detail: { resealed: r.resealed, failed: r.failed, resumed: r.resumed },
      ...(r.failed > 0 ? { incomplete: `${r.failed} file(s) could not be resealed` } : {}),
    };
  });
}

export async function rewrapStep(
  ctx: IncidentContext,
  run: StepRunner,
  o: EradicateOptions,
): Promise<void> {
  await run.act("rewrap", "rewrap the other files of the key to its new primary", async () => {
    const control = needControl(ctx);
    const scan = await scanPaths(o.paths);
    const primaries = new Map<string, number>();
    for (const c of ctx.inc.compromised) primaries.set(c.key, (await control.key(c.key)).primary);
    const stale = scan.files.filter((f) =>
      f.refs.some(
        (r) =>
          r.type === control.type &&
          primaries.has(r.key) &&
          r.version !== primaries.get(r.key) &&
          (r.type === "kek" || r.serverId === control.serverId),
      ),
    );
    if (stale.length === 0) return { detail: { rewrapped: 0 } };
    if (!o.keystore)
      return { detail: { rewrapped: 0, skipped: "no local keystore to run the campaign" } };
    const r = await rewrapToLatest(o.keystore, {
      files: stale.map((f) => f.file),
      journal: incidentPath(ctx.home, ctx.inc.id, ".rewrap.jsonl"),
      service: control.type === "service" ? ctx.client : null,
      // The registry follows each rewrapped service stanza (as a plain `rewrap` does).
      registry: control.type === "service" && ctx.client ? restanzaRegistrar(ctx.client) : null,
    });
    const failed = new Map(r.failures.map((f) => [f.file, f.error]));
    for (const f of stale) {
      const err = failed.get(f.file);
      record(
        ctx,
        err
          ? { file: f.file, outcome: "unreachable", error: err }
          : { file: f.file, outcome: "rewrapped", oldHeaderDigest: f.headerDigest },
      );
    }
    return {
      detail: { rewrapped: r.rewrapped, current: r.current, failed: r.failed },
      ...(r.failed > 0 ? { incomplete: `${r.failed} file(s) could not be rewrapped` } : {}),
    };
  });
}

/** Rescans: what is still on a compromised version (key scope) or on an exposed file key. */
export async function verifyStep(
  ctx: IncidentContext,
  run: StepRunner,
  paths: readonly string[],
): Promise<FileOutcome[]> {
  const id = `verify:${run.inc.actions.filter((a) => a.step === "eradicate" && a.id.startsWith("verify:")).length + 1}`;
  let left: FileOutcome[] = [];
  await run.act(id, "rescan: nothing left on compromised keys", async () => {
    const scan = await scanPaths(paths);
    left = resealTargets(ctx, scan.files).map((f) => ({
      file: f.file,
      outcome: "unreachable",
      error: "still on the compromised key",
    }));
    if (ctx.inc.scope.kind === "key")
      for (const f of scan.files)
        if (onCompromised(ctx, f) && !left.some((l) => l.file === f.file))
          left.push({
            file: f.file,
            outcome: "unreachable",
            error: "still on a compromised version",
          });
    // Rewrapped files: their new header digest, as the rescan reads it.
    const digests = new Map(scan.files.map((f) => [f.file, f.headerDigest]));
    ctx.inc.files = ctx.inc.files.map((f) =>
      f.outcome === "rewrapped" && !f.newHeaderDigest && digests.has(f.file)
        ? { ...f, newHeaderDigest: digests.get(f.file)! }
        : f,
    );
    // Earlier verdicts are replaced by this one.
    ctx.inc.files = ctx.inc.files.filter(
      (f) => f.outcome !== "unreachable" || left.some((l) => l.file === f.file),
    );
    for (const l of left) record(ctx, l);
    return { detail: { unreachable: left.map((l) => l.file) } };
  });
  return left;
}

export async function reenable(ctx: IncidentContext, run: StepRunner, on: boolean): Promise<void> {
  const control = needControl(ctx);
  for (const c of ctx.inc.compromised)
    for (const v of c.versions) {
      const n = run.inc.actions.filter(
        (a) =>
          a.step === "eradicate" &&
          a.id.startsWith(`${on ? "enable" : "redisable"}:${c.key}@${v}#`),
      ).length;
      await run.act(
        `${on ? "enable" : "redisable"}:${c.key}@${v}#${n + 1}`,
        `${on ? "enable" : "disable again"} ${c.key} v${v} ${on ? "to reseal its files (--reenable)" : "after resealing"}`,
        async () => {
          if (on) {
            const p = `/v1/keys/${encodeURIComponent(c.key)}/versions/${v}/enable`;
            const r = await ctx.client!.post(p, {});
            if (r.status !== 200) ctx.client!.refused(p, r);
          } else await control.disable(c.key, v);
          return {};
        },
      );
    }
}

/** One line per file in the record: the newest outcome replaces an older one. */
function record(ctx: IncidentContext, f: FileOutcome): void {
  const files = ctx.inc.files;
  const i = files.findIndex((x) => x.file === f.file);
  if (i >= 0 && f.outcome === "unreachable" && files[i]!.outcome === "resealed") return;
  if (i >= 0) files[i] = f;
  else files.push(f);
}
