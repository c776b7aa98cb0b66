/**
 * exec --seal-outputs: what the command wrote into its RAM output directory is sealed, when it
 * ends, into DIR as a sealed model directory (the seal-dir format: every file as <path>.tseal,
 * bound by its encryption context to its path and to a random run id, plus a sealed manifest of
 * paths, sizes and plaintext SHA-256 digests), so `tensorseal open-dir DIR OUT` opens and checks
 * it. Each file is written through the engine's atomic output (temp + fsync + rename) into a
 * temporary directory next to DIR, which takes DIR's name only when complete. The plaintext is
 * wiped whatever happens: outputs that cannot be sealed are lost, never left readable.
 */
import { createHash, randomBytes } from "node:crypto";
import { accessSync, constants, existsSync, lstatSync, readdirSync, type Stats } from "node:fs";
import { mkdir, open, rename } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { Readable } from "node:stream";
import {
  onInterrupt,
  removeStaleTemps,
  sealStream,
  tempPathFor,
  wipeTreeSync,
  withOutputStream,
} from "../engine/index.js";
import { fail } from "../format/errors.js";
import { printable } from "../format/printable.js";
import type { Recipient } from "../format/stanza.js";
import { looksLikeSafetensors, OCTET_STREAM, SAFETENSORS } from "./content-type.js";
import { listOutputs, type OutputFile, type RefusedOutput } from "./exec-outputs-walk.js";
import {
  contextFor,
  encodeManifest,
  MANIFEST_CONTENT_TYPE,
  MANIFEST_NAME,
  type ManifestEntry,
  SEALED_SUFFIX,
} from "./model-dir/manifest.js";
import { wipeDirSync } from "./ram-dir.js";

export const OUTPUT_DIR_ENV = "TENSORSEAL_OUTPUT_DIR";

export interface SealOutputsOptions {
  /** Where the sealed outputs go; created, or replaced with `force`. */
  readonly dir: string;
  readonly recipients: readonly Recipient[];
  /** Replace an existing DIR that is empty or holds earlier sealed outputs. */
  readonly force?: boolean;
}

export interface SealOutputsResult {
  /** The sealed files (the manifest's entries); empty when nothing was written. */
  readonly sealed: readonly ManifestEntry[];
  /** Entries refused (links, FIFOs, ...): neither followed nor sealed, but wiped. */
  readonly refused: readonly RefusedOutput[];
  /** Why sealing failed, and the outputs therefore lost; null on success. */
  readonly failed: { readonly message: string; readonly lost: readonly string[] } | null;
}

/** Before anything runs: DIR must be new, or (with force) replaceable; its parent writable. */
export function checkOutputsTarget(dir: string, force: boolean | undefined): void {
  const abs = resolve(dir);
  const parent = dirname(abs);
  try {
    accessSync(parent, constants.W_OK);
  } catch {
    fail(
      "E_USAGE",
      `--seal-outputs ${printable(dir)}: ${printable(parent)} is not a writable directory`,
    );
  }
  if (lstatSync(abs, { throwIfNoEntry: false }) === undefined) return;
  if (!force) {
    fail("E_USAGE", `--seal-outputs ${printable(dir)} exists: pass --force to replace it`);
  }
  checkReplaceable(abs, dir);
}

/** Replacing only what this feature made (or an empty directory), never any directory. */
function checkReplaceable(abs: string, dir: string): void {
  const st = lstatSync(abs);
  const ok =
    st.isDirectory() &&
    (existsSync(join(abs, MANIFEST_NAME + SEALED_SUFFIX)) || readdirSync(abs).length === 0);
  if (!ok) {
    fail(
      "E_USAGE",
      `--seal-outputs ${printable(dir)}: refusing to replace it, it is neither empty nor a sealed directory (no ${MANIFEST_NAME}${SEALED_SUFFIX})`,
    );
  }
}

/**
 * Seals every regular file under `ramDir` into `opts.dir`, then wipes `ramDir` (always, and
 * removes it). Never throws: a failure is reported in the result, with the outputs it lost.
 */
export async function sealOutputs(
  ramDir: string,
  opts: SealOutputsOptions,
): Promise<SealOutputsResult> {
  let refused: readonly RefusedOutput[] = [];
  let files: readonly OutputFile[] = [];
  try {
    ({ files, refused } = await listOutputs(ramDir));
    if (files.length === 0) return { sealed: [], refused, failed: null };
    const sealed = await sealInto(ramDir, files, opts);
    return { sealed, refused, failed: null };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return { sealed: [], refused, failed: { message, lost: files.map((f) => f.path) } };
  } finally {
    wipeDirSync(ramDir);
  }
}

