import type { Command } from "commander";
import { inspectFile, printable, verifyFile } from "../../engine/index.js";
import { isTensorSealError } from "../../format/errors.js";
import type { ParsedHeader } from "../../format/header.js";
import { EXIT } from "../exit-codes.js";
import { identitiesFor } from "../keys-context.js";
import { printJson } from "../options.js";
import { identityOptions } from "./shared.js";

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

export function registerVerify(program: Command): void {
  identityOptions(
    program
      .command("verify")
      .description("authenticate header, commitment and every chunk; write nothing")
      .argument("<files...>", "sealed files")
      .option("--json", "print JSON"),
  )
    .addHelpText(
      "after",
      `\nExit ${EXIT.ok} when every file is authentic and clean, ${EXIT.authentication} when one is not authentic (or fails), ${EXIT.leftoverSlot} when all are\nauthentic but one still carries a header slot left by an interrupted rewrap (STALE): a\nrewrap of that file clears it.`,
    )
    .action(async (files: string[], o) => {
      const results: Verdict[] = [];
      for (const file of files) {
        try {
          const header = await inspectFile(file);
          await verifyFile(file, { identities: await identitiesFor(header, o) });
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
          if (!isTensorSealError(e) || files.length === 1) throw e;
          results.push({ file, ok: false, code: e.code, error: e.message });
        }
      }
      if (o.json) printJson(results);
      else for (const r of results) process.stdout.write(`${line(r)}\n`);
      if (results.some((r) => !r.ok)) process.exitCode = EXIT.authentication;
      else if (results.some((r) => r.leftoverSlot)) process.exitCode = EXIT.leftoverSlot;
    });
}

function line(r: Verdict): string {
  const name = printable(r.file);
  if (!r.ok) return `FAIL  ${name}: ${r.error}`;
  if (!r.leftoverSlot) return `OK    ${name}`;
  return `STALE ${name}: authentic, but ${r.warning}`;
}

/** Why a leftover slot matters and how to clear it (verify and inspect say the same). */
export function leftoverMessage(h: ParsedHeader): string {
  const slot = h.inactiveSlot;
  const what =
    slot.kind === "stale"
      ? `generation ${slot.generation}, the older recipient list of an interrupted rewrap`
      : "the damaged remains of an interrupted rewrap";
  return `the other header slot still holds ${what}, which anyone able to edit the file can make active again: clear it by rerunning the rewrap, or \`tensorseal rewrap --to-latest FILE\``;
}
