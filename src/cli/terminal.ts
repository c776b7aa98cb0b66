/** Terminal I/O: passphrase prompts without echo, and a progress line on stderr. */
import { closeSync, openSync, writeSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { isatty, ReadStream } from "node:tty";
import { exitBySignal } from "../engine/interrupt.js";
import { fail } from "../format/errors.js";
import { printable } from "../format/printable.js";
import { stderrIsTerminal } from "./stdio.js";

/** Where each prompt's answer can come from instead, for the message when there is no terminal. */
const INSTEAD: Record<string, string> = {
  "Keystore passphrase: ": "TENSORSEAL_KEYSTORE_PASSPHRASE or TENSORSEAL_ROOT_KEY_FILE",
  "File passphrase: ": "TENSORSEAL_PASSPHRASE or --passphrase-file FILE",
  "New keystore passphrase: ": "TENSORSEAL_NEW_KEYSTORE_PASSPHRASE",
};

interface Tty {
  input: NodeJS.ReadStream;
  say(text: string): void;
  close(): void;
}

/**
 * The controlling terminal (/dev/tty), else stdin when it is a terminal; null when the process
 * has neither (cron, CI, `setsid`, a container without -t). Opened synchronously so that "no
 * terminal" is an answer here, not an `error` event later.
 */
function openTty(): Tty | null {
  let fd: number | null = null;
  try {
    fd = openSync("/dev/tty", "r+");
  } catch {
    // ENXIO (no controlling terminal), ENOENT, EACCES: try stdin below
  }
  if (fd !== null && isatty(fd)) {
    const tty = fd;
    return {
      input: new ReadStream(tty) as NodeJS.ReadStream,
      say: (text) => writeSync(tty, text),
      close() {
        this.input.destroy(); // closes the descriptor
      },
    };
  }
  if (fd !== null) closeSync(fd);
  if (!process.stdin.isTTY) return null;
  return {
    input: process.stdin,
    say: (text) => process.stderr.write(text),
    close: () => process.stdin.pause(),
  };
}

/**
 * Reads a passphrase from the terminal with echo off. Without a terminal: E_USAGE (exit 2),
 * one line naming where the value can come from instead.
 */
export async function promptHidden(question: string): Promise<string> {
  const tty = openTty();
  if (!tty) {
    const what = question.replace(/: $/, "").toLowerCase();
    const instead = INSTEAD[question] ?? "it in the environment (see --help)";
    return fail(
      "E_USAGE",
      `a ${what} is needed but there is no terminal to ask on: set ${instead}`,
    );
  }
  const input = tty.input;
  tty.say(question);
  input.setRawMode(true);
  input.resume();
  let value = "";
  let interrupted = false;
  try {
    await new Promise<void>((resolve) => {
      const onData = (buf: Buffer) => {
        for (const ch of buf.toString("utf8")) {
          if (ch === "\r" || ch === "\n" || ch === "\u0004") {
            input.off("data", onData);
            return resolve();
          }
          if (ch === "\u0003") {
            interrupted = true;
            input.off("data", onData);
            return resolve();
          }
          if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
          else value += ch;
        }
      };
      input.on("data", onData);
    });
  } finally {
    input.setRawMode(false);
    tty.say("\n");
    tty.close();
  }
  // Ctrl-C in raw mode is a character, not a signal: act as the signal would have.
  if (interrupted) exitBySignal("SIGINT");
  return value;
}

/** Most bytes read looking for the first line (a passphrase file is short; /dev/zero is not). */
const FIRST_LINE_MAX = 64 * 1024;

/** The first line of a file (a passphrase, a token given by path), without its line end. */
export async function readFirstLine(path: string): Promise<string> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, "r");
    const buf = Buffer.alloc(FIRST_LINE_MAX);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (buf.subarray(n - bytesRead, n).some((b) => b === 0x0a || b === 0x0d)) break;
    }
    const text = buf.subarray(0, n).toString("utf8");
    return text.split(/\r\n|\r|\n/, 1)[0] ?? "";
  } catch (e) {
    return fail("E_IO", `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
  } finally {
    await fh?.close();
  }
}

export interface ProgressLine {
  /**
   * Whether the line is drawn (stderr is a terminal). When it is not, `update` does nothing and
   * a caller need not report progress at all (the engine's timer costs start-up, issue 11).
   */
  readonly shown: boolean;
  /** `done` of `total` (0 while unknown); `detail` (a file name) is escaped before printing. */
  update(done: number, total: number, detail?: string): void;
  /** Erases the line (it was only ever progress); a later update starts afresh. */
  done(): void;
}

/**
 * A throttled one-line progress indicator on stderr, drawn only when stderr is a terminal (so
 * logs, pipes and CI stay silent). `bytes` shows sizes and a rate; `items` shows counts.
 * Only `\r` and spaces move the cursor: no escape sequence, so a dumb terminal is fine too.
 */
export function progressBar(
  label: string,
  opts: { unit?: "bytes" | "items"; enabled?: boolean } = {},
): ProgressLine {
  const enabled = opts.enabled ?? stderrIsTerminal();
  const unit = opts.unit ?? "bytes";
  let started = Date.now();
  let last = 0;
  let drawn = 0;
  return {
    shown: enabled,
    update(done, total, detail) {
      if (!enabled) return;
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const width = 20;
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const filled = Math.round(frac * width);
      const bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
      const pct = total > 0 ? `${(frac * 100).toFixed(0).padStart(3)}%` : "   ?";
      const secs = (now - started) / 1000;
      const amount =
        unit === "bytes"
          ? `${size(done)}${total > 0 ? ` of ${size(total)}` : ""}${secs > 0.2 ? `, ${size(done / secs)}/s` : ""}`
          : `${done}${total > 0 ? ` of ${total}` : ""}`;
      let text = `${label} ${pct} ${bar} ${amount}${detail ? `  ${printable(detail)}` : ""}`;
      const columns = process.stderr.columns || 80;
      if (text.length > columns - 1) text = `${text.slice(0, columns - 2)}…`;
      process.stderr.write(`\r${text.padEnd(drawn)}`);
      drawn = text.length;
    },
    done() {
      if (drawn > 0) process.stderr.write(`\r${" ".repeat(drawn)}\r`);
      drawn = 0;
      last = 0;
      started = Date.now(); // a later update starts a new line (exec's next model)
    },
  };
}

function size(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${Math.round(n)} B`;
}
