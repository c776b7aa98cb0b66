/**
 * `tensorseal inspect FILE`: the public header, and with a key a verification (flags:
 * commands/inspect.ts).
 */

import type { OptionValues } from "commander";
import { inspectFile, inspectSource } from "../../engine/sealed-file.js";
import type { RandomSource } from "../../engine/source.js";
import type { ParsedHeader } from "../../format/header.js";
import { metadataOf } from "../../format/metadata.js";
import { isPublicSuite } from "../../format/public.js";
import { isObjectUrl, redactUrl } from "../../integrations/objstore/url.js";
import { describeStanza, leftoverMessage } from "../describe.js";
import { checkSealedInput, printJson } from "../options.js";
import { print } from "../output.js";
import { progressBar } from "../terminal.js";

export async function inspect(given: string, o: OptionValues): Promise<void> {
  if (!isObjectUrl(given)) {
    checkSealedInput(given);
    return inspectFrom(given, null, o);
  }
  // A URL: ranged reads of the header (and, with a key, of the chunks asked for) only.
  const { withRemote } = await import("./remote.js");
  return withRemote(given, (src) => inspectFrom(redactUrl(given), src, o));
}

async function inspectFrom(file: string, src: RandomSource | null, o: OptionValues) {
  const header = src ? await inspectSource(src) : await inspectFile(file);
  const info = headerInfo(header);
  const wantsVerify = o.verify || o.identity || o.passphrase || o.passphraseFile;
  const bar = progressBar("verifying");
  // Keys, the verifier and the safetensors reader load only when asked for: a plain inspect
  // reads the public header and nothing else.
  const { identitiesFor } = wantsVerify || o.tensors ? await import("../keys-context.js") : {};
  const verifyOpts = async () => ({
    identities: await identitiesFor!(header, o),
    onProgress: bar.update,
  });
  const verified = wantsVerify
    ? await (src
        ? (await import("../../engine/open-source.js")).verifySource(src, await verifyOpts())
        : (await import("../../engine/open-file.js")).verifyFile(file, await verifyOpts())
      ).finally(() => bar.done())
    : null;
  const tabulate = o.tensors ? await import("./inspect-tensors.js") : null;
  const tensors = tabulate
    ? await tabulate.tensorRows(src ?? file, await identitiesFor!(header, o))
    : null;
  if (o.json)
    return printJson({
      ...info,
      encrypted: !isPublicSuite(header.descriptor.suite),
      verified: verified !== null,
      ...(tensors && { tensors }),
    });
  const lines = [
    `file:          ${file}`,
    isPublicSuite(header.descriptor.suite)
      ? `format:        tseal v1, suite 2 (public: integrity only, NOT encrypted; GMAC chunk tags, key published)`
      : `format:        tseal v1, suite ${header.descriptor.suite} (AES-256-GCM chunked, HKDF-SHA-512)`,
    `content type:  ${info.contentType}`,
    `plaintext:     ${info.plaintextLength ?? "unknown (sealed from a stream)"} bytes`,
    `chunk size:    ${info.chunkSize}`,
    `context:       ${JSON.stringify(info.context)}`,
    `labels:        ${JSON.stringify(info.labels)}`,
    `tier:          ${info.tier ?? "none"}`,
    ...(info.purpose !== null ? [`purpose:       ${info.purpose}`] : []),
    ...(info.owner !== null ? [`owner:         ${info.owner}`] : []),
    `header:        generation ${info.generation}, slot ${info.activeSlot}`,
    ...(info.leftoverSlot ? [`WARNING:       ${leftoverMessage(header)}`] : []),
    `recipients:    ${info.stanzas.length}`,
    ...info.stanzas.map((s) => `  - ${s}`),
    `verified:      ${verified ? "yes, every chunk authenticated" : "no (pass --verify or a key)"}`,
    ...(tabulate && tensors ? tabulate.formatTensorRows(tensors) : []),
  ];
  for (const line of lines) print(line); // escaped: every field here is the file's to choose
}

export function headerInfo(h: ParsedHeader) {
  const meta = metadataOf(h.descriptor.labels);
  return {
    // Authenticated with the header (spec section 2.2.1); also among the labels.
    tier: meta.tier ?? null,
    purpose: meta.purpose ?? null,
    owner: meta.owner ?? null,
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
