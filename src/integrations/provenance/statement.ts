/**
 * The in-toto statement that model-signing (predicate v1.0, "files" serialization) signs, with
 * TensorSeal's binding of the sealed files in an extra predicate field (`tensorseal`) that
 * model-signing verifiers ignore, as that predicate version specifies for unknown fields.
 *
 * - `predicate.resources`: every plaintext file (relative path, SHA-256), except the paths
 *   model-signing itself never hashes (IGNORE_PATHS: git metadata and `model.sig`), ordered as
 *   Python orders path objects (segment by segment).
 * - `subject[0].digest.sha256`: SHA-256 over the raw resource digests in that order.
 * - `predicate.tensorseal`: the model id, every manifest file (path, size, plaintext SHA-256,
 *   sealed digest) and the sealed manifest's digest (see sealed-digest.ts).
 */
import { createHash } from "node:crypto";
import { fail } from "../../format/errors.js";

export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const PREDICATE_TYPE = "https://model_signing/signature/v1.0";
export const SIGNATURE_NAME = "model.sig";
/** What model-signing ignores by default when it verifies a directory, plus its signature. */
export const IGNORE_PATHS = [".github", ".gitattributes", ".gitignore", ".git", SIGNATURE_NAME];

export interface SignedFile {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  /** Digest of the sealed file's rewrap-stable identity (sealed-digest.ts). */
  readonly sealed: string;
}

/** A sealed model directory: its model id, sealed manifest and every file. */
export interface Binding {
  readonly version: 1;
  readonly model: string;
  readonly manifest: string;
  readonly files: readonly SignedFile[];
}

/** One sealed file (`seal --sign`): model-signing names a single-file model's resource ".". */
export interface FileBinding {
  readonly version: 1;
  readonly file: { readonly size: number; readonly sha256: string; readonly sealed: string };
}

export type AnyBinding = Binding | FileBinding;

interface Resource {
  readonly name: string;
  readonly digest: string;
  readonly algorithm: string;
}

export function ignoredByModelSigning(path: string): boolean {
  return IGNORE_PATHS.some((p) => path === p || path.startsWith(`${p}/`));
}

/** Python's ordering of PurePosixPath: segment lists compared by code point. */
export function comparePaths(a: string, b: string): number {
  const sa = a.split("/");
  const sb = b.split("/");
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    const c = compareCodePoints(sa[i] as string, sb[i] as string);
    if (c !== 0) return c;
  }
  return sa.length - sb.length;
}

function compareCodePoints(a: string, b: string): number {
  const ca = Array.from(a, (c) => c.codePointAt(0) as number);
  const cb = Array.from(b, (c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    if (ca[i] !== cb[i]) return (ca[i] as number) - (cb[i] as number);
  }
  return ca.length - cb.length;
}

function rootDigest(resources: readonly Resource[]): string {
  const h = createHash("sha256");
  for (const r of resources) h.update(Buffer.from(r.digest, "hex"));
  return h.digest("hex");
}

function resourcesOf(b: AnyBinding): Resource[] {
  if ("file" in b) return [{ name: ".", digest: b.file.sha256, algorithm: "sha256" }];
  return b.files
    .filter((f) => !ignoredByModelSigning(f.path))
    .sort((a, b) => comparePaths(a.path, b.path))
    .map((f) => ({ name: f.path, digest: f.sha256, algorithm: "sha256" }));
}

/** The statement's JSON bytes (indented as model-signing writes them; the bytes are signed). */
export function encodeStatement(name: string, binding: AnyBinding): Buffer {
  const resources = resourcesOf(binding);
  const statement = {
    _type: STATEMENT_TYPE,
    subject: [{ name, digest: { sha256: rootDigest(resources) } }],
    predicateType: PREDICATE_TYPE,
    predicate: {
      serialization: {
        method: "files",
        hash_type: "sha256",
        allow_symlinks: false,
        ignore_paths: IGNORE_PATHS,
      },
      resources,
      tensorseal: binding,
    },
  };
  return Buffer.from(JSON.stringify(statement, null, 2));
}

/**
 * Parses a verified payload: the statement must be model-signing's v1.0 files statement, its
 * root digest must match its resources, and its `tensorseal` binding must agree with them.
 */
export function parseStatement(payload: Buffer): AnyBinding {
  // biome-ignore lint/suspicious/noExplicitAny: untrusted JSON; every field used is checked
  let doc: any;
  try {
    doc = JSON.parse(payload.toString("utf8"));
  } catch (e) {
    return fail("E_SIGNATURE", "signed payload is not JSON", e);
  }
  if (doc?._type !== STATEMENT_TYPE || doc.predicateType !== PREDICATE_TYPE) {
    fail("E_SIGNATURE", `signed payload is not a ${PREDICATE_TYPE} in-toto statement`);
  }
  const binding = parseBinding(doc.predicate?.tensorseal);
  const resources = resourcesOf(binding);
  const signed = doc.predicate.resources as Resource[];
  const same =
    Array.isArray(signed) &&
    signed.length === resources.length &&
    signed.every((r, i) => {
      const e = resources[i] as Resource;
      return r?.name === e.name && r.digest === e.digest && r.algorithm === e.algorithm;
    });
  if (!same) fail("E_SIGNATURE", "signed resources and TensorSeal binding disagree");
  if (doc.subject?.length !== 1 || doc.subject[0]?.digest?.sha256 !== rootDigest(resources)) {
    fail("E_SIGNATURE", "signed statement's root digest does not match its resources");
  }
  return binding;
}

// biome-ignore lint/suspicious/noExplicitAny: untrusted JSON; every field used is checked
function parseBinding(b: any): AnyBinding {
  if (typeof b !== "object" || b === null) {
    fail("E_SIGNATURE", "the signature does not bind sealed files (made by another tool?)");
  }
  if (b.file !== undefined) return parseFileBinding(b);
  const hex = (s: unknown, n: number) =>
    typeof s === "string" && new RegExp(`^[0-9a-f]{${n}}$`).test(s);
  if (b.version !== 1 || !hex(b.model, 32) || !hex(b.manifest, 64) || !Array.isArray(b.files)) {
    fail("E_SIGNATURE", "signed TensorSeal binding is malformed");
  }
  const files: SignedFile[] = [];
  let prev = "";
  for (const f of b.files) {
    const ok =
      typeof f?.path === "string" &&
      f.path > prev &&
      Number.isSafeInteger(f.size) &&
      f.size >= 0 &&
      hex(f.sha256, 64) &&
      hex(f.sealed, 64);
    if (!ok) fail("E_SIGNATURE", "signed TensorSeal binding: bad or unsorted file entry");
    prev = f.path;
    files.push({ path: f.path, size: f.size, sha256: f.sha256, sealed: f.sealed });
  }
  return { version: 1, model: b.model, manifest: b.manifest, files };
}

// biome-ignore lint/suspicious/noExplicitAny: untrusted JSON; every field used is checked
function parseFileBinding(b: any): FileBinding {
  const f = b.file;
  const hex64 = (x: unknown) => typeof x === "string" && /^[0-9a-f]{64}$/.test(x);
  const ok =
    b.version === 1 &&
    typeof f === "object" &&
    f !== null &&
    Number.isSafeInteger(f.size) &&
    f.size >= 0 &&
    hex64(f.sha256) &&
    hex64(f.sealed);
  if (!ok) fail("E_SIGNATURE", "signed TensorSeal file binding is malformed");
  return { version: 1, file: { size: f.size, sha256: f.sha256, sealed: f.sealed } };
}
