/**
 * The floor under a `cat F | tensorseal … | cat` row of bench/peers.ts, printed next to it
 * (issue 11's pipes goal, ">= 0.8x of cat | cat | cat").
 *
 * Why a floor: the three-process pipeline copies every byte through the same two pipes as
 * `cat | cat | cat` (the outer cats are the same; the middle process reads and writes every
 * byte, as the middle cat does) and, in the middle, also runs the cipher. So its CPU is at least
 * cat | cat | cat's plus the runtime's cipher CPU for the bytes (bench/cipher-cpu.ts, data in
 * cache: the least it can be). On this machine's two cores, that work cannot end before
 * CPU / 2 seconds; and if it keeps the cores no busier than cat | cat | cat's own run did
 * (CPU / wall of that run), not before CPU / that. Compared against cat | cat | cat's fastest
 * run, the run the goal is hardest against.
 */
import { execFileSync } from "node:child_process";

export interface Timed {
  seconds: number;
  /** User + system seconds of the whole pipeline, or null without GNU time. */
  cpu: number | null;
}

/** The least CPU seconds the cipher of `mib` MiB costs under `node` (best of three runs). */
export function cipherSeconds(node: string, script: string, mib: number): number {
  const runs = Array.from({ length: 3 }, () => {
    const out = execFileSync(node, [script, String(mib)], { encoding: "utf8" });
    return (JSON.parse(out) as { cpuSeconds: number }).cpuSeconds;
  });
  return Math.min(...runs);
}

const fastest = (xs: Timed[]) => xs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
const f2 = (x: number) => x.toFixed(2);

/**
 * The floor lines for one pipe row: `cat` is cat | cat | cat's samples; each subject brings its
 * samples and its runtime's cipher seconds. Empty without CPU figures.
 */
export function pipeFloorLines(
  cat: Timed[],
  subjects: { name: string; samples: Timed[]; cipherSeconds: number }[],
): string[] {
  const base = fastest(cat);
  if (base.cpu === null) return [];
  const busy = base.cpu / base.seconds;
  const lines = [
    `  floor against cat | cat | cat's fastest run (${f2(base.seconds)} s, ${f2(base.cpu)} s CPU, ${f2(busy)} cores busy):`,
  ];
  for (const s of subjects) {
    const work = base.cpu + s.cipherSeconds;
    const atBusy = work / busy;
    const allCores = work / 2;
    const own = fastest(s.samples);
    const ownBusy = own.cpu === null ? "" : ` at ${f2(own.cpu / own.seconds)} cores busy`;
    lines.push(
      `    ${s.name}: >= ${f2(base.cpu)} + ${f2(s.cipherSeconds)} s of cipher = ${f2(work)} s CPU -> >= ${f2(atBusy)} s at ${f2(busy)} cores busy (at most ${f2(base.seconds / atBusy)}x), >= ${f2(allCores)} s with both cores busy throughout (at most ${f2(base.seconds / allCores)}x); its fastest run ${f2(own.seconds)} s (${f2(base.seconds / own.seconds)}x)${ownBusy}`,
    );
  }
  return lines;
}
