/**
 * The embedded default keystore: named key-encryption keys (KEKs) with versions, each version's
 * material sealed under a 256-bit root key, the whole file MACed with a key derived from the
 * root. The root is unlocked by a passphrase or supplied by a root key file (see root-key.ts).
 *
 *   version material: AES-256-GCM(root, random nonce,
 *                     aad = "tensorseal.dev/v1 keystore kek\0" || name || u32be(version))
 *   mac: HMAC-SHA-256(HKDF-Expand-SHA-512(root, "tensorseal.dev/v1 keystore mac", 32),
 *                     canonicalJson(document without "mac"))
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { fail } from "../format/errors.js";
import type { Identity, Recipient } from "../format/stanza.js";
import { canonicalJson } from "./canonical-json.js";
import { kekIdentity, kekRecipient } from "./kek.js";
import {
  b64,
  KEY_NAME_PATTERN,
  KEYSTORE_FORMAT,
  KEYSTORE_VERSION,
  type KeyDoc,
  type KeystoreDoc,
  MAX_VERSION,
  parseDocument,
  parseEnvelope,
  type RootDoc,
} from "./keystore-doc.js";
import {
  ensurePrivateDir,
  keystoreExists,
  keystorePath,
  readKeystoreFile,
  withLock,
  writeKeystoreFile,
} from "./keystore-file.js";
import { DEFAULT_WORK_FACTOR } from "./passphrase.js";
import {
  checkMatches,
  generateRootKey,
  keyCheckValue,
  keystoreMacKey,
  openRootWithPassphrase,
  readRootKeyFile,
  sealRootWithPassphrase,
} from "./root-key.js";

export type KeystoreUnlock = { passphrase: string; workFactor?: number } | { rootKeyFile: string };

export interface KeyVersionInfo {
  readonly version: number;
  readonly created: string;
}

/** Metadata only: never material. */
export interface KeyInfo {
  readonly name: string;
  readonly created: string;
  readonly primaryVersion: number;
  readonly versions: readonly KeyVersionInfo[];
}

type Body = Omit<KeystoreDoc, "mac">;
type Materials = Map<string, Map<number, Buffer>>;

const KEK_AAD_LABEL = Buffer.from("tensorseal.dev/v1 keystore kek\0", "ascii");

/** $TENSORSEAL_HOME, else ~/.tensorseal. */
export function defaultHome(): string {
  const env = process.env.TENSORSEAL_HOME;
  return env && env.length > 0 ? resolve(env) : join(homedir(), ".tensorseal");
}

function kekAad(name: string, version: number): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32BE(version);
  return Buffer.concat([KEK_AAD_LABEL, Buffer.from(name, "utf8"), v]);
}

function sealMaterial(root: Buffer, name: string, version: number, material: Buffer) {
  const nonce = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", root, nonce).setAAD(kekAad(name, version));
  const ct = Buffer.concat([c.update(material), c.final(), c.getAuthTag()]);
  return { nonce: b64(nonce), material: b64(ct) };
}

function openMaterial(root: Buffer, name: string, version: number, nonce: string, sealed: string) {
  const ct = Buffer.from(sealed, "base64");
  const d = createDecipheriv("aes-256-gcm", root, Buffer.from(nonce, "base64"));
  d.setAAD(kekAad(name, version)).setAuthTag(ct.subarray(32));
  try {
    return Buffer.concat([d.update(ct.subarray(0, 32)), d.final()]);
  } catch {
    // Unreachable unless the MAC check was passed by a forged file: fail closed anyway.
    return fail(
      "E_KEYSTORE",
      `key ${name} v${version} does not decrypt: restore the keystore from a backup`,
    );
  }
}

function computeMac(root: Buffer, body: unknown): Buffer {
  const key = keystoreMacKey(root);
  const mac = createHmac("sha256", key).update(canonicalJson(body), "utf8").digest();
  key.fill(0);
  return mac;
}

function serialise(root: Buffer, body: Body): Buffer {
  const doc: KeystoreDoc = { ...body, mac: b64(computeMac(root, body)) };
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`, "utf8");
}

function info(k: KeyDoc): KeyInfo {
  return {
    name: k.name,
    created: k.created,
    primaryVersion: k.primary,
    versions: k.versions.map((v) => ({ version: v.version, created: v.created })),
  };
}

function missing(home: string): never {
  return fail("E_KEYSTORE", `no keystore in ${home}: run \`tensorseal init\``);
}

