/**
 * Signed provenance of a sealed model directory: `model.sig` (a model-signing bundle, not
 * encrypted) next to the sealed manifest. `signSealedDir` writes it while seal-dir's output is
 * still a temporary directory; `verifySealedDir` checks it with no decryption key (signature,
 * file set, every sealed digest); `checkSignedManifest` then ties the decrypted manifest to it.
 */

import type { KeyObject } from "node:crypto";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { fail } from "../../format/errors.js";
import {
  MANIFEST_NAME,
  type Manifest,
  type ManifestEntry,
  SEALED_SUFFIX,
} from "../model-dir/manifest.js";
import { listFiles } from "../model-dir/walk.js";
import { readBundle, signBundle, verifyBundle } from "./dsse.js";
import { sealedDigest } from "./sealed-digest.js";
import { type Binding, encodeStatement, parseStatement, SIGNATURE_NAME } from "./statement.js";

export function signaturePath(sealedDir: string): string {
  return join(sealedDir, SIGNATURE_NAME);
}

/** Signs the sealed directory `dir` (its .tseal files already written); returns the binding. */
export async function signSealedDir(
  dir: string,
  name: string,
  model: string,
  files: readonly ManifestEntry[],
  key: KeyObject,
): Promise<Binding> {
  const signed = [];
  for (const f of files) {
    const sealed = await sealedDigest(join(dir, f.path + SEALED_SUFFIX));
    signed.push({ path: f.path, size: f.size, sha256: f.sha256, sealed });
  }
  const manifest = await sealedDigest(join(dir, MANIFEST_NAME + SEALED_SUFFIX));
  const binding: Binding = { version: 1, model, manifest, files: signed };
  const bundle = signBundle(encodeStatement(name, binding), key);
  const fh = await open(signaturePath(dir), "wx", 0o644);
  try {
    await fh.writeFile(`${JSON.stringify(bundle)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return binding;
}

/**
 * Checks a sealed directory against its signature and the required signer, without a key:
 * unsigned, another signer, a modified signature, a file added, removed, renamed or swapped
 * (sealed digest) are all E_SIGNATURE, before anything is decrypted.
 */
export async function verifySealedDir(dir: string, signer: KeyObject): Promise<Binding> {
  const sigPath = signaturePath(dir);
  const doc = await readBundle(
    sigPath,
    `${dir} is unsigned (no ${SIGNATURE_NAME}): a signer is required`,
  );
  const binding = parseStatement(verifyBundle(doc, signer));
  if ("file" in binding) fail("E_SIGNATURE", `${sigPath} signs a single file, not this directory`);
  const expected = new Map(binding.files.map((f) => [f.path + SEALED_SUFFIX, f.sealed]));
  expected.set(MANIFEST_NAME + SEALED_SUFFIX, binding.manifest);
  const present = new Set((await listFiles(dir)).filter((p) => p !== SIGNATURE_NAME));
  for (const p of present) {
    if (!expected.has(p))
      fail("E_SIGNATURE", `${join(dir, p)} is not in the signed model (added or renamed)`);
  }
  for (const [p, digest] of expected) {
    const path = join(dir, p);
    if (!present.has(p)) fail("E_SIGNATURE", `${path} is signed but missing`);
    if ((await sealedDigest(path)) !== digest) {
      fail("E_SIGNATURE", `${path} is not the signed file (replaced, swapped or re-sealed)`);
    }
  }
  return binding;
}

/** The decrypted manifest must list exactly the signed files, model id, sizes and digests. */
export function checkSignedManifest(m: Manifest, binding: Binding): void {
  const same =
    m.model === binding.model &&
    m.files.length === binding.files.length &&
    m.files.every((f, i) => {
      const s = binding.files[i];
      return s !== undefined && s.path === f.path && s.size === f.size && s.sha256 === f.sha256;
    });
  if (!same) fail("E_SIGNATURE", "the sealed manifest does not match the signed one");
}
