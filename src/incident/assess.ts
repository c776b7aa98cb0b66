/**
 * assess: who received which file keys in the window, and which files are therefore
 *   exposed   its file key must be assumed known: released (audit) to the scope, an artifact
 *             incident's own artifact, or, for the local keystore (which keeps no audit of
 *             releases), any file wrapped under a compromised version;
 *   at-risk   wrapped under a compromised key version, with no release of it recorded.
 * Files are the sealed files under PATHS (found by their magic bytes); artifacts of the key
 * service's registry are matched to them by location (`seal --register` records the path).
 */
import { releasesFor } from "./audit.js";
import { type IncidentContext, needService } from "./context.js";
import { type ScannedFile, scanPaths } from "./files.js";
import { StepRunner } from "./journal.js";
import type { AssessedFile, Assessment, Release } from "./types.js";

export interface AssessOptions {
  readonly paths: readonly string[];
  readonly since?: string;
  /** key scope on the key service: treat at-risk files as exposed (reseal all of them). */
  readonly resealAll?: boolean;
}

export async function assess(ctx: IncidentContext, o: AssessOptions): Promise<Assessment> {
  const { inc } = ctx;
  const run = new StepRunner(ctx.home, inc, "assess", ctx.now);
  // Assessing is reading: it runs again each time (a later window, more paths), recorded once per run.
  const id = `assess:${inc.actions.filter((a) => a.step === "assess").length + 1}`;
  let result: Assessment | undefined;
  await run.act(
    id,
    `assess ${o.paths.length} path(s)${o.since ? ` since ${o.since}` : ""}`,
    async () => {
      const versions = inc.compromised.flatMap((c) => c.versions);
      const releases = ctx.client
        ? await releasesFor(ctx.client, inc.scope, versions, o.since)
        : [];
      const locations = ctx.client
        ? await artifactLocations(ctx, releases)
        : new Map<string, Located>();
      const scan = await scanPaths(o.paths);
      const files: AssessedFile[] = [];
      for (const f of scan.files) {
        const a = classify(ctx, f, locations, o.resealAll === true);
        if (a) files.push(a);
      }
      result = {
        at: ctx.now().toISOString(),
        ...(o.since ? { since: o.since } : {}),
        files,
        releases,
        principals: uniq(releases.map((r) => r.principal)),
        endpoints: uniq(releases.map((r) => r.source)),
        artifacts: uniq(releases.flatMap((r) => (r.artifact ? [r.artifact] : []))),
        keys: keysOf(releases),
      };
      return {
        detail: {
          exposed: files.filter((f) => f.class === "exposed").length,
          atRisk: files.filter((f) => f.class === "at-risk").length,
          releases: releases.length,
          unreadable: scan.unreadable.length,
        },
      };
    },
  );
  inc.assessment = result!;
  inc.times.assessed = result!.at;
  if (inc.state === "open" || inc.state === "contained") inc.state = "assessed";
  await run.save();
  return result!;
}

function classify(
  ctx: IncidentContext,
  f: ScannedFile,
  locations: Map<string, Located>,
  resealAll: boolean,
): AssessedFile | null {
  const { inc } = ctx;
  const at = locations.get(f.real) ?? locations.get(f.file);
  // A file resealed since (registered as a successor with this very header) is not the one
  // whose key was released: the lineage says so.
  const released = at && !at.resealedAs.has(f.headerDigest) ? at.id : undefined;
  const base = { file: f.file, headerDigest: f.headerDigest };
  if (inc.scope.kind === "key") {
    const type = ctx.control?.type ?? "kek";
    for (const c of inc.compromised) {
      const ref = f.refs.find(
        (r) =>
          r.type === type &&
          r.key === c.key &&
          c.versions.includes(r.version) &&
          (type === "kek" || r.serverId === ctx.control?.serverId),
      );
      if (!ref) continue;
      const at = { ...base, key: ref.key, version: ref.version };
      if (type === "kek")
        return {
          ...at,
          class: "exposed",
          why: "under a compromised version of a local key (no release audit)",
        };
      if (released !== undefined)
        return {
          ...at,
          class: "exposed",
          why: "its file key was released in the window",
          artifact: released,
        };
      if (resealAll)
        return { ...at, class: "exposed", why: "under a compromised version (--reseal-all)" };
      return { ...at, class: "at-risk", why: "under a compromised version; no release recorded" };
    }
    return null;
  }
  const ref =
    f.refs.find((r) => r.type === "service" && r.serverId === ctx.control?.serverId) ?? f.refs[0];
  if (released === undefined || !ref) return null;
  return {
    ...base,
    key: ref.key,
    version: ref.version,
    class: "exposed",
    why:
      inc.scope.kind === "artifact"
        ? "the incident's artifact"
        : "its file key was released to the scope",
    artifact: released,
  };
}

/** A released artifact at a location, and the header digests of the reseals that replaced it. */
interface Located {
  readonly id: string;
  readonly resealedAs: ReadonlySet<string>;
}

/** Most successors followed from one artifact (a reseal per incident is the usual count). */
const LINEAGE_MAX = 16;

/** Real path -> artifact id, for the artifacts released (and an artifact incident's own). */
async function artifactLocations(
  ctx: IncidentContext,
  releases: readonly Release[],
): Promise<Map<string, Located>> {
  const client = needService(ctx, "assessing releases");
  const ids = new Set(releases.flatMap((r) => (r.artifact ? [r.artifact] : [])));
  if (ctx.inc.scope.kind === "artifact") ids.add(ctx.inc.scope.value);
  const show = async (id: string) => {
    const path = `/v1/artifacts/${encodeURIComponent(id)}`;
    const r = await client.get(path);
    if (r.status === 404) return null;
    if (r.status !== 200) client.refused(path, r);
    return r.body as { location?: unknown; supersededBy?: unknown; headerDigest?: unknown };
  };
  const out = new Map<string, Located>();
  for (const id of ids) {
    const a = await show(id);
    if (typeof a?.location !== "string") continue;
    // Follow the lineage (`reseal` registers successors): their headers are not exposed.
    const resealedAs = new Set<string>();
    let next = a.supersededBy;
    for (let i = 0; typeof next === "string" && i < LINEAGE_MAX; i++) {
      const s = await show(next);
      if (typeof s?.headerDigest === "string") resealedAs.add(s.headerDigest);
      next = s?.supersededBy;
    }
    out.set(a.location, { id, resealedAs });
  }
  return out;
}

function uniq(xs: readonly string[]): string[] {
  return [...new Set(xs)].sort();
}

function keysOf(releases: readonly Release[]): { key: string; versions: number[] }[] {
  const m = new Map<string, Set<number>>();
  for (const r of releases) {
    if (!r.key) continue;
    const s = m.get(r.key) ?? new Set<number>();
    if (r.version !== undefined) s.add(r.version);
    m.set(r.key, s);
  }
  return [...m].map(([key, v]) => ({ key, versions: [...v].sort((a, b) => a - b) }));
}