async function unlockRoot(home: string, root: RootDoc, unlock: KeystoreUnlock): Promise<Buffer> {
  if (root.kind === "passphrase") {
    if (!("passphrase" in unlock)) {
      fail(
        "E_KEYSTORE",
        `the keystore in ${home} is sealed by a passphrase, not a root key file: unset TENSORSEAL_ROOT_KEY_FILE and give the passphrase`,
      );
    }
    const key = await openRootWithPassphrase(
      {
        logN: root.logN,
        r: root.r,
        p: root.p,
        salt: Buffer.from(root.salt, "base64"),
        nonce: Buffer.from(root.nonce, "base64"),
        sealed: Buffer.from(root.sealed, "base64"),
      },
      unlock.passphrase,
    );
    return key ?? fail("E_KEYSTORE", `wrong passphrase for the keystore in ${home}: try again`);
  }
  if (!("rootKeyFile" in unlock)) {
    fail(
      "E_KEYSTORE",
      `the keystore in ${home} uses a root key file: set TENSORSEAL_ROOT_KEY_FILE to it`,
    );
  }
  const key = await readRootKeyFile(unlock.rootKeyFile);
  if (!checkMatches(key, Buffer.from(root.check, "base64"))) {
    key.fill(0);
    fail(
      "E_KEYSTORE",
      `root key file ${unlock.rootKeyFile} does not match the keystore in ${home}: use the file the keystore was created with`,
    );
  }
  return key;
}

/** Reads, authenticates and decrypts the file with a known root key. */
async function load(home: string, root: Buffer | null, unlock?: KeystoreUnlock) {
  const bytes = (await readKeystoreFile(home)) ?? missing(home);
  const where = keystorePath(home);
  const env = parseEnvelope(bytes, where);
  const key = root ?? (await unlockRoot(home, env.root, unlock!));
  const { mac: _mac, ...rawBody } = env.raw;
  let expected: Buffer | null = null;
  try {
    expected = computeMac(key, rawBody);
  } catch {
    expected = null; // not canonicalisable: cannot have been written by tensorseal
  }
  if (!expected || !timingSafeEqual(expected, env.mac)) {
    if (!root) key.fill(0);
    fail(
      "E_KEYSTORE",
      `keystore.json was modified outside tensorseal (its MAC does not match): restore ${where} from a backup`,
    );
  }
  const doc = parseDocument(env, where);
  const materials: Materials = new Map();
  for (const k of doc.keys) {
    const m = new Map<number, Buffer>();
    for (const v of k.versions)
      m.set(v.version, openMaterial(key, k.name, v.version, v.nonce, v.material));
    materials.set(k.name, m);
  }
  const { mac: _m, ...body } = doc;
  return { root: key, body, materials };
}

function wipe(materials: Materials): void {
  for (const m of materials.values()) for (const b of m.values()) b.fill(0);
  materials.clear();
}

export class Keystore {
  private constructor(
    readonly home: string,
    private root: Buffer,
    private body: Body,
    private materials: Materials,
  ) {}

  /** Creates a new, empty keystore in `home`; refuses to replace an existing one. */
  static async init(home: string, unlock: KeystoreUnlock): Promise<Keystore> {
    await ensurePrivateDir(home);
    return withLock(home, async () => {
      if (await keystoreExists(home)) {
        fail(
          "E_KEYSTORE",
          `a keystore already exists in ${home}: use it, or choose another TENSORSEAL_HOME (replacing it would lose its keys)`,
        );
      }
      let root: Buffer;
      let rootDoc: RootDoc;
      if ("rootKeyFile" in unlock) {
        root = await readRootKeyFile(unlock.rootKeyFile);
        rootDoc = { kind: "key-file", check: b64(keyCheckValue(root)) };
      } else {
        root = generateRootKey();
        const s = await sealRootWithPassphrase(
          root,
          unlock.passphrase,
          unlock.workFactor ?? DEFAULT_WORK_FACTOR,
        );
        rootDoc = {
          kind: "passphrase",
          kdf: "scrypt",
          logN: s.logN,
          r: s.r,
          p: s.p,
          salt: b64(s.salt),
          nonce: b64(s.nonce),
          sealed: b64(s.sealed),
        };
      }
      const body: Body = {
        format: KEYSTORE_FORMAT,
        version: KEYSTORE_VERSION,
        root: rootDoc,
        keys: [],
      };
      await writeKeystoreFile(home, serialise(root, body));
      return new Keystore(home, root, body, new Map());
    });
  }

