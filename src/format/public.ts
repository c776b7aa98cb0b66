/**
 * Integrity-only files (spec/FORMAT.md §2.5, the `public` tier): readable by anyone, with no
 * recipient key. The file key is published in the header's only stanza (`public`), so the header
 * MAC, the commitment and the chunk tags are keyed checksums that anyone can recompute: they
 * detect corruption, truncation, reordering and mixing, and bind the bytes to the descriptor, but
 * authenticity against someone who can replace the whole file comes from outside the file (the
 * sealed directory manifest's SHA-256, a provenance signature). The suite, which says whether a
 * file is encrypted, is descriptor bytes: a reader always knows it from the authenticated header
 * and refuses a public file where the caller requires encryption (E_NOT_ENCRYPTED).
 */
import { fail } from "./errors.js";
import { FILE_KEY_SIZE } from "./filekey.js";
import type { Recipient, Stanza } from "./stanza.js";

export const SUITE_AEAD = 1;
export const SUITE_PUBLIC = 2;
export const PUBLIC_STANZA_TYPE = "public";
export const PUBLIC_TIER = "public";

/** The recipient of a public file: "wraps" the file key by publishing it. */
export function publicRecipient(): Recipient {
  return {
    id: "public",
    wrap: async (fileKey) => {
      if (fileKey.length !== FILE_KEY_SIZE) fail("E_KEY", "file key must be 32 bytes");
      return { type: PUBLIC_STANZA_TYPE, fields: [Buffer.from(fileKey)] };
    },
    matches: (s) => s.type === PUBLIC_STANZA_TYPE,
  };
}

/**
 * The stanza rules of §2.5: a suite-2 slot holds exactly one `public` stanza with a 32-byte
 * field; a suite-1 slot holds none (a published key next to real recipients would make an
 * "encrypted" file readable by anyone). `code` is E_MALFORMED for readers, E_USAGE for writers.
 */
export function checkSuiteStanzas(
  suite: number,
  stanzas: readonly Stanza[],
  where: string,
  code: "E_MALFORMED" | "E_USAGE" = "E_MALFORMED",
): void {
  const published = stanzas.filter((s) => s.type === PUBLIC_STANZA_TYPE);
  if (suite === SUITE_PUBLIC) {
    const only = stanzas[0];
    if (stanzas.length !== 1 || !only || only.type !== PUBLIC_STANZA_TYPE) {
      fail(code, `${where}: a public (integrity-only) file holds exactly one public stanza`);
    }
    if (only.fields.length !== 1 || only.fields[0]!.length !== FILE_KEY_SIZE) {
      fail(code, `${where}: a public stanza holds one 32-byte field`);
    }
  } else if (published.length > 0) {
    fail(code, `${where}: an encrypted file must not hold a public stanza`);
  }
}

/** The published file key of a suite-2 header's active slot (rules checked at parse time). */
export function publishedFileKey(stanzas: readonly Stanza[]): Buffer {
  const field = stanzas[0]?.fields[0];
  if (!field || field.length !== FILE_KEY_SIZE) fail("E_MALFORMED", "no public stanza");
  return Buffer.from(field);
}

/** Whether a descriptor's suite is the integrity-only one (the payload is not encrypted). */
export function isPublicSuite(suite: number): boolean {
  return suite === SUITE_PUBLIC;
}

/** A reader that requires encryption refuses a public file before reading its payload. */
export function refuseUnencrypted(suite: number, why = "encryption is required"): void {
  if (isPublicSuite(suite)) {
    fail(
      "E_NOT_ENCRYPTED",
      `a public (integrity-only, not encrypted) file where ${why}: it was not sealed for your keys, so its content proves nothing about who wrote it`,
    );
  }
}

/** Rewrap and reseal: a public file has no recipients to change (E_USAGE, nothing written). */
export function refuseRecipientChange(suite: number, what: string): void {
  if (isPublicSuite(suite)) {
    fail(
      "E_USAGE",
      `cannot ${what} a public (integrity-only, not encrypted) file: it has no recipients; to encrypt it, seal its plaintext again with another tier`,
    );
  }
}
