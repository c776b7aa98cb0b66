/**
 * Finding the file key: each identity is offered each stanza in order; the first key it yields
 * must authenticate the header, otherwise the file is rejected (no fallback to other stanzas,
 * so a spliced stanza can never be "tried past").
 *
 * An identity may also refuse a stanza by policy (E_KEY_STATE: the key version exists but is
 * disabled, destroyed or below its minimum). A refusal yields no key, so it is treated like
 * "not mine" for the search — a later usable stanza still opens the file — and is reported only
 * when no stanza yields a key. Any other error (a stanza that is mine but does not open) stops
 * the search at once.
 */
import { fail, isTensorSealError, type TensorSealError } from "./errors.js";
import { type ParsedHeader, verifyHeader } from "./header.js";
import { isPublicSuite, publishedFileKey, refuseUnencrypted } from "./public.js";
import type { Identity, Stanza } from "./stanza.js";

export interface UnlockPolicy {
  /** Refuse a public (integrity-only) file with E_NOT_ENCRYPTED (spec §2.5). */
  readonly requireEncrypted?: boolean | undefined;
}

export async function unlockFileKey(
  header: ParsedHeader,
  identities: readonly Identity[],
  policy: UnlockPolicy = {},
): Promise<Buffer> {
  if (isPublicSuite(header.descriptor.suite)) {
    // Suite 2: the key is published; no identity is asked. The header MAC still has to check,
    // so a damaged header (or a key edited in it) fails here, before the payload is read.
    if (policy.requireEncrypted) refuseUnencrypted(header.descriptor.suite);
    return verified(header, publishedFileKey(header.stanzas));
  }
  if (identities.length === 0)
    fail("E_NO_IDENTITY", "no key given: pass a key, identity or passphrase");
  const refused: TensorSealError[] = [];
  for (const stanza of header.stanzas) {
    for (const identity of identities) {
      const fileKey = await offer(identity, stanza, refused);
      if (fileKey !== null) return verified(header, fileKey);
    }
  }
  if (refused.length > 0) {
    const [first] = refused;
    if (refused.length === 1) throw first;
    return fail("E_KEY_STATE", refused.map((e) => e.message).join("; "), first);
  }
  const types = [...new Set(header.stanzas.map((s) => s.type))].join(", ");
  return fail(
    "E_NO_IDENTITY",
    `none of the ${header.stanzas.length} recipient stanzas (${types}) matches the keys given (${identities
      .map((i) => i.id)
      .join(", ")})`,
  );
}

/** `fileKey` once the header's MAC checks under it; otherwise it is wiped and the error thrown. */
function verified(header: ParsedHeader, fileKey: Buffer): Buffer {
  try {
    verifyHeader(header, fileKey);
  } catch (e) {
    fileKey.fill(0);
    throw e;
  }
  return fileKey;
}

/** The identity's answer; a policy refusal is recorded and counts as no key. */
async function offer(
  identity: Identity,
  stanza: Stanza,
  refused: TensorSealError[],
): Promise<Buffer | null> {
  try {
    return await identity.unwrap(stanza);
  } catch (e) {
    if (!isTensorSealError(e, "E_KEY_STATE")) throw e;
    refused.push(e);
    return null;
  }
}
