/**
 * Human output of the CLI. Every line goes through format/printable.ts: names, labels, paths,
 * the key service's answers and error messages may hold control or bidi characters chosen by
 * whoever wrote a file, a header or a database row, and none of them reaches the terminal raw.
 */
import { printable, printableText } from "../format/printable.js";
import { writeStderr, writeStdout } from "./stdio.js";

/** A one-line message on stderr, prefixed `tensorseal: `. */
export function say(message: string): void {
  writeStderr(`tensorseal: ${printable(message)}\n`);
}

/** One line of output on stdout: tabs kept (columns), everything else escaped. */
export function print(line: string): void {
  writeStdout(`${printableText(line).replaceAll("\n", "\\n")}\n`);
}

/** One tab-separated row on stdout; each field escaped (a tab inside a field too). */
export function printRow(fields: readonly (string | number)[]): void {
  writeStdout(`${fields.map((f) => printable(String(f))).join("\t")}\n`);
}

/** Several lines (a table, a policy text) on stdout: tabs and newlines kept, the rest escaped. */
export function printText(text: string): void {
  writeStdout(`${printableText(text)}${text.endsWith("\n") ? "" : "\n"}`);
}
