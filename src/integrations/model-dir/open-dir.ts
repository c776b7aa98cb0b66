/**
 * openModelDir: the manifest is opened first; then the sealed directory must hold exactly the
 * manifest's files, each opened with its expected context (path and model id) and checked
 * against the manifest's size and SHA-256. Any missing, extra, renamed or swapped file fails
 * the whole open, naming the file, and OUT never appears partially.
 */
import type { KeyObject } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { openFile, SealedFile } from "../../engine/index.js";
import { fail, isTensorSealError } from "../../format/errors.js";
import type { Identity } from "../../format/stanza.js";
import { checkSignedManifest, verifySealedDir } from "../provenance/model-dir.js";
import { SIGNATURE_NAME } from "../provenance/statement.js";
import { withAtomicDir } from "./atomic-dir.js";
import {
  contextFor,
  MANIFEST_NAME,
  type Manifest,
  type ManifestEntry,
  MODEL_CONTEXT,
  PATH_CONTEXT,
  parseManifest,
  SEALED_SUFFIX,
} from "./manifest.js";
import { type DirProgress, dirProgress, type FileProgress, listFiles, sha256File } from "./walk.js";

export interface OpenDirOptions {
  readonly identities: readonly Identity[];
  readonly workers?: number;
  /** Plaintext bytes done of the whole model (the manifest's sizes), and the file at hand. */
  readonly onProgress?: DirProgress;
  /** Refuse the model unless its model.sig is by this key and covers every file (provenance/). */
  readonly requireSigner?: KeyObject;
}

export function manifestPath(sealedDir: string): string {
  return join(sealedDir, MANIFEST_NAME + SEALED_SUFFIX);
}

export function isSealedModelDir(path: string): boolean {
  return existsSync(manifestPath(path));
}

/** Opens and authenticates the manifest; its own context must name it and its model id. */
export async function readManifest(
  sealedDir: string,
  identities: readonly Identity[],
): Promise<Manifest> {
  const path = manifestPath(sealedDir);
  if (!existsSync(path)) fail("E_USAGE", `${sealedDir} has no ${MANIFEST_NAME}${SEALED_SUFFIX}`);
  const file = await SealedFile.open(path, identities, {
    expectContext: { [PATH_CONTEXT]: MANIFEST_NAME },
    // The manifest is the directory's root of authenticity: only its recipients can write it.
    // A public manifest (anyone can write one, listing anything) is refused (spec §2.5).
    requireEncrypted: true,
  });
  try {
    if (file.plaintextLength > 64 << 20) fail("E_MALFORMED", "model manifest is over 64 MiB");
    const m = parseManifest(await file.readRange(0, file.plaintextLength));
    if (file.descriptor.context[MODEL_CONTEXT] !== m.model) {
      fail("E_DECRYPT", `${path}: manifest model id does not match its encryption context`);
    }
    return m;
  } finally {
    await file.close();
  }
}

export async function openModelDir(
  sealedDir: string,
  output: string,
  opts: OpenDirOptions,
): Promise<Manifest> {
  const binding = opts.requireSigner && (await verifySealedDir(sealedDir, opts.requireSigner));
  const manifest = await readManifest(sealedDir, opts.identities);
  if (binding) checkSignedManifest(manifest, binding);
  await checkListing(sealedDir, manifest);
  const total = manifest.files.reduce((n, f) => n + f.size, 0);
  const progress = dirProgress(opts.onProgress, total);
  await withAtomicDir(output, async (tmp) => {
    for (const entry of manifest.files) {
      await openOne(sealedDir, tmp, manifest.model, entry, opts, progress.file(entry.path));
      progress.finished(entry.size);
    }
  });
  return manifest;
}

/** The sealed directory must hold exactly the manifest's files, nothing more or less. */
async function checkListing(sealedDir: string, m: Manifest): Promise<void> {
  const expected = new Set(m.files.map((f) => f.path + SEALED_SUFFIX));
  expected.add(MANIFEST_NAME + SEALED_SUFFIX);
  expected.add(SIGNATURE_NAME); // checked by verifySealedDir when a signer is required
  const present = new Set(await listFiles(sealedDir));
  present.add(SIGNATURE_NAME);
  for (const p of present) {
    if (!expected.has(p)) {
      fail("E_DECRYPT", `${join(sealedDir, p)} is not in the sealed manifest (added or renamed)`);
    }
  }
  for (const p of expected) {
    if (!present.has(p)) fail("E_DECRYPT", `${join(sealedDir, p)} is missing from the model`);
  }
}

async function openOne(
  sealedDir: string,
  tmp: string,
  model: string,
  entry: ManifestEntry,
  opts: OpenDirOptions,
  progress: FileProgress,
): Promise<void> {
  const src = join(sealedDir, entry.path + SEALED_SUFFIX);
  const dst = join(tmp, entry.path);
  await mkdir(dirname(dst), { recursive: true, mode: 0o700 });
  try {
    const opened = await openFile(src, dst, {
      identities: opts.identities,
      expectContext: contextFor(model, entry.path),
      // The manifest (sealed for the recipients) says which files are public: any other must
      // be encrypted, so a public file put in its place is refused (spec/FORMAT.md §2.5).
      requireEncrypted: entry.encrypted !== false,
      workers: opts.workers,
      onProgress: progress.crypto,
    });
    if (entry.encrypted === false && opened.encrypted !== false) {
      fail("E_DECRYPT", `${src}: the manifest lists a public file, but this one is encrypted`);
    }
  } catch (e) {
    if (isTensorSealError(e, "E_CONTEXT")) {
      fail(
        "E_DECRYPT",
        `${src} belongs to another path or model (swapped or renamed): ${e.detail}`,
      );
    }
    throw e;
  }
  const hash = await sha256File(dst, progress.hashed);
  const { size } = await stat(dst);
  if (size !== entry.size || hash !== entry.sha256) {
    fail("E_DECRYPT", `${src}: plaintext size or SHA-256 does not match the manifest`);
  }
}
