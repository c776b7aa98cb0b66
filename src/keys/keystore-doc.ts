/**
 * The shape of keystore.json (format version 1) and its strict parser. Binary values are
 * standard base64. Unknown or missing fields are refused: the MAC covers every field, and a
 * parser that ignored extras would invite confusion about what was authenticated.
 *
 * {
 *   "format": "tensorseal-keystore", "version": 1,
 *   "root": { "kind": "passphrase", "kdf": "scrypt", "logN", "r", "p", "salt"(16), "nonce"(12),
 *             "sealed"(48) }  |  { "kind": "key-file", "check"(32) },
 *   "keys": [ { "name", "created", "primary",
 *               "versions": [ { "version", "created", "nonce"(12), "material"(48) } ] } ],
 *   "mac": base64(HMAC-SHA-256(macKey, canonicalJson(document without "mac")))
 * }
 */
import { fail } from "../format/errors.js";

export const KEYSTORE_FORMAT = "tensorseal-keystore";
export const KEYSTORE_VERSION = 1;
export const KEY_NAME_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
export const MAX_VERSION = 0xffffffff;

export type RootDoc =
  | {
      kind: "passphrase";
      kdf: "scrypt";
      logN: number;
      r: number;
      p: number;
      salt: string;
      nonce: string;
      sealed: string;
    }
  | { kind: "key-file"; check: string };

export interface VersionDoc {
  version: number;
  created: string;
  nonce: string;
  material: string;
}

export interface KeyDoc {
  name: string;
  created: string;
  primary: number;
  versions: VersionDoc[];
}

export interface KeystoreDoc {
  format: typeof KEYSTORE_FORMAT;
  version: typeof KEYSTORE_VERSION;
  root: RootDoc;
  keys: KeyDoc[];
  mac: string;
}

export function b64(b: Uint8Array): string {
  return Buffer.from(b).toString("base64");
}

class Damaged {
  constructor(private readonly where: string) {}
  bad(why: string): never {
    return fail("E_KEYSTORE", `${this.where} is damaged (${why}): restore it from a backup`);
  }
  obj(v: unknown, what: string, fields: readonly string[]): Record<string, unknown> {
    if (v === null || typeof v !== "object" || Array.isArray(v))
      this.bad(`${what} is not an object`);
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).sort();
    const want = [...fields].sort();
    if (keys.join(",") !== want.join(","))
      this.bad(`${what} has fields [${keys}], expected [${want}]`);
    return o;
  }
  str(v: unknown, what: string): string {
    if (typeof v !== "string") this.bad(`${what} is not a string`);
    return v;
  }
  int(v: unknown, what: string, min: number, max: number): number {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      this.bad(`${what} is not an integer in ${min}..${max}`);
    }
    return v;
  }
  bytes(v: unknown, what: string, size: number): string {
    const s = this.str(v, what);
    const b = Buffer.from(s, "base64");
    if (b.length !== size || b.toString("base64") !== s)
      this.bad(`${what} is not ${size} bytes of base64`);
    return s;
  }
  date(v: unknown, what: string): string {
    const s = this.str(v, what);
    if (Number.isNaN(Date.parse(s))) this.bad(`${what} is not a date`);
    return s;
  }
}

export interface KeystoreEnvelope {
  readonly root: RootDoc;
  readonly mac: Buffer;
  /** The parsed JSON as found: the MAC is computed over it before its keys are trusted. */
  readonly raw: Record<string, unknown>;
}

/**
 * First pass: only what is needed to unlock the root key and check the MAC. Everything else is
 * validated by `parseKeys` after the MAC, so an edit reads as "modified", not "damaged".
 */
export function parseEnvelope(bytes: Buffer, where: string): KeystoreEnvelope {
  const d = new Damaged(where);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch {
    return d.bad("not valid JSON");
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) d.bad("not an object");
  const top = json as Record<string, unknown>;
  if (top.format !== KEYSTORE_FORMAT) d.bad("not a tensorseal keystore");
  if (top.version !== KEYSTORE_VERSION) {
    fail(
      "E_UNSUPPORTED",
      `${where} has format version ${JSON.stringify(top.version)}; this tensorseal reads version ${KEYSTORE_VERSION}: upgrade tensorseal`,
    );
  }
  const kind = (top.root as { kind?: unknown } | null)?.kind;
  let root: RootDoc;
  if (kind === "passphrase") {
    const r = d.obj(top.root, "root", ["kind", "kdf", "logN", "r", "p", "salt", "nonce", "sealed"]);
    if (r.kdf !== "scrypt") d.bad("root.kdf is not scrypt");
    root = {
      kind,
      kdf: "scrypt",
      logN: d.int(r.logN, "root.logN", 1, 63),
      r: d.int(r.r, "root.r", 1, 1024),
      p: d.int(r.p, "root.p", 1, 1024),
      salt: d.bytes(r.salt, "root.salt", 16),
      nonce: d.bytes(r.nonce, "root.nonce", 12),
      sealed: d.bytes(r.sealed, "root.sealed", 48),
    };
  } else if (kind === "key-file") {
    const r = d.obj(top.root, "root", ["kind", "check"]);
    root = { kind, check: d.bytes(r.check, "root.check", 32) };
  } else {
    return d.bad("root.kind is neither passphrase nor key-file");
  }
  return { root, mac: Buffer.from(d.bytes(top.mac, "mac", 32), "base64"), raw: top };
}

/** Second pass, after the MAC: the full document, strictly. */
export function parseDocument(env: KeystoreEnvelope, where: string): KeystoreDoc {
  const d = new Damaged(where);
  const top = d.obj(env.raw, "the document", ["format", "version", "root", "keys", "mac"]);
  if (!Array.isArray(top.keys)) d.bad("keys is not an array");
  const keys = (top.keys as unknown[]).map((k, i) => parseKey(d, k, `keys[${i}]`));
  const names = new Set(keys.map((k) => k.name));
  if (names.size !== keys.length) d.bad("a key name appears twice");
  return {
    format: KEYSTORE_FORMAT,
    version: KEYSTORE_VERSION,
    root: env.root,
    keys,
    mac: env.mac.toString("base64"),
  };
}

function parseKey(d: Damaged, v: unknown, what: string): KeyDoc {
  const k = d.obj(v, what, ["name", "created", "primary", "versions"]);
  const name = d.str(k.name, `${what}.name`);
  if (!KEY_NAME_PATTERN.test(name)) d.bad(`${what}.name is not a valid key name`);
  if (!Array.isArray(k.versions) || k.versions.length === 0) d.bad(`${what}.versions is empty`);
  const versions = (k.versions as unknown[]).map((x, i): VersionDoc => {
    const vv = d.obj(x, `${what}.versions[${i}]`, ["version", "created", "nonce", "material"]);
    return {
      version: d.int(vv.version, `${what}.versions[${i}].version`, 1, MAX_VERSION),
      created: d.date(vv.created, `${what}.versions[${i}].created`),
      nonce: d.bytes(vv.nonce, `${what}.versions[${i}].nonce`, 12),
      material: d.bytes(vv.material, `${what}.versions[${i}].material`, 48),
    };
  });
  for (let i = 1; i < versions.length; i++) {
    if (versions[i]!.version <= versions[i - 1]!.version)
      d.bad(`${what}.versions are not ascending`);
  }
  const primary = d.int(k.primary, `${what}.primary`, 1, MAX_VERSION);
  if (!versions.some((x) => x.version === primary)) d.bad(`${what}.primary names no version`);
  return { name, created: d.date(k.created, `${what}.created`), primary, versions };
}
