/**
 * The manifest of a sealed model directory: every relative path with the size and SHA-256 of
 * its plaintext, and the random model id that every file's encryption context carries. It is
 * sealed itself (tensorseal-manifest.json.tseal), since file names and sizes can be secret.
 */
import { fail } from "../../format/errors.js";

export const MANIFEST_NAME = "tensorseal-manifest.json";
export const SEALED_SUFFIX = ".tseal";
export const PATH_CONTEXT = "tensorseal.path";
export const MODEL_CONTEXT = "tensorseal.model";
export const MANIFEST_CONTENT_TYPE = "application/vnd.tensorseal.manifest+json";
const MAX_FILES = 100_000;

export interface ManifestEntry {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  /**
   * Present (and false) only for a public file (tier public, integrity only: spec/FORMAT.md
   * §2.5). Readers open every other entry requiring encryption, so a public file put in place of
   * an encrypted one is refused (E_NOT_ENCRYPTED), and a public entry must be a public file.
   */
  readonly encrypted?: false;
}

export interface Manifest {
  readonly version: 1;
  readonly model: string;
  readonly files: readonly ManifestEntry[];
}

/** Relative, `/`-separated, no empty, `.` or `..` segments, no NUL or backslash. */
export function checkRelativePath(p: string): string {
  const bad =
    p.length === 0 ||
    p.length > 4096 ||
    p.startsWith("/") ||
    /[\\\0]/.test(p) ||
    p.split("/").some((s) => s === "" || s === "." || s === "..");
  if (bad) fail("E_MALFORMED", `model directory: unsafe relative path ${JSON.stringify(p)}`);
  return p;
}

export function contextFor(model: string, path: string): Record<string, string> {
  return { [PATH_CONTEXT]: path, [MODEL_CONTEXT]: model };
}

export function encodeManifest(m: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(m, null, 2)}\n`);
}

/** Strict: exact fields, sorted unique paths, hex digests, safe sizes. */
export function parseManifest(bytes: Buffer): Manifest {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    return fail("E_MALFORMED", "model manifest is not valid JSON", e);
  }
  const m = doc as Manifest;
  if (typeof m !== "object" || m === null || m.version !== 1) {
    fail("E_MALFORMED", "model manifest: not a version 1 manifest object");
  }
  if (typeof m.model !== "string" || !/^[0-9a-f]{32}$/.test(m.model)) {
    fail("E_MALFORMED", "model manifest: model id is not 32 hex digits");
  }
  if (!Array.isArray(m.files) || m.files.length > MAX_FILES) {
    fail("E_MALFORMED", `model manifest: files is not a list of at most ${MAX_FILES}`);
  }
  let prev = "";
  for (const f of m.files) {
    if (typeof f?.path !== "string") fail("E_MALFORMED", "model manifest: entry without a path");
    checkRelativePath(f.path);
    if (f.path === MANIFEST_NAME) fail("E_MALFORMED", "model manifest lists itself");
    if (f.path <= prev) fail("E_MALFORMED", `model manifest: ${f.path} is duplicated or unsorted`);
    if (!Number.isSafeInteger(f.size) || f.size < 0 || !/^[0-9a-f]{64}$/.test(f.sha256)) {
      fail("E_MALFORMED", `model manifest: bad size or sha256 for ${f.path}`);
    }
    if (f.encrypted !== undefined && f.encrypted !== false) {
      fail("E_MALFORMED", `model manifest: encrypted of ${f.path} must be false or absent`);
    }
    prev = f.path;
  }
  return {
    version: 1,
    model: m.model,
    files: m.files.map((f) => ({
      path: f.path,
      size: f.size,
      sha256: f.sha256,
      ...(f.encrypted === false ? { encrypted: false as const } : {}),
    })),
  };
}
