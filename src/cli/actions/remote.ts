/**
 * The URL side of `open`, `verify` and `inspect`: a sealed file read from s3:// or https://
 * (integrations/objstore) with ranged, ETag-pinned reads. Loaded only when an argument is a
 * URL, so local commands never load the AWS SDK. Only the redacted URL (no credentials, no
 * query: a presigned URL's signature lives there) is ever printed.
 */
import type { OptionValues } from "commander";
import { openSource, verifySource } from "../../engine/open-source.js";
import { inspectSource } from "../../engine/sealed-file.js";
import type { RandomSource } from "../../engine/source.js";
import { fail } from "../../format/errors.js";
import type { ParsedHeader } from "../../format/header.js";
import { refuseUnencrypted } from "../../format/public.js";
import { openObjectSource } from "../../integrations/objstore/index.js";
import { leftoverMessage } from "../describe.js";
import { identitiesFor } from "../keys-context.js";
import { checkOutput, parsePairs, printJson } from "../options.js";
import { say } from "../output.js";
import { progressBar } from "../terminal.js";

export async function withRemote<T>(
  url: string,
  fn: (src: RandomSource) => Promise<T>,
): Promise<T> {
  const src = await openObjectSource(url);
  try {
    return await fn(src);
  } finally {
    await src.close();
  }
}

export async function openRemote(url: string, o: OptionValues): Promise<void> {
  const output: string =
    o.output ?? fail("E_USAGE", "opening a URL needs -o FILE (or -o - for stdout)");
  checkOutput(output, o.force);
  const expectContext = parsePairs(o.expectContext, "--expect-context");
  if (output === "-" && o.json) fail("E_USAGE", "--json needs -o FILE: stdout is the plaintext");
  await withRemote(url, async (src) => {
    const header = await inspectSource(src);
    const identities = await identitiesFor(header, o);
    const bar = progressBar("opening");
    const result = await openSource(src, output === "-" ? process.stdout : output, {
      identities,
      expectContext,
      onProgress: bar.update,
    }).finally(() => bar.done());
    if (header.inactiveSlot.kind !== "empty")
      say(`warning: ${src.name}: ${leftoverMessage(header)}`);
    if (o.json) printJson({ input: src.name, output, ...result });
    else if (output !== "-") say(`opened ${src.name} -> ${output}`);
  });
}

/** verify of one URL: the header (for its leftover-slot verdict) once every chunk authenticated. */
export function verifyRemote(
  url: string,
  o: OptionValues,
  onProgress: (done: number, total: number) => void,
): Promise<ParsedHeader> {
  return withRemote(url, async (src) => {
    const header = await inspectSource(src);
    if (o.requireEncrypted)
      refuseUnencrypted(header.descriptor.suite, "--require-encrypted asks for an encrypted one");
    await verifySource(src, { identities: await identitiesFor(header, o), onProgress });
    return header;
  });
}
