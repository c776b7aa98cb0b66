/** Fixtures for integration tests: safetensors builders, keys and temp directories. */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isTensorSealError } from "../../src/format/errors.js";
import type { Identity, Recipient } from "../../src/format/stanza.js";
import { kekIdentity, kekRecipient } from "../../src/keys/kek.js";

export interface TestKey {
  readonly recipient: Recipient;
  readonly identity: Identity;
}

export function makeKey(name = "test"): TestKey {
  const kek = randomBytes(32);
  return {
    recipient: kekRecipient({ name, version: 1 }, kek),
    identity: kekIdentity(`kek:${name}`, (ref) => (ref.name === name ? kek : null)),
  };
}

export function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), "tseal-integ-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface TensorSpec {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data: Buffer;
}

/** A safetensors file laid out as the reference writer does (header padded to 8 bytes). */
export function buildSafetensors(
  tensors: readonly TensorSpec[],
  metadata?: Record<string, string>,
): Buffer {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let at = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.data.length] };
    at += t.data.length;
  }
  return rawSafetensors(JSON.stringify(header), Buffer.concat(tensors.map((t) => t.data)));
}

/** 8-byte length, the JSON text (space-padded to a multiple of 8), then the data. */
export function rawSafetensors(json: string, data: Buffer): Buffer {
  let text = Buffer.from(json);
  const pad = (8 - (text.length % 8)) % 8;
  text = Buffer.concat([text, Buffer.alloc(pad, 0x20)]);
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(text.length));
  return Buffer.concat([n, text, data]);
}

/** Resolves to the error code and message of a rejected call; throws if it succeeded. */
export async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<{
  code: string;
  message: string;
}> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (isTensorSealError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error("expected the operation to fail, it succeeded");
}

export function floats(values: number[]): Buffer {
  return Buffer.from(new Float32Array(values).buffer);
}
