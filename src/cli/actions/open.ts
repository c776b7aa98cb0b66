/**
 * `tensorseal open FILE`: authenticate and decrypt a sealed file or stream (flags:
 * commands/open.ts).
 */
import type { OptionValues } from "commander";
import { openFile } from "../../engine/open-file.js";
import type { OpenResult } from "../../engine/options.js";
import { inspectFile } from "../../engine/sealed-file.js";
import { openStream } from "../../engine/stream.js";
import { fail, isTensorSealError, namingFile } from "../../format/errors.js";
import { refuseUnencrypted, SUITE_PUBLIC } from "../../format/public.js";
import { isObjectUrl } from "../../integrations/objstore/url.js";
import { leftoverMessage } from "../describe.js";
import { identitiesFor } from "../keys-context.js";
import { checkOutput, checkSealedInput, isStreamInput, parsePairs, printJson } from "../options.js";
import { say } from "../output.js";
import { runStream } from "../streams.js";
import { progressBar } from "../terminal.js";

export async function open(input: string, o: OptionValues): Promise<void> {
  if (isObjectUrl(input)) return (await import("./remote.js")).openRemote(input, o);
  checkSealedInput(input);
  const output: string = o.output ?? defaultOutput(input);
  checkOutput(output, o.force);
  const expectContext = parsePairs(o.expectContext, "--expect-context");
  if (output === "-" && o.json) fail("E_USAGE", "--json needs -o FILE: stdout is the plaintext");
  const signed = o.requireSigner
    ? await (await import("./open-signed.js")).checkSigned(o.requireSigner, input, output)
    : undefined;
  let result: OpenResult;
  const header = isStreamInput(input) ? null : await inspectFile(input);
  const requireEncrypted = Boolean(o.requireEncrypted);
  // Refused from the header alone, before any key is asked for (spec/FORMAT.md §2.5).
  if (header && requireEncrypted)
    await namingFile(input, async () =>
      refuseUnencrypted(header.descriptor.suite, "--require-encrypted asks for an encrypted one"),
    );
  if (isStreamInput(input) || output === "-") {
    // A stream's header is not known yet: with no key configured it may still be a public one.
    const identities = await identitiesFor(header, o).catch((e) => {
      if (header === null && !requireEncrypted && isTensorSealError(e, "E_NO_IDENTITY")) return [];
      throw e;
    });
    const open = () =>
      runStream(input, output, (r, w, inputOffset) =>
        openStream(r, w, { identities, expectContext, requireEncrypted, inputOffset }),
      );
    result = input === "-" ? await open() : await namingFile(input, open);
  } else {
    const identities = await identitiesFor(header, o);
    const bar = progressBar("opening");
    result = await openFile(input, output, {
      identities,
      expectContext,
      requireEncrypted,
      ...(bar.shown && { onProgress: bar.update }),
    }).finally(() => bar.done());
  }
  await signed?.();
  // A reader SHOULD say when a rewrap was interrupted (spec/FORMAT.md §2.3).
  if (header && header.inactiveSlot.kind !== "empty") {
    say(`warning: ${input}: ${leftoverMessage(header)}`);
  }
  // Say so when what was opened was never a secret (the header says it; spec/FORMAT.md §2.5).
  if (result.descriptor.suite === SUITE_PUBLIC && !o.json) {
    say(
      `note: ${input === "-" ? "the stream" : input} is a public file: integrity-checked, not encrypted (anyone can read or rewrite it; check its signature or directory manifest for authenticity)`,
    );
  }
  if (o.json) printJson({ output, ...result });
  else if (output !== "-") say(`opened ${input} -> ${output}`);
}

function defaultOutput(input: string): string {
  if (input === "-") return "-";
  if (input.endsWith(".tseal")) return input.slice(0, -".tseal".length);
  return fail("E_USAGE", `cannot derive an output name from ${input}: pass -o FILE`);
}
