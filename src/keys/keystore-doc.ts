/**
 * The shape of keystore.json (format version 2; version 1 is read and migrated in memory, then
 * written as version 2 by the next mutation) and its strict parser. Binary values are standard
 * base64. Unknown or missing fields are refused: the MAC covers every field, and a parser that
 * ignored extras would invite confusion about what was authenticated.
 *
 * {
 *   "format": "tensorseal-keystore", "version": 2, "id": hex(16),
 *   "root": { "kind": "passphrase", "kdf": "scrypt", "logN", "r", "p", "salt"(16), "nonce"(12),
 *             "sealed"(48) }  |  { "kind": "key-file", "check"(32) },
 *   "keys": [ { "name", "created", "primary", "min_decryption_version",
 *               "min_encryption_version", ["rotation_period" (seconds)],
 *               "versions": [ { "version", "created", "state", "wraps",
 *                               "nonce"(12), "material"(48)            -- unless destroyed
 *                               ["destroy_after"]                      -- scheduled only
 *                               ["destroyed"]                          -- destroyed only } ] } ],
 *   "mac": base64(HMAC-SHA-256(macKey, canonicalJson(document without "mac")))
 * }
 */

import { createHash } from "node:crypto";
import { fail } from "../format/errors.js";
import { metadataProblem } from "../format/metadata.js";

export const KEYSTORE_FORMAT = "tensorseal-keystore";
export const KEYSTORE_VERSION = 2;
export const KEYSTORE_VERSION_1 = 1;
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

export const VERSION_STATES = [
  "enabled",
  "disabled",
  "scheduled_for_destruction",
  "destroyed",
] as const;
export type VersionState = (typeof VERSION_STATES)[number];

/**
 * One KEK version. `nonce`/`material` are present unless the state is `destroyed` (then they
 * are erased from the file); `destroy_after` only when scheduled, `destroyed` only when
 * destroyed. `wraps` counts file keys wrapped (an upper bound: reserved before use).
 */
export interface VersionDoc {
  version: number;
  created: string;
  state: VersionState;
  wraps: number;
  nonce?: string;
  material?: string;
  destroy_after?: string;
  destroyed?: string;
}

export interface KeyDoc {
  name: string;
  created: string;
  primary: number;
  min_decryption_version: number;
  min_encryption_version: number;
  rotation_period?: number;
  /** Governance metadata (spec/KEYSTORE.md): who answers for the key, why, at which tier. */
  owner?: string;
  purpose?: string;
  tier?: string;
  versions: VersionDoc[];
}

export interface KeystoreDoc {
  format: typeof KEYSTORE_FORMAT;
  version: typeof KEYSTORE_VERSION;
  id: string;
  root: RootDoc;
  keys: KeyDoc[];
  mac: string;
}

/** Largest usage counter and rotation period the file may hold (both safe integers). */
export const MAX_WRAPS = 2 ** 53 - 1;
export const MAX_ROTATION_PERIOD = 100 * 366 * 86400;

export function b64(b: Uint8Array): string {
  return Buffer.from(b).toString("base64");
}

