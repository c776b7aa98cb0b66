import type { Command } from "commander";
import { inspectFile, verifyFile } from "../../engine/index.js";
import type { ParsedHeader } from "../../format/header.js";
import { describeStanza, leftoverMessage } from "../describe.js";
import { identitiesFor } from "../keys-context.js";
import { checkSealedInput, printJson } from "../options.js";
import { print } from "../output.js";
import { progressBar } from "../terminal.js";
import { formatTensorRows, tensorRows } from "./inspect-tensors.js";
import { identityOptions } from "./shared.js";

export function registerInspect(program: Command): void {
  identityOptions(
    program
      .command("inspect")
      .description("show the public header of a sealed file; with a key, verify all of it")
      .argument("<file>", "sealed file")
      .option("--verify", "also authenticate the whole file with the available keys")
      .option("--tensors", "list the tensors of a sealed safetensors file (needs a key)")
      .option("--json", "print JSON"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal inspect model.tseal\n  tensorseal inspect model.tseal --verify --json\n  tensorseal inspect model.safetensors.tseal --tensors -i partner.id",
    )
    .action(async (file: string, o) => {
      checkSealedInput(file);
      const header = await inspectFile(file);
      const info = headerInfo(header);
      const wantsVerify = o.verify || o.identity || o.passphrase || o.passphraseFile;
      const bar = progressBar("verifying");
      const verified = wantsVerify
        ? await verifyFile(file, {
            identities: await identitiesFor(header, o),
            onProgress: bar.update,
          }).finally(() => bar.done())
        : null;
      const tensors = o.tensors ? await tensorRows(file, await identitiesFor(header, o)) : null;
      if (o.json)
        return printJson({ ...info, verified: verified !== null, ...(tensors && { tensors }) });
      const lines = [
        `file:          ${file}`,
        `format:        tseal v1, suite ${header.descriptor.suite} (AES-256-GCM chunked, HKDF-SHA-512)`,
        `content type:  ${info.contentType}`,
        `plaintext:     ${info.plaintextLength ?? "unknown (sealed from a stream)"} bytes`,
        `chunk size:    ${info.chunkSize}`,
        `context:       ${JSON.stringify(info.context)}`,
        `labels:        ${JSON.stringify(info.labels)}`,
        `header:        generation ${info.generation}, slot ${info.activeSlot}`,
        ...(info.leftoverSlot ? [`WARNING:       ${leftoverMessage(header)}`] : []),
        `recipients:    ${info.stanzas.length}`,
        ...info.stanzas.map((s) => `  - ${s}`),
        `verified:      ${verified ? "yes, every chunk authenticated" : "no (pass --verify or a key)"}`,
        ...(tensors ? formatTensorRows(tensors) : []),
      ];
      for (const line of lines) print(line); // escaped: every field here is the file's to choose
    });
}

export function headerInfo(h: ParsedHeader) {
  return {
    contentType: h.descriptor.contentType,
    plaintextLength: h.descriptor.plaintextLength,
    chunkSize: h.descriptor.chunkSize,
    context: h.descriptor.context,
    labels: h.descriptor.labels,
    generation: h.generation,
    activeSlot: h.activeSlot,
    staleSlot: h.staleSlot,
    leftoverSlot: h.inactiveSlot.kind === "empty" ? null : h.inactiveSlot.kind,
    stanzas: h.stanzas.map(describeStanza),
  };
}
