/**
 * `open FILE --require-signer PUBKEY`: FILE.sig must be the signer's, and FILE the signed sealed
 * file, before anything is decrypted; the opened plaintext must then be the signed one, or it is
 * removed (integrations/provenance/file.ts).
 */
import { fail } from "../../format/errors.js";
import {
  checkOpenedFile,
  loadSignerKey,
  verifySealedFile,
} from "../../integrations/provenance/index.js";
import { isStreamInput } from "../options.js";

export async function checkSigned(
  pubkey: string,
  input: string,
  output: string,
): Promise<() => Promise<void>> {
  if (isStreamInput(input) || output === "-") {
    fail("E_USAGE", "--require-signer needs a sealed file and an output file (not - or a pipe)");
  }
  const binding = await verifySealedFile(input, loadSignerKey(pubkey));
  return () => checkOpenedFile(output, binding);
}
