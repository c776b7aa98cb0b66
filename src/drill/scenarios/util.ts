/** Small helpers the scenarios share. */
import { verifyFile } from "../../engine/index.js";
import { isTensorSealError } from "../../format/errors.js";
import type { Identity } from "../../format/stanza.js";
import type { ServiceClient } from "../../keys/service/client.js";

/**
 * Whether these identities open (authenticate every chunk of) the sealed file. A refusal of
 * the format or a key provider is `false`; anything else (a bug, an I/O error) propagates.
 */
export async function opens(file: string, identities: readonly Identity[]): Promise<boolean> {
  try {
    await verifyFile(file, { identities, workers: 0 });
    return true;
  } catch (e) {
    if (isTensorSealError(e)) return false;
    throw e;
  }
}

/** An identity that answers every stanza with one known file key (a leaked one). */
export function knownFileKey(fileKey: Uint8Array): Identity {
  return { id: "leaked-file-key", unwrap: async () => Buffer.from(fileKey) };
}

/** POST and require 200: the answer's body. */
export async function ok200(
  c: ServiceClient,
  path: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const r = await c.post(path, body);
  if (r.status !== 200) c.refused(path, r);
  return r.body;
}

/** Polls `test` until it holds or `ms` pass; whether it held. */
export async function within(ms: number, test: () => Promise<boolean>): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await test()) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}
