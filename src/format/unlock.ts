/**
 * Finding the file key: each identity is offered each stanza in order; the first key it yields
 * must authenticate the header, otherwise the file is rejected (no fallback to other stanzas,
 * so a spliced stanza can never be "tried past").
 */
import { fail } from "./errors.js";
import { type ParsedHeader, verifyHeader } from "./header.js";
import type { Identity } from "./stanza.js";

export async function unlockFileKey(
  header: ParsedHeader,
  identities: readonly Identity[],
): Promise<Buffer> {
  if (identities.length === 0)
    fail("E_NO_IDENTITY", "no key given: pass a key, identity or passphrase");
  for (const stanza of header.stanzas) {
    for (const identity of identities) {
      const fileKey = await identity.unwrap(stanza);
      if (fileKey === null) continue;
      try {
        verifyHeader(header, fileKey);
      } catch (e) {
        fileKey.fill(0);
        throw e;
      }
      return fileKey;
    }
  }
  const types = [...new Set(header.stanzas.map((s) => s.type))].join(", ");
  return fail(
    "E_NO_IDENTITY",
    `none of the ${header.stanzas.length} recipient stanzas (${types}) matches the keys given (${identities
      .map((i) => i.id)
      .join(", ")})`,
  );
}