class Damaged {
  constructor(private readonly where: string) {}
  bad(why: string): never {
    return fail("E_KEYSTORE", `${this.where} is damaged (${why}): restore it from a backup`);
  }
  obj(
    v: unknown,
    what: string,
    fields: readonly string[],
    optional: readonly string[] = [],
  ): Record<string, unknown> {
    if (v === null || typeof v !== "object" || Array.isArray(v))
      this.bad(`${what} is not an object`);
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).sort();
    const want = [...fields, ...optional.filter((f) => f in o)].sort();
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
  if (top.version !== KEYSTORE_VERSION && top.version !== KEYSTORE_VERSION_1) {
    fail(
      "E_UNSUPPORTED",
      `${where} has format version ${JSON.stringify(top.version)}; this tensorseal reads versions 1 and ${KEYSTORE_VERSION}: upgrade tensorseal`,
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

/** Second pass, after the MAC: the full document, strictly. Version 1 is migrated. */
export function parseDocument(env: KeystoreEnvelope, where: string): KeystoreDoc {
  const d = new Damaged(where);
  const v1 = env.raw.version === KEYSTORE_VERSION_1;
  const fields = v1
    ? ["format", "version", "root", "keys", "mac"]
    : ["format", "version", "id", "root", "keys", "mac"];
  const top = d.obj(env.raw, "the document", fields);
  if (!Array.isArray(top.keys)) d.bad("keys is not an array");
  const keys = (top.keys as unknown[]).map((k, i) =>
    v1 ? parseKeyV1(d, k, `keys[${i}]`) : parseKey(d, k, `keys[${i}]`),
  );
  const names = new Set(keys.map((k) => k.name));
  if (names.size !== keys.length) d.bad("a key name appears twice");
  const id = v1 ? migratedId(env.root) : d.str(top.id, "id");
  if (!/^[0-9a-f]{32}$/.test(id)) d.bad("id is not 32 hex digits");
  return {
    format: KEYSTORE_FORMAT,
    version: KEYSTORE_VERSION,
    id,
    root: env.root,
    keys,
    mac: env.mac.toString("base64"),
  };
}

/** A version 1 file has no id: derive a stable one from its root (kept once written as v2). */
function migratedId(root: RootDoc): string {
  return createHash("sha256")
    .update(`tensorseal keystore id\0${JSON.stringify(root)}`)
    .digest("hex")
    .slice(0, 32);
}

function parseKeyV1(d: Damaged, v: unknown, what: string): KeyDoc {
  const k = d.obj(v, what, ["name", "created", "primary", "versions"]);
  if (!Array.isArray(k.versions)) d.bad(`${what}.versions is not an array`);
  const versions = (k.versions as unknown[]).map((x, i) => {
    const vv = d.obj(x, `${what}.versions[${i}]`, ["version", "created", "nonce", "material"]);
    return { ...vv, state: "enabled", wraps: 0 };
  });
  return parseKey(
    d,
    { ...k, versions, min_decryption_version: 1, min_encryption_version: 1 },
    what,
  );
}

function parseVersion(d: Damaged, x: unknown, what: string): VersionDoc {
  const state = (x as { state?: unknown } | null)?.state;
  if (!VERSION_STATES.includes(state as VersionState)) d.bad(`${what}.state is not a known state`);
  const base = ["version", "created", "state", "wraps"];
  const extra =
    state === "destroyed"
      ? ["destroyed"]
      : state === "scheduled_for_destruction"
        ? ["nonce", "material", "destroy_after"]
        : ["nonce", "material"];
  const vv = d.obj(x, what, [...base, ...extra]);
  const out: VersionDoc = {
    version: d.int(vv.version, `${what}.version`, 1, MAX_VERSION),
    created: d.date(vv.created, `${what}.created`),
    state: state as VersionState,
    wraps: d.int(vv.wraps, `${what}.wraps`, 0, MAX_WRAPS),
  };
  if (state === "destroyed") {
    out.destroyed = d.date(vv.destroyed, `${what}.destroyed`);
    return out;
  }
  out.nonce = d.bytes(vv.nonce, `${what}.nonce`, 12);
  out.material = d.bytes(vv.material, `${what}.material`, 48);
  if (state === "scheduled_for_destruction")
    out.destroy_after = d.date(vv.destroy_after, `${what}.destroy_after`);
  return out;
}

function parseKey(d: Damaged, v: unknown, what: string): KeyDoc {
  const k = d.obj(
    v,
    what,
    ["name", "created", "primary", "min_decryption_version", "min_encryption_version", "versions"],
    ["rotation_period", "owner", "purpose", "tier"],
  );
  const name = d.str(k.name, `${what}.name`);
  if (!KEY_NAME_PATTERN.test(name)) d.bad(`${what}.name is not a valid key name`);
  if (!Array.isArray(k.versions) || k.versions.length === 0) d.bad(`${what}.versions is empty`);
  const versions = (k.versions as unknown[]).map((x, i) =>
    parseVersion(d, x, `${what}.versions[${i}]`),
  );
  for (let i = 1; i < versions.length; i++) {
    if (versions[i]!.version <= versions[i - 1]!.version)
      d.bad(`${what}.versions are not ascending`);
  }
  const primary = d.int(k.primary, `${what}.primary`, 1, MAX_VERSION);
  const p = versions.find((x) => x.version === primary);
  if (!p) d.bad(`${what}.primary names no version`);
  if (p.state !== "enabled") d.bad(`${what}.primary is not enabled`);
  const key: KeyDoc = {
    name,
    created: d.date(k.created, `${what}.created`),
    primary,
    min_decryption_version: d.int(
      k.min_decryption_version,
      `${what}.min_decryption_version`,
      1,
      primary,
    ),
    min_encryption_version: d.int(
      k.min_encryption_version,
      `${what}.min_encryption_version`,
      1,
      primary,
    ),
    versions,
  };
  if ("rotation_period" in k)
    key.rotation_period = d.int(
      k.rotation_period,
      `${what}.rotation_period`,
      1,
      MAX_ROTATION_PERIOD,
    );
  for (const field of ["owner", "purpose", "tier"] as const) {
    if (!(field in k)) continue;
    const value = d.str(k[field], `${what}.${field}`);
    if (metadataProblem(field, value) !== null) d.bad(`${what}.${field} is not valid`);
    key[field] = value;
  }
  return key;
}
