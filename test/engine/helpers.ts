/** Shared fixtures for the engine tests: temp dirs, KEK recipients and identities, data. */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isTensorSealError } from "../../src/format/errors.js";
import type { Identity, Recipient } from "../../src/format/stanza.js";
import { kekIdentity, kekRecipient } from "../../src/keys/kek.js";

export interface TestKey {
  readonly name: string;
  readonly kek: Buffer;
  readonly recipient: Recipient;
  readonly identity: Identity;
}

export function makeKey(name: string, version = 1): TestKey {
  const kek = randomBytes(32);
  return {
    name,
    kek,
    recipient: kekRecipient({ name, version }, kek),
    identity: kekIdentity(`kek:${name}`, (ref) =>
      ref.name === name && ref.version === version ? kek : null,
    ),
  };
}

export function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), "tseal-engine-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Pseudo-random but cheap data (randomBytes is slow for many MiB). */
export function data(n: number): Buffer {
  const seed = randomBytes(4096);
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4096) seed.copy(out, i, 0, Math.min(4096, n - i));
  for (let i = 0; i < n; i += 4093) out[i] = (i * 31) & 0xff;
  return out;
}

/** Resolves to the error code of a rejected promise; fails the test if it resolved. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isTensorSealError(e)) return e.code;
    throw e;
  }
  throw new Error("expected the operation to fail, it succeeded");
}

/** Files in `dir` whose name marks them as engine temp outputs. */
export function tempOutputs(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.includes(".tseal-tmp-"));
}

export function assertNoOutput(dir: string, out: string): void {
  if (existsSync(out)) throw new Error(`output ${out} exists after a failure`);
  const left = tempOutputs(dir);
  if (left.length > 0) throw new Error(`temp files left behind: ${left.join(", ")}`);
}
