import type { Command } from "commander";
import { inspectFile, verifyFile } from "../../engine/index.js";
import { isTensorSealError } from "../../format/errors.js";
import { identitiesFor } from "../keys-context.js";
import { printJson } from "../options.js";
import { identityOptions } from "./shared.js";

export function registerVerify(program: Command): void {
  identityOptions(
    program
      .command("verify")
      .description("authenticate header, commitment and every chunk; write nothing")
      .argument("<files...>", "sealed files")
      .option("--json", "print JSON"),
  ).action(async (files: string[], o) => {
    const results: { file: string; ok: boolean; error?: string; code?: string }[] = [];
    for (const file of files) {
      try {
        await verifyFile(file, { identities: await identitiesFor(await inspectFile(file), o) });
        results.push({ file, ok: true });
      } catch (e) {
        if (!isTensorSealError(e) || files.length === 1) throw e;
        results.push({ file, ok: false, code: e.code, error: e.message });
      }
    }
    if (o.json) printJson(results);
    else
      for (const r of results)
        process.stdout.write(
          `${r.ok ? "OK  " : "FAIL"} ${r.file}${r.error ? `: ${r.error}` : ""}\n`,
        );
    if (results.some((r) => !r.ok)) process.exitCode = 5;
  });
}
