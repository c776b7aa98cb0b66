/**
 * Escaping untrusted text before it reaches a terminal. A header's content type, labels,
 * context and stanza fields, a manifest's paths, a key service's answers and file names are
 * chosen by whoever wrote them: printed raw, an ESC sequence could move the cursor, recolour or
 * erase what the user reads, or write the clipboard (OSC 52), and a bidi override could make a
 * name read backwards. Pure: strings in, strings out.
 *
 * Escaped: C0 controls, DEL and C1 controls (\p{Cc}), format characters (\p{Cf}: bidi
 * embeddings, overrides and isolates, zero-width characters, soft hyphen, BOM, tags), line and
 * paragraph separators (U+2028, U+2029) and lone surrogates. Everything else, accented letters,
 * CJK, emoji, is kept as is. The escapes are those of Python's repr (`\x1b`, `\u202e`), as the
 * Python package prints them.
 */

// The \p{...} classes cost ~0.3 ms to build on every start (issue 11), and most text is plain
// ASCII, which none of them matches: each is built on first use, after a plain-ASCII test.
const lazy = (make: () => RegExp) => {
  let made: RegExp | undefined;
  return () => (made ??= make());
};
/** What printable() escapes. */
const UNSAFE = lazy(() => /[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029]/gu);
/** The same without tab and newline, for multi-line text (policies, tables). */
const UNSAFE_IN_TEXT = lazy(() => /[\0-\x08\x0b-\x1f\x7f-\x9f\p{Cf}\p{Cs}\u2028\u2029]/gu);
/** In JSON text: what JSON.stringify leaves raw but a terminal would act on. */
const UNSAFE_IN_JSON = lazy(() => /[\x7f-\x9f\p{Cf}\u2028\u2029]/gu);
/** Text none of those matches: printable ASCII; with tab and newline; anything below DEL. */
const PLAIN = /^[\x20-\x7e]*$/;
const PLAIN_TEXT = /^[\t\n\x20-\x7e]*$/;
const PLAIN_JSON = /^[\0-\x7e]*$/;

const SHORT: Record<string, string> = { "\t": "\\t", "\n": "\\n", "\r": "\\r" };

function escapeChar(c: string): string {
  const short = SHORT[c];
  if (short) return short;
  const cp = c.codePointAt(0)!;
  if (cp <= 0xff) return `\\x${cp.toString(16).padStart(2, "0")}`;
  if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, "0")}`;
  return `\\U${cp.toString(16).padStart(8, "0")}`;
}

/** One line of untrusted text, safe to print: every control and format character escaped. */
export function printable(text: string): string {
  return PLAIN.test(text) ? text : text.replace(UNSAFE(), escapeChar);
}

/** Untrusted multi-line text: like printable(), but newlines and tabs are kept. */
export function printableText(text: string): string {
  return PLAIN_TEXT.test(text) ? text : text.replace(UNSAFE_IN_TEXT(), escapeChar);
}

/**
 * JSON.stringify, with the characters it leaves raw (DEL, C1, format characters, U+2028/2029)
 * written as \u escapes: the same value once parsed, and nothing that acts on a terminal.
 * JSON.stringify already escapes C0 controls and lone surrogates.
 */
export function jsonText(value: unknown, indent?: number): string {
  return jsonSafe(JSON.stringify(value, null, indent) ?? "null");
}

/** JSON text (from JSON.stringify) with those characters escaped; the value is unchanged. */
export function jsonSafe(json: string): string {
  if (PLAIN_JSON.test(json)) return json;
  return json.replace(UNSAFE_IN_JSON(), (c) => {
    const cp = c.codePointAt(0)!;
    if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, "0")}`;
    const s = cp - 0x10000; // a surrogate pair, as JSON spells characters beyond the BMP
    const hi = 0xd800 + (s >> 10);
    const lo = 0xdc00 + (s & 0x3ff);
    return `\\u${hi.toString(16)}\\u${lo.toString(16)}`;
  });
}
