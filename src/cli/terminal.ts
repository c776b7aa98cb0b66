/** Terminal I/O: passphrase prompts without echo, and a progress line on stderr. */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { fail } from "../format/errors.js";

/** Reads a passphrase from the controlling terminal with echo off. */
export async function promptHidden(question: string): Promise<string> {
  const input = process.stdin.isTTY ? process.stdin : openTty();
  if (!input || !("setRawMode" in input)) {
    return fail(
      "E_USAGE",
      "a passphrase is needed but there is no terminal: set it in the environment (see --help)",
    );
  }
  process.stderr.write(question);
  const tty = input as NodeJS.ReadStream;
  tty.setRawMode(true);
  tty.resume();
  let value = "";
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (buf: Buffer) => {
        for (const ch of buf.toString("utf8")) {
          if (ch === "\r" || ch === "\n") {
            tty.off("data", onData);
            return resolve();
          }
          if (ch === "\u0003") {
            tty.off("data", onData);
            return reject(fail("E_USAGE", "interrupted"));
          }
          if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
          else value += ch;
        }
      };
      tty.on("data", onData);
    });
  } finally {
    tty.setRawMode(false);
    tty.pause();
    process.stderr.write("\n");
  }
  return value;
}

function openTty(): NodeJS.ReadStream | null {
  try {
    const s = createReadStream("/dev/tty") as unknown as NodeJS.ReadStream;
    return s;
  } catch {
    return null;
  }
}

/** Reads a value from a file (first line), for passphrases and tokens given by path. */
export async function readFirstLine(path: string): Promise<string> {
  const rl = createInterface({ input: createReadStream(path) });
  for await (const line of rl) {
    rl.close();
    return line;
  }
  return "";
}

/** A throttled one-line progress bar on stderr, only when stderr is a terminal. */
export function progressBar(label: string, enabled = process.stderr.isTTY === true) {
  let last = 0;
  const started = Date.now();
  return {
    update(done: number, total: number) {
      if (!enabled) return;
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const pct = total > 0 ? done / total : 1;
      const width = 30;
      const filled = Math.round(pct * width);
      const secs = (now - started) / 1000;
      const rate = secs > 0 ? done / secs / 1e6 : 0;
      process.stderr.write(
        `\r${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${(pct * 100).toFixed(0).padStart(3)}% ${rate.toFixed(0)} MB/s`,
      );
    },
    done() {
      if (enabled && last > 0) process.stderr.write("\n");
    },
  };
}
