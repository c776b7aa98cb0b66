/**
 * `tensorseal verify --require-signer PUBKEY SEALED...`: check each sealed model directory's
 * model.sig (or sealed file's FILE.sig) against the signer, the file set and every sealed digest,
 * with no decryption key
 * (integrations/provenance). Plaintext digests are checked when the model is opened.
 */
import type { OptionValues } from "commander";
import { isTensorSealError, type TensorSealError } from "../../format/errors.js";
import { isSealedModelDir } from "../../integrations/model-dir/index.js";
import {
  keyHint,
  loadSignerKey,
  verifySealedDir,
  verifySealedFile,
} from "../../integrations/provenance/index.js";
import { exitCodeFor } from "../exit-codes.js";
import { printJson } from "../options.js";
import { print } from "../output.js";

interface Verdict {
  file: string;
  ok: boolean;
  signer?: string;
  files?: number;
  code?: string;
  error?: string;
}

export async function verifySigned(dirs: string[], o: OptionValues): Promise<void> {
  const signer = loadSignerKey(o.requireSigner);
  const results: Verdict[] = [];
  let failure: TensorSealError | null = null;
  for (const dir of dirs) {
    try {
      let files = 1;
      if (isSealedModelDir(dir)) files = (await verifySealedDir(dir, signer)).files.length;
      else await verifySealedFile(dir, signer);
      results.push({ file: dir, ok: true, signer: keyHint(signer), files });
    } catch (e) {
      if (!isTensorSealError(e) || (dirs.length === 1 && !o.json)) throw e;
      failure ??= e;
      results.push({ file: dir, ok: false, code: e.code, error: e.message });
    }
  }
  if (o.json) printJson(results);
  else {
    for (const r of results) {
      print(
        r.ok
          ? `OK    ${r.file}: signed by the required key, ${r.files} file(s) bound`
          : `FAIL  ${r.error}`,
      );
    }
  }
  if (failure) process.exitCode = exitCodeFor(failure.code);
}
