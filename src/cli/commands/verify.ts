import type { Command } from "commander";
import { inspectFile, verifyFile } from "../../engine/index.js";
import { isTensorSealError, type TensorSealError } from "../../format/errors.js";
import { exitCodeFor } from "../exit-codes.js";
import { identitiesFor } from "../keys-context.js";
import { checkSealedInput, printJson } from "../options.js";
import { print } from "../output.js";
import { progressBar } from "../terminal.js";
import { identityOptions } from "./shared.js";

export function registerVerify(program: Command): void {
  identityOptions(
    program
      .command("verify")
      .description("authenticate header, commitment and every chunk; write nothing")
      .argument("<files...>", "sealed files")
      .option("--json", "print JSON: [{file, ok, code?, error?}] (also when a file fails)"),
  ).action(async (files: string[], o) => {
    const results: { file: string; ok: boolean; error?: string; code?: string }[] = [];
    let failure: TensorSealError | null = null;
    for (const [i, file] of files.entries()) {
      const label = files.length > 1 ? `verifying ${i + 1}/${files.length}` : "verifying";
      const bar = progressBar(label);
      try {
        checkSealedInput(file);
        const identities = await identitiesFor(await inspectFile(file), o);
        await verifyFile(file, { identities, onProgress: (d, t) => bar.update(d, t, file) });
        results.push({ file, ok: true });
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
    else
      for (const r of results)
        print(`${r.ok ? "OK  " : "FAIL"} ${r.file}${r.error ? `: ${r.error}` : ""}`);
    // The first failure's own exit code (5 tampered, 4 no key, 7 unreadable...).
    if (failure) process.exitCode = exitCodeFor(failure.code);
  });
}
