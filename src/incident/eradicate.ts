/**
 * eradicate: make the compromise worthless for current files.
 *   1. rotate each compromised key whose primary is compromised (contain usually did);
 *   2. reseal the exposed files (new file key: what was released opens nothing new);
 *   3. rewrap the other files of the key to its new primary (key scope);
 *   4. raise min_decryption_version above the compromised versions (key scope);
 *   5. rescan: a file still on a compromised version, or an exposed file still on its old file
 *      key, is unreachable (listed; nothing is destroyed while there is one);
 *   6. schedule destruction of the compromised versions (key service under dual control: an
 *      approval request; the step waits for it and a rerun finishes it).
 * Each is an action of the journal; reseal and rewrap are the resumable campaigns with their
 * journals beside the record, so a rerun after a crash finishes the work without redoing it.
 */
import type { ParsedHeader } from "../format/header.js";
import type { Identity, Recipient } from "../format/stanza.js";
import type { Keystore } from "../keys/keystore.js";
import type { IncidentContext } from "./context.js";
import { needControl } from "./context.js";
import { reenable, resealStep, rewrapStep, verifyStep } from "./eradicate-steps.js";
import { StepRunner } from "./journal.js";
import type { FileOutcome } from "./types.js";

export interface EradicateOptions {
  readonly paths: readonly string[];
  /** Keys that open a file for resealing (the keystore's eradicate identity among them). */
  readonly identities: (header: ParsedHeader) => Promise<readonly Identity[]>;
  /** The new file's recipients: the file's own, re-created (cli/reseal-recipients). */
  readonly recipients: (header: ParsedHeader) => Promise<readonly Recipient[]>;
  /** For rewrapping to the latest versions (kek and service stanzas). */
  readonly keystore: Keystore | null;
  readonly destroyDays: number;
  /** Key service key scope: enable the compromised versions while resealing (recorded). */
  readonly reenable?: boolean;
  readonly concurrency?: number;
}

export interface EradicateResult {
  readonly waiting: boolean;
  readonly unreachable: FileOutcome[];
}

export async function eradicate(
  ctx: IncidentContext,
  o: EradicateOptions,
): Promise<EradicateResult> {
  const { inc } = ctx;
  const run = new StepRunner(ctx.home, inc, "eradicate", ctx.now);
  const keyScope = inc.scope.kind === "key";
  const control = keyScope ? needControl(ctx) : ctx.control;
  for (const c of keyScope ? inc.compromised : []) {
    await run.act(`rotate:${c.key}`, `rotate ${c.key} if its primary is compromised`, async () => {
      const k = await control!.key(c.key);
      if (!c.versions.includes(k.primary))
        return { detail: { primary: k.primary, rotated: false } };
      return { detail: { primary: await control!.rotate(c.key), rotated: true } };
    });
  }
  const reopened = keyScope && o.reenable === true && control?.type === "service";
  try {
    if (reopened) await reenable(ctx, run, true);
    await resealStep(ctx, run, o);
    if (keyScope) await rewrapStep(ctx, run, o);
  } finally {
    if (reopened) await reenable(ctx, run, false);
  }
  const unreachable = await verifyStep(ctx, run, o.paths);
  for (const c of keyScope && unreachable.length === 0 ? inc.compromised : []) {
    const min = Math.max(...c.versions) + 1;
    await run.act(
      `min-decryption:${c.key}`,
      `raise min_decryption_version of ${c.key} to ${min}`,
      async () => {
        await control!.setMinDecryption(c.key, min);
        return { detail: { minDecryptionVersion: (await control!.key(c.key)).minDecryption } };
      },
    );
  }
  let waiting = false;
  // Nothing is destroyed while a file still needs a compromised version: a rerun decides again.
  for (const c of keyScope && unreachable.length === 0 ? inc.compromised : []) {
    for (const v of c.versions) {
      const out = await run.act(
        `destroy:${c.key}@${v}`,
        `schedule destruction of ${c.key} v${v}`,
        async (prior) => {
          if (prior?.approval && prior.state !== "failed")
            return control!.approval(prior.approval.id);
          return control!.scheduleDestroy(c.key, v, o.destroyDays);
        },
      );
      waiting ||= out.waiting === true;
    }
  }
  if (!waiting && unreachable.length === 0) {
    inc.state = "eradicated";
    inc.times.eradicated ??= ctx.now().toISOString();
  }
  await run.save();
  return { waiting, unreachable };
}
