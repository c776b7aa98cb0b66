/** Time-based checkpoints (--checkpoint-interval) and external anchoring (--checkpoint-anchor*). */
import { open } from "node:fs/promises";
import { fail } from "../../../format/errors.js";
import { type AnchorOptions, checkAnchorUrl } from "../../../service/index.js";
import type { ServeFlags } from "../../commands/serve/flags.js";
import { intFlag } from "../../commands/service-shared.js";

export interface CheckpointSettings {
  readonly checkpointIntervalS: number;
  /** Absent when neither an anchor file nor an anchor URL is given. */
  readonly checkpointAnchor?: AnchorOptions;
}

export function checkpointSettings(o: ServeFlags): CheckpointSettings {
  const interval = intFlag(
    "--checkpoint-interval",
    o.checkpointInterval,
    0,
    86_400,
    " seconds (0 = off)",
  );
  if (o.checkpointAnchorUrl) {
    try {
      checkAnchorUrl(o.checkpointAnchorUrl);
    } catch (e) {
      fail("E_USAGE", `--checkpoint-anchor-url: ${(e as Error).message}`);
    }
  }
  return {
    checkpointIntervalS: interval,
    ...(o.checkpointAnchor || o.checkpointAnchorUrl
      ? {
          checkpointAnchor: {
            ...(o.checkpointAnchor ? { file: o.checkpointAnchor } : {}),
            ...(o.checkpointAnchorUrl ? { url: o.checkpointAnchorUrl } : {}),
          },
        }
      : {}),
  };
}

/**
 * "" when the anchor file can be appended to, else a warning for the summary line. Not fatal: a
 * failed anchor write is logged and counted, the checkpoint stays in the database. Opening for
 * append (as each write does) is the honest test; it writes nothing.
 */
export async function anchorFileProblem(file: string): Promise<string> {
  return open(file, "a", 0o644).then(
    (fh) => fh.close().then(() => ""),
    (e: Error) => ` (WARNING: cannot append to it: ${e.message}; anchoring will fail)`,
  );
}
