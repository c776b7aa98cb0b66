/**
 * sealModelDir: every regular file of a model directory becomes OUT/<path>.tseal, bound by its
 * encryption context to its relative path and to a random model id, plus a sealed manifest of
 * paths, sizes and plaintext SHA-256 digests. OUT appears atomically.
 */
import { type KeyObject, randomBytes } from "node:crypto";
import { mkdir, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { type SealOptions, sealFile, sealStream, withOutputStream } from "../../engine/index.js";
import { fail } from "../../format/errors.js";
import { publicRecipient, SUITE_PUBLIC } from "../../format/public.js";
import { detectContentType } from "../content-type.js";
import { signSealedDir } from "../provenance/model-dir.js";
import { withAtomicDir } from "./atomic-dir.js";
import {
  contextFor,
  encodeManifest,
  MANIFEST_CONTENT_TYPE,
  MANIFEST_NAME,
  type ManifestEntry,
  SEALED_SUFFIX,
} from "./manifest.js";
import { type DirProgress, dirProgress, type FileProgress, listFiles, sha256File } from "./walk.js";

export type SealDirOptions = Omit<
  SealOptions,
  "contentType" | "onProgress" | "fileKey" | "salt"
> & {
  /** Plaintext bytes done of the whole directory, and the file being sealed. */
  readonly onProgress?: DirProgress;
  /** Sign the result (OUT/model.sig, provenance/) with this ECDSA private key. */
  readonly signWith?: KeyObject;
  /**
   * Per-file labels (tier, purpose, owner by path pattern), asked once for every path before
   * anything is written, so that it may refuse; paths it leaves out get `labels`.
   */
  readonly labelsFor?: (
    paths: readonly string[],
  ) => Promise<ReadonlyMap<string, Readonly<Record<string, string>>>>;
  /**
   * Whether a file with these labels is encrypted (default: always). False seals it public:
   * integrity only, readable by anyone (its tier must be public: spec/FORMAT.md §2.5). The
   * manifest, sealed for the recipients, records which files are public.
   */
  readonly encryptsLabels?: (labels: Readonly<Record<string, string>>) => boolean;
};

export interface SealDirResult {
  readonly model: string;
  readonly files: readonly ManifestEntry[];
}

export async function sealModelDir(
  input: string,
  output: string,
  opts: SealDirOptions,
): Promise<SealDirResult> {
  const paths = await listFiles(input);
  if (paths.includes(MANIFEST_NAME)) {
    fail("E_USAGE", `${input} already has a ${MANIFEST_NAME}: it is reserved for the manifest`);
  }
  const model = randomBytes(16).toString("hex");
  const { onProgress, signWith, labelsFor, encryptsLabels, ...sealOpts } = opts;
  const perFile = labelsFor ? await labelsFor(paths) : new Map();
  let total = 0;
  if (onProgress) for (const path of paths) total += (await stat(join(input, path))).size;
  const progress = dirProgress(onProgress, total);
  return withAtomicDir(output, async (tmp) => {
    const files: ManifestEntry[] = [];
    for (const path of paths) {
      const dst = join(tmp, path + SEALED_SUFFIX);
      const labels = perFile.get(path) ?? sealOpts.labels ?? {};
      const encrypted = encryptsLabels ? encryptsLabels(labels) : true;
      const entry = await sealOne(
        join(input, path),
        dst,
        path,
        model,
        encrypted
          ? { ...sealOpts, labels }
          : { ...sealOpts, labels, recipients: [publicRecipient()], suite: SUITE_PUBLIC },
        progress.file(path),
      );
      progress.finished(entry.size);
      files.push(entry);
    }
    const manifest = encodeManifest({ version: 1, model, files });
    await sealBytes(manifest, join(tmp, MANIFEST_NAME + SEALED_SUFFIX), {
      ...sealOpts,
      contentType: MANIFEST_CONTENT_TYPE,
      context: { ...opts.context, ...contextFor(model, MANIFEST_NAME) },
    });
    if (signWith) await signSealedDir(tmp, basename(resolve(input)), model, files, signWith);
    return { model, files };
  });
}

/** Digest, seal, and refuse a file that changed in between (size or mtime moved). */
async function sealOne(
  src: string,
  dst: string,
  path: string,
  model: string,
  opts: Omit<SealDirOptions, "onProgress" | "signWith" | "labelsFor">,
  progress: FileProgress,
): Promise<ManifestEntry> {
  const before = await stat(src);
  const hash = await sha256File(src, progress.hashed);
  await mkdir(dirname(dst), { recursive: true, mode: 0o700 });
  await sealFile(src, dst, {
    ...opts,
    onProgress: progress.crypto,
    contentType: await detectContentType(src),
    context: { ...opts.context, ...contextFor(model, path) },
  });
  const after = await stat(src);
  if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
    fail("E_IO", `${src} changed while it was being sealed: seal the directory again`);
  }
  return {
    path,
    size: before.size,
    sha256: hash,
    ...(opts.suite === SUITE_PUBLIC ? { encrypted: false as const } : {}),
  };
}

/** Seals a small in-memory plaintext (the manifest never touches the disk unsealed). */
async function sealBytes(plain: Buffer, output: string, opts: SealOptions): Promise<void> {
  await withOutputStream(output, (w) => sealStream(Readable.from([plain]), w, opts));
}