  static async open(home: string, unlock: KeystoreUnlock): Promise<Keystore> {
    const { root, body, materials } = await load(home, null, unlock);
    return new Keystore(home, root, body, materials);
  }

  /** Creates key `name` at version 1. */
  async createKey(name: string): Promise<KeyInfo> {
    if (!KEY_NAME_PATTERN.test(name)) {
      fail(
        "E_USAGE",
        `key name ${JSON.stringify(name)} must be 1..128 characters of [A-Za-z0-9._-]`,
      );
    }
    return this.mutate(name, (body, materials) => {
      if (body.keys.some((k) => k.name === name)) {
        fail(
          "E_KEYSTORE",
          `key ${name} already exists: rotate it with \`tensorseal keys rotate ${name}\``,
        );
      }
      const now = new Date().toISOString();
      const material = randomBytes(32);
      materials.set(name, new Map([[1, material]]));
      const key: KeyDoc = {
        name,
        created: now,
        primary: 1,
        versions: [{ version: 1, created: now, ...sealMaterial(this.root, name, 1, material) }],
      };
      return { ...body, keys: [...body.keys, key].sort((a, b) => (a.name < b.name ? -1 : 1)) };
    });
  }

  /** Adds a new version of `name` and makes it primary; old versions still unwrap. */
  async rotateKey(name: string): Promise<KeyInfo> {
    return this.mutate(name, (body, materials) => {
      const k = body.keys.find((x) => x.name === name) ?? this.unknown(name);
      const version = k.versions[k.versions.length - 1]!.version + 1;
      if (version > MAX_VERSION) fail("E_KEYSTORE", `key ${name} has run out of version numbers`);
      const material = randomBytes(32);
      materials.get(name)!.set(version, material);
      const now = new Date().toISOString();
      const rotated: KeyDoc = {
        ...k,
        primary: version,
        versions: [
          ...k.versions,
          { version, created: now, ...sealMaterial(this.root, name, version, material) },
        ],
      };
      return { ...body, keys: body.keys.map((x) => (x.name === name ? rotated : x)) };
    });
  }

  listKeys(): KeyInfo[] {
    return this.body.keys.map(info);
  }

  showKey(name: string): KeyInfo {
    return info(this.key(name));
  }

  primaryVersion(name: string): number {
    return this.key(name).primary;
  }

  /** Wraps under the primary version of `name` (a copy of the material, fixed at this call). */
  recipient(name: string): Recipient {
    const k = this.key(name);
    const material = this.materials.get(name)!.get(k.primary)!;
    return kekRecipient({ name, version: k.primary }, Buffer.from(material));
  }

  /** Unwraps kek stanzas of any key and version this keystore holds; null for others. */
  identity(): Identity {
    return kekIdentity(
      `keystore:${this.home}`,
      (ref) => this.materials.get(ref.name)?.get(ref.version) ?? null,
    );
  }

  /** Wipes the root key and all material from memory; the object is unusable afterwards. */
  close(): void {
    this.root.fill(0);
    wipe(this.materials);
    this.body = { ...this.body, keys: [] };
  }

  private key(name: string): KeyDoc {
    return this.body.keys.find((k) => k.name === name) ?? this.unknown(name);
  }

  private unknown(name: string): never {
    return fail(
      "E_KEYSTORE",
      `no key named ${JSON.stringify(name)} in the keystore in ${this.home}: create it with \`tensorseal keys create NAME\` or list keys with \`tensorseal keys list\``,
    );
  }

  /**
   * Locked read-modify-write: reload the file (another process may have changed it), apply
   * `change` to a copy, write atomically, and only then adopt the new state. Any throw before
   * the rename leaves keystore.json byte-identical.
   */
  private async mutate(
    name: string,
    change: (body: Body, materials: Materials) => Body,
  ): Promise<KeyInfo> {
    return withLock(this.home, async () => {
      const fresh = await load(this.home, this.root);
      let body: Body;
      try {
        body = change(fresh.body, fresh.materials);
        await writeKeystoreFile(this.home, serialise(this.root, body));
      } catch (e) {
        wipe(fresh.materials);
        throw e;
      }
      wipe(this.materials);
      this.body = body;
      this.materials = fresh.materials;
      return this.showKey(name);
    });
  }
}
