/**
 * `seal FILE --sign KEY`: the plaintext digest is taken before sealing, the input must not
 * change meanwhile, and FILE.tseal.sig is written once the sealed file is in place
 * (integrations/provenance/file.ts).
 */
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { fail } from "../../format/errors.js";
import {
  digestPlain,
  loadSigningKey,
  signSealedFile,
} from "../../integrations/provenance/index.js";

export async function startSigning(
  keyfile: string,
  input: string,
  output: string,
  streaming: boolean,
): Promise<() => Promise<void>> {
  if (streaming) fail("E_USAGE", "--sign needs an input file and an output file (not - or a pipe)");
  const key = loadSigningKey(keyfile);
  const plain = await digestPlain(input);
  return async () => {
    // As seal-dir: size and mtime, not a third read of a large input.
    const now = await stat(input);
    if (now.size !== plain.size || now.mtimeMs !== plain.mtimeMs) {
      fail("E_IO", `${input} changed while it was being sealed: seal it again (not signed)`);
    }
    await signSealedFile(output, basename(input), plain, key);
  };
}
