/**
 * `tensorseal verify FILES`: authenticate every file, write nothing (flags: commands/verify.ts).
 */
import type { OptionValues } from "commander";
import { inspectFile, verifyFile } from "../../engine/index.js";
import { isTensorSealError, namingFile, type TensorSealError } from "../../format/errors.js";
import { refuseUnencrypted } from "../../format/public.js";
import { isObjectUrl, redactUrl } from "../../integrations/objstore/url.js";
import { leftoverMessage } from "../describe.js";
import { EXIT, exitCodeFor } from "../exit-codes.js";
import { identitiesFor } from "../keys-context.js";
import { checkSealedInput, printJson } from "../options.js";
import { print } from "../output.js";
import { progressBar } from "../terminal.js";

interface Verdict {
  file: string;
  ok: boolean;
  /** Authentic, but the other header slot holds a leftover of an interrupted rewrap. */
  leftoverSlot?: "stale" | "damaged";
  /** What the leftover means and how to clear it. */
  warning?: string;
  error?: string;
  code?: string;
}

export async function verify(files: string[], o: OptionValues): Promise<void> {
  if (o.requireSigner) return (await import("./verify-signed.js")).verifySigned(files, o);
  const results: Verdict[] = [];
  let failure: TensorSealError | null = null;
  for (const [i, given] of files.entries()) {
    const label = files.length > 1 ? `verifying ${i + 1}/${files.length}` : "verifying";
    const bar = progressBar(label);
    // A URL is shown, and named by errors, without credentials or query (objstore/url.ts).
    const remote = isObjectUrl(given);
    const file = remote ? redactUrl(given) : given;
    try {
      let header: Awaited<ReturnType<typeof inspectFile>>;
      if (remote) {
        const { verifyRemote } = await import("./remote.js");
        header = await verifyRemote(given, o, (d, t) => bar.update(d, t, file));
      } else {
        checkSealedInput(file);
        header = await inspectFile(file);
        const parsed = header;
        // Refused from the header alone, before any key is asked for (spec/FORMAT.md §2.5).
        if (o.requireEncrypted)
          await namingFile(file, async () =>
            refuseUnencrypted(
              parsed.descriptor.suite,
              "--require-encrypted asks for an encrypted one",
            ),
          );
        const identities = await identitiesFor(header, o);
        await verifyFile(file, { identities, onProgress: (d, t) => bar.update(d, t, file) });
      }
      const leftover = header.inactiveSlot.kind;
      results.push({
        file,
        ok: true,
        ...(leftover !== "empty" && {
          leftoverSlot: leftover,
          warning: leftoverMessage(header),
        }),
      });
    } catch (e) {
      // One file alone fails as any command does; in a list, the others are still checked.
      if (!isTensorSealError(e) || (files.length === 1 && !o.json)) throw e;
      failure ??= e;
      results.push({
        file,
        ok: false,
        code: e.code,
        error: e.file === file ? e.detail : e.message,
      });
    } finally {
      bar.done();
    }
  }
  if (o.json) printJson(results);
  else for (const r of results) print(line(r));
  // The first failure's own exit code (5 tampered, 4 no key, 7 unreadable...) wins.
  if (failure) process.exitCode = exitCodeFor(failure.code);
  else if (results.some((r) => r.leftoverSlot)) process.exitCode = EXIT.leftoverSlot;
}

function line(r: Verdict): string {
  if (!r.ok) return `FAIL  ${r.file}: ${r.error}`;
  if (!r.leftoverSlot) return `OK    ${r.file}`;
  return `STALE ${r.file}: authentic, but ${r.warning}`;
}
