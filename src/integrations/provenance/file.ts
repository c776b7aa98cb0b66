/**
 * Signed provenance of one sealed file (`seal --sign`): `FILE.tseal.sig` next to it, a
 * model-signing bundle whose single resource "." is the plaintext (so `model_signing verify key
 * --signature FILE.tseal.sig FILE` checks the opened file) and whose TensorSeal binding holds
 * the sealed digest. Written atomically (temp, fsync, rename).
 */
import { createHash, type KeyObject } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, stat, unlink } from "node:fs/promises";
import { fail } from "../../format/errors.js";
import { readBundle, signBundle, verifyBundle } from "./dsse.js";
import { sealedDigest } from "./sealed-digest.js";
import { encodeStatement, type FileBinding, parseStatement } from "./statement.js";

export function fileSignaturePath(sealed: string): string {
  return `${sealed}.sig`;
}

export interface Plain {
  readonly size: number;
  readonly sha256: string;
  readonly mtimeMs: number;
}

export async function digestPlain(path: string): Promise<Plain> {
  const before = await stat(path);
  const h = createHash("sha256");
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return { size: before.size, sha256: h.digest("hex"), mtimeMs: before.mtimeMs };
}

export async function signSealedFile(
  sealed: string,
  name: string,
  plain: Plain,
  key: KeyObject,
): Promise<void> {
  const binding: FileBinding = {
    version: 1,
    file: { size: plain.size, sha256: plain.sha256, sealed: await sealedDigest(sealed) },
  };
  const bundle = signBundle(encodeStatement(name, binding), key);
  const target = fileSignaturePath(sealed);
  const tmp = `${target}.tmp-${process.pid}`;
  const fh = await open(tmp, "wx", 0o644);
  try {
    await fh.writeFile(`${JSON.stringify(bundle)}\n`);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  await rename(tmp, target);
}

/** The signature, the signer and the sealed digest, without a key; returns the binding. */
export async function verifySealedFile(sealed: string, signer: KeyObject): Promise<FileBinding> {
  const sig = fileSignaturePath(sealed);
  const doc = await readBundle(sig, `${sealed} is unsigned (no ${sig}): a signer is required`);
  const binding = parseStatement(verifyBundle(doc, signer));
  if (!("file" in binding)) fail("E_SIGNATURE", `${sig} signs a model directory, not one file`);
  if ((await sealedDigest(sealed)) !== binding.file.sealed) {
    fail("E_SIGNATURE", `${sealed} is not the signed file (replaced or re-sealed)`);
  }
  return binding;
}

/** After opening: the plaintext must be the signed one; else it is removed and E_SIGNATURE. */
export async function checkOpenedFile(path: string, binding: FileBinding): Promise<void> {
  const got = await digestPlain(path);
  if (got.size !== binding.file.size || got.sha256 !== binding.file.sha256) {
    await unlink(path).catch(() => {});
    fail("E_SIGNATURE", `${path}: the plaintext is not the signed one (removed)`);
  }
}