async function sealInto(
  ramDir: string,
  files: readonly OutputFile[],
  opts: SealOutputsOptions,
): Promise<ManifestEntry[]> {
  const abs = resolve(opts.dir);
  removeStaleTemps(dirname(abs));
  const tmp = tempPathFor(abs, true);
  const release = onInterrupt(() => wipeTreeSync(tmp)); // before mkdir: no window without it
  try {
    await mkdir(tmp, { mode: 0o700 });
    const run = randomBytes(16).toString("hex");
    const entries: ManifestEntry[] = [];
    for (const f of files) {
      const dst = join(tmp, f.path + SEALED_SUFFIX);
      await mkdir(dirname(dst), { recursive: true, mode: 0o700 });
      entries.push(await sealOne(join(ramDir, f.path), f, dst, run, opts.recipients));
    }
    const manifest = encodeManifest({ version: 1, model: run, files: entries });
    await withOutputStream(join(tmp, MANIFEST_NAME + SEALED_SUFFIX), (w) =>
      sealStream(Readable.from([manifest]), w, {
        recipients: opts.recipients,
        contentType: MANIFEST_CONTENT_TYPE,
        context: contextFor(run, MANIFEST_NAME),
      }),
    );
    await syncTree(tmp);
    await commit(tmp, abs, opts);
    return entries;
  } catch (e) {
    wipeTreeSync(tmp);
    throw e;
  } finally {
    release();
  }
}

/**
 * One file: opened without following a link, and it must be the inode the listing saw. Hashed
 * while it streams into the sealer, so it is read once.
 */
async function sealOne(
  src: string,
  found: OutputFile,
  dst: string,
  run: string,
  recipients: readonly Recipient[],
): Promise<ManifestEntry> {
  const fh = await open(src, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const before = await fh.stat();
    if (!before.isFile() || !sameInode(before, found.stat)) {
      fail("E_IO", `${printable(found.path)} was replaced while its outputs were being sealed`);
    }
    const head = Buffer.alloc(9);
    const { bytesRead } = await fh.read(head, 0, 9, 0);
    const safetensors = looksLikeSafetensors(head.subarray(0, bytesRead), before.size);
    const hash = createHash("sha256");
    const stream = fh.createReadStream({ start: 0, autoClose: false });
    async function* hashed() {
      for await (const piece of stream) {
        hash.update(piece as Buffer);
        yield piece as Buffer;
      }
    }
    const r = await withOutputStream(dst, (w) =>
      sealStream(Readable.from(hashed()), w, {
        recipients,
        contentType: safetensors ? SAFETENSORS : OCTET_STREAM,
        context: contextFor(run, found.path),
      }),
    );
    const after = await fh.stat();
    if (r.plaintextLength !== before.size || after.size !== before.size) {
      fail("E_IO", `${printable(found.path)} changed while it was being sealed`);
    }
    return { path: found.path, size: before.size, sha256: hash.digest("hex") };
  } finally {
    await fh.close();
  }
}

const sameInode = (a: Stats, b: Stats) => a.ino === b.ino && a.dev === b.dev;

/** The directories' entries (files are fsynced by the atomic output already). */
async function syncTree(dir: string): Promise<void> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) await syncTree(join(dir, e.name));
  }
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Renames the complete sealed directory into place; an existing one moves aside, then goes. */
async function commit(tmp: string, abs: string, opts: SealOutputsOptions): Promise<void> {
  if (lstatSync(abs, { throwIfNoEntry: false }) === undefined) {
    await rename(tmp, abs);
  } else {
    if (!opts.force) {
      fail("E_USAGE", `${printable(opts.dir)} appeared while the command ran: not replacing it`);
    }
    checkReplaceable(abs, opts.dir);
    const aside = tempPathFor(abs, true);
    await rename(abs, aside);
    try {
      await rename(tmp, abs);
    } catch (e) {
      await rename(aside, abs);
      throw e;
    }
    wipeTreeSync(aside); // ciphertext only; best effort, a later run sweeps what stays
  }
  await syncDir(dirname(abs));
}
