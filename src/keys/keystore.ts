/**
 * The embedded default keystore: named key-encryption keys (KEKs) with versions and a lifecycle
 * (keystore-lifecycle.ts), each version's material sealed under a 256-bit root key, the whole
 * file MACed with a key derived from the root (keystore-store.ts). The root is unlocked by a
 * passphrase or supplied by a root key file (root-key.ts), and can be split M-of-N
 * (root-shares.ts), recovered and rotated.
 *
 * Usage counters: before a stanza is released, its wrap is counted durably. To avoid one file
 * write per wrap, a process reserves a block of wraps (1, 2, 4, … up to 4096) in one write and
 * hands them out from memory; `flush()` gives back what it did not use. A crash loses no count
 * (the file over-counts by at most the unused block).
 */

import { type BigIntStats, statSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { fail } from "../format/errors.js";
import { randomBytes } from "../format/primitives.js";
import type { Identity, Recipient, Stanza } from "../format/stanza.js";
import { KEK_STANZA, parseKekStanza, unwrapKek, wrapKek } from "./kek.js";
import {
  KEY_NAME_PATTERN,
  KEYSTORE_FORMAT,
  KEYSTORE_VERSION,
  type KeyDoc,
  MAX_VERSION,
  type VersionState,
} from "./keystore-doc.js";
import {
  ensurePrivateDir,
  keystoreExists,
  keystorePath,
  withLock,
  writeKeystoreFile,
} from "./keystore-file.js";
import * as lc from "./keystore-lifecycle.js";
import {
  type Body,
  type KeystoreUnlock,
  load,
  type Materials,
  resealAll,
  rootDocFor,
  sealMaterial,
  serialise,
  wipe,
} from "./keystore-store.js";
import { generateRootKey, readRootKeyFile, writeNewRootKeyFile } from "./root-key.js";
import { type RootShare, splitRootKey } from "./root-shares.js";

export type { KeySettings, UsePurpose } from "./keystore-lifecycle.js";
export type { KeystoreUnlock };

export interface KeystoreOptions {
  /** The clock for lifecycle decisions (tests inject one). Default: the system clock. */
  readonly now?: () => Date;
  /** Wraps per version before a forced rotation (≤ 2^31, the default); lower it for tests. */
  readonly wrapLimit?: number;
}

/** Where a new root goes: sealed by a passphrase, or written to a new root key file. */
export type NewRoot = { passphrase: string; workFactor?: number } | { newRootKeyFile: string };

export interface KeyVersionInfo {
  readonly version: number;
  readonly created: string;
  readonly state: VersionState;
  readonly wraps: number;
  readonly destroyAfter?: string;
  readonly destroyed?: string;
}

/** Metadata only: never material. */
export interface KeyInfo {
  readonly name: string;
  readonly created: string;
  readonly primaryVersion: number;
  readonly minDecryptionVersion: number;
  readonly minEncryptionVersion: number;
  /** Seconds, or null without automatic rotation. */
  readonly rotationPeriod: number | null;
  /** Governance metadata set with `keys set --owner --purpose --tier` (absent when unset). */
  readonly owner?: string;
  readonly purpose?: string;
  readonly tier?: string;
  readonly versions: readonly KeyVersionInfo[];
}

interface Lease {
  version: number;
  remaining: number;
  nextBlock: number;
}
const MAX_LEASE_BLOCK = 4096;

/** $TENSORSEAL_HOME, else ~/.tensorseal. */
export function defaultHome(): string {
  const env = process.env.TENSORSEAL_HOME;
  return env && env.length > 0 ? resolve(env) : join(homedir(), ".tensorseal");
}

/** What `keys list` shows of a key (public metadata, no key material). */
export function keyInfo(k: KeyDoc): KeyInfo {
  return {
    name: k.name,
    created: k.created,
    primaryVersion: k.primary,
    minDecryptionVersion: k.min_decryption_version,
    minEncryptionVersion: k.min_encryption_version,
    rotationPeriod: k.rotation_period ?? null,
    ...(k.owner !== undefined ? { owner: k.owner } : {}),
    ...(k.purpose !== undefined ? { purpose: k.purpose } : {}),
    ...(k.tier !== undefined ? { tier: k.tier } : {}),
    versions: k.versions.map((v) => ({
      version: v.version,
      created: v.created,
      state: v.state,
      wraps: v.wraps,
      ...(v.destroy_after ? { destroyAfter: v.destroy_after } : {}),
      ...(v.destroyed ? { destroyed: v.destroyed } : {}),
    })),
  };
}

function newRootUnlock(to: NewRoot): KeystoreUnlock {
  return "newRootKeyFile" in to ? { rootKeyFile: to.newRootKeyFile } : to;
}

export class Keystore {
  private readonly now: () => Date;
  private readonly wrapLimit: number;
  private readonly leases = new Map<string, Lease>();
  private queue: Promise<unknown> = Promise.resolve();
  /** keystore.json as last read or written (see refreshIfChanged). */
  private seen: string | null = null;
  private closed = false;

  private constructor(
    readonly home: string,
    private root: Buffer,
    private body: Body,
    private materials: Materials,
    opts: KeystoreOptions = {},
  ) {
    this.now = opts.now ?? (() => new Date());
    const limit = opts.wrapLimit ?? lc.DEFAULT_WRAP_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > lc.DEFAULT_WRAP_LIMIT) {
      fail("E_USAGE", `wrap limit must be an integer from 1 to 2^31, got ${limit}`);
    }
    this.wrapLimit = limit;
  }

  /** Creates a new, empty keystore in `home`; refuses to replace an existing one. */
  static async init(
    home: string,
    unlock: KeystoreUnlock,
    opts: KeystoreOptions = {},
  ): Promise<Keystore> {
    await ensurePrivateDir(home);
    return withLock(home, async () => {
      if (await keystoreExists(home)) {
        fail(
          "E_KEYSTORE",
          `a keystore already exists in ${home}: use it, or choose another TENSORSEAL_HOME (replacing it would lose its keys)`,
        );
      }
      const root =
        "rootKeyFile" in unlock ? await readRootKeyFile(unlock.rootKeyFile) : generateRootKey();
      const body: Body = {
        format: KEYSTORE_FORMAT,
        version: KEYSTORE_VERSION,
        id: randomBytes(16).toString("hex"),
        root: await rootDocFor(root, unlock),
        keys: [],
      };
      await writeKeystoreFile(home, serialise(root, body));
      return new Keystore(home, root, body, new Map(), opts);
    });
  }

  static async open(
    home: string,
    unlock: KeystoreUnlock,
    opts: KeystoreOptions = {},
  ): Promise<Keystore> {
    const seen = await fileStamp(home);
    const { root, body, materials } = await load(home, null, unlock);
    const ks = new Keystore(home, root, body, materials, opts);
    ks.seen = seen;
    return ks;
  }

  /**
   * Recovery: opens the keystore with a root key rebuilt from shares (verified against the
   * file's MAC before anything is written), then re-seals it as `to` says.
   */
  static async recover(
    home: string,
    root: Buffer,
    to: NewRoot,
    opts: KeystoreOptions = {},
  ): Promise<Keystore> {
    const loaded = await load(home, root, undefined, () =>
      fail(
        "E_KEYSTORE",
        `the recovered root key does not match the keystore in ${home} (shares of another keystore or of an older root, or a wrong combination): nothing was written`,
      ),
    );
    const ks = new Keystore(home, root, loaded.body, loaded.materials, opts);
    if ("newRootKeyFile" in to) await writeNewRootKeyFile(to.newRootKeyFile, root);
    await ks.mutate(() => {}, { root, unlock: newRootUnlock(to) });
    return ks;
  }

  /** Stable identifier of this keystore (named in root shares). */
  get id(): string {
    return this.body.id;
  }

  /** Creates key `name` at version 1. */
  async createKey(name: string): Promise<KeyInfo> {
    if (!KEY_NAME_PATTERN.test(name)) {
      fail(
        "E_USAGE",
        `key name ${JSON.stringify(name)} must be 1..128 characters of [A-Za-z0-9._-]`,
      );
    }
    await this.mutate((body, materials) => {
      if (body.keys.some((k) => k.name === name)) {
        fail(
          "E_KEYSTORE",
          `key ${name} already exists: rotate it with \`tensorseal keys rotate ${name}\``,
        );
      }
      const now = this.now().toISOString();
      const material = randomBytes(32);
      materials.set(name, new Map([[1, material]]));
      body.keys.push({
        name,
        created: now,
        primary: 1,
        min_decryption_version: 1,
        min_encryption_version: 1,
        versions: [
          {
            version: 1,
            created: now,
            state: "enabled",
            wraps: 0,
            ...sealMaterial(this.root, name, 1, material),
          },
        ],
      });
      body.keys.sort((a, b) => (a.name < b.name ? -1 : 1));
    });
    return this.showKey(name);
  }

  /** Adds a new version of `name` and makes it primary; old versions still unwrap. */
  async rotateKey(name: string): Promise<KeyInfo> {
    await this.mutate((body, materials) => this.addVersion(this.keyIn(body, name), materials));
    return this.showKey(name);
  }

  /** Rotates every key whose rotation period has elapsed since its primary was created. */
  async rotateDue(): Promise<string[]> {
    const rotated: string[] = [];
    await this.mutate((body, materials) => {
      rotated.length = 0;
      for (const k of body.keys) {
        if (!lc.rotationDue(k, this.now())) continue;
        this.addVersion(k, materials);
        rotated.push(k.name);
      }
    });
    return rotated;
  }

  /** min_decryption_version, min_encryption_version, rotation period. */
  async setKey(name: string, settings: lc.KeySettings): Promise<KeyInfo> {
    await this.mutate((body) => lc.applySettings(this.keyIn(body, name), settings));
    return this.showKey(name);
  }

  async disableVersion(name: string, version: number): Promise<KeyInfo> {
    await this.mutate((body) => lc.disableVersion(this.keyIn(body, name), version));
    return this.showKey(name);
  }

  async enableVersion(name: string, version: number): Promise<KeyInfo> {
    await this.mutate((body) => lc.enableVersion(this.keyIn(body, name), version));
    return this.showKey(name);
  }

  /** Schedules destruction after `days` (default 7); a purge after that erases the material. */
  async scheduleDestroy(
    name: string,
    version: number,
    days = lc.DEFAULT_DESTROY_DAYS,
  ): Promise<KeyInfo> {
    await this.mutate((body) =>
      lc.scheduleDestroy(this.keyIn(body, name), version, this.now(), days),
    );
    return this.showKey(name);
  }

  async cancelDestroy(name: string, version: number): Promise<KeyInfo> {
    await this.mutate((body) => lc.cancelDestroy(this.keyIn(body, name), version));
    return this.showKey(name);
  }

  /** Destroys versions whose waiting period has passed (every mutation also does this). */
  async purge(): Promise<{ name: string; version: number }[]> {
    return (await this.mutate(() => {})).purged;
  }

  listKeys(): KeyInfo[] {
    return this.body.keys.map(keyInfo);
  }

  showKey(name: string): KeyInfo {
    return keyInfo(this.key(name));
  }

  primaryVersion(name: string): number {
    return this.key(name).primary;
  }

  /**
   * Wraps under the primary version of `name`, as it is at each wrap. Refuses (E_KEY_STATE) when
   * the primary is not enabled or below min_encryption_version. Each wrap is counted durably
   * before its stanza is returned; at the wrap limit the key is rotated first.
   */
  recipient(name: string): Recipient {
    lc.checkEncryptable(this.key(name));
    return {
      id: `kek:${name}`,
      wrap: async (fileKey) => {
        const { version, material } = await this.serial(() => this.takeWrap(name));
        try {
          return wrapKek({ name, version }, material, fileKey);
        } finally {
          material.fill(0);
        }
      },
      matches: (s) => s.type === KEK_STANZA && parseKekStanza(s).name === name,
    };
  }

  /**
   * Unwraps kek stanzas of this keystore's keys; null for other keys and versions. A version
   * whose state forbids `purpose` is refused with E_KEY_STATE (never a silent null), so the
   * caller can say why; unlockFileKey still tries the file's other stanzas.
   */
  identity(opts: { purpose?: lc.UsePurpose } = {}): Identity {
    const purpose = opts.purpose ?? "decrypt";
    return {
      id: `keystore:${this.home}`,
      unwrap: async (s: Stanza) => {
        if (s.type !== KEK_STANZA) return null;
        const ref = parseKekStanza(s);
        // A version created or a state changed by another process since this was read.
        await this.serial(() => this.refreshIfChanged());
        const k = this.body.keys.find((x) => x.name === ref.name);
        const v = k && lc.findVersion(k, ref.version);
        if (!k || !v) return null;
        const why = lc.refusal(k, v, purpose);
        if (why) fail("E_KEY_STATE", why);
        const kek = this.materials.get(ref.name)?.get(ref.version);
        return kek ? unwrapKek(s, kek) : null;
      },
    };
  }

  /** Splits the root key into `shares` shares, any `threshold` of which rebuild it. */
  async splitRoot(shares: number, threshold: number): Promise<RootShare[]> {
    return splitRootKey(this.root, this.body.id, shares, threshold);
  }

  /** A new root key; every version's material is re-sealed under it in one atomic write. */
  async rotateRoot(to: NewRoot): Promise<void> {
    const root = generateRootKey();
    if ("newRootKeyFile" in to) await writeNewRootKeyFile(to.newRootKeyFile, root);
    await this.mutate(() => {}, { root, unlock: newRootUnlock(to) });
  }

  /** Gives back reserved but unused wraps (one write). Call before close() when done. */
  async flush(): Promise<void> {
    await this.serial(async () => {
      const open = [...this.leases].filter(([, l]) => l.remaining > 0);
      if (open.length === 0 || this.body.keys.length === 0) return;
      await this.mutate((body) => {
        for (const [name, l] of open) {
          const v = body.keys
            .find((k) => k.name === name)
            ?.versions.find((x) => x.version === l.version);
          if (v && v.wraps >= l.remaining) v.wraps -= l.remaining;
        }
      });
      this.leases.clear();
    });
  }

  /** Wipes the root key and all material from memory; the object is unusable afterwards. */
  close(): void {
    this.closed = true;
    this.root.fill(0);
    wipe(this.materials);
    this.body = { ...this.body, keys: [] };
    this.leases.clear();
  }

  private addVersion(k: KeyDoc, materials: Materials): void {
    const version = k.versions[k.versions.length - 1]!.version + 1;
    if (version > MAX_VERSION) fail("E_KEYSTORE", `key ${k.name} has run out of version numbers`);
    const material = randomBytes(32);
    materials.get(k.name)!.set(version, material);
    k.versions.push({
      version,
      created: this.now().toISOString(),
      state: "enabled",
      wraps: 0,
      ...sealMaterial(this.root, k.name, version, material),
    });
    k.primary = version;
  }

  /**
   * Re-reads keystore.json (authenticated with the root key) and adopts it: a long-running
   * process then wraps under a primary rotated elsewhere and opens versions created since.
   */
  async refresh(): Promise<void> {
    await this.serial(() => this.adoptFile());
  }

  /** One stat per wrap or unwrap: re-read only when another process rewrote the file. */
  private async refreshIfChanged(): Promise<void> {
    if (this.closed) return; // it holds nothing any more: every unwrap is null, wraps refused
    if ((await fileStamp(this.home)) !== this.seen) await this.adoptFile();
  }

  private async adoptFile(): Promise<void> {
    const seen = await fileStamp(this.home);
    const fresh = await load(this.home, this.root);
    wipe(this.materials);
    this.body = fresh.body;
    this.materials = fresh.materials;
    this.seen = seen;
  }

  /** One wrap of the primary: from the lease, or after reserving a new block durably. */
  private async takeWrap(name: string): Promise<{ version: number; material: Buffer }> {
    await this.refreshIfChanged(); // rotated elsewhere: the lease's version is no longer primary
    let lease = this.leases.get(name);
    if (!lease || lease.remaining === 0 || lease.version !== this.key(name).primary) {
      const old = lease;
      await this.mutate((body, materials) => {
        const k = this.keyIn(body, name);
        if (old && old.remaining > 0) {
          const v = lc.findVersion(k, old.version);
          if (v && v.wraps >= old.remaining) v.wraps -= old.remaining;
        }
        if (lc.versionOf(k, k.primary).wraps >= this.wrapLimit) this.addVersion(k, materials);
        const p = lc.checkEncryptable(k);
        const block = Math.min(old?.nextBlock ?? 1, this.wrapLimit - p.wraps);
        p.wraps += block;
        lease = {
          version: p.version,
          remaining: block,
          nextBlock: Math.min(block * 2, MAX_LEASE_BLOCK),
        };
      });
      this.leases.set(name, lease!);
    }
    const l = lease!;
    l.remaining--;
    return { version: l.version, material: Buffer.from(this.materials.get(name)!.get(l.version)!) };
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  private key(name: string): KeyDoc {
    return this.keyIn(this.body, name);
  }

  private keyIn(body: Body, name: string): KeyDoc {
    return body.keys.find((k) => k.name === name) ?? this.unknown(name);
  }

  private unknown(name: string): never {
    return fail(
      "E_KEYSTORE",
      `no key named ${JSON.stringify(name)} in the keystore in ${this.home}: create it with \`tensorseal keys create NAME\` or list keys with \`tensorseal keys list\``,
    );
  }

  /**
   * Locked read-modify-write: reload the file (another process may have changed it), destroy
   * versions whose waiting period has passed, apply `change` to a copy, write atomically, and
   * only then adopt the new state. Any throw before the rename leaves keystore.json
   * byte-identical. With `rekey`, the file is re-sealed under a new root (and root document).
   */
  private async mutate(
    change: (body: Body, materials: Materials) => void,
    rekey?: { root: Buffer; unlock: KeystoreUnlock },
  ): Promise<{ purged: { name: string; version: number }[] }> {
    return withLock(this.home, async () => {
      const fresh = await load(this.home, this.root);
      const purged: { name: string; version: number }[] = [];
      let body: Body;
      try {
        body = structuredClone(fresh.body);
        for (const k of body.keys) {
          for (const v of lc.purgeDue(k, this.now())) {
            fresh.materials.get(k.name)?.get(v.version)?.fill(0);
            fresh.materials.get(k.name)?.delete(v.version);
            purged.push({ name: k.name, version: v.version });
          }
        }
        change(body, fresh.materials);
        let root = this.root;
        if (rekey) {
          root = rekey.root;
          body.root = await rootDocFor(root, rekey.unlock);
          resealAll(root, body, fresh.materials);
        }
        await writeKeystoreFile(this.home, serialise(root, body));
        this.seen = await fileStamp(this.home);
        if (root !== this.root) {
          this.root.fill(0);
          this.root = root;
        }
      } catch (e) {
        wipe(fresh.materials);
        throw e;
      }
      wipe(this.materials);
      this.body = body;
      this.materials = fresh.materials;
      return { purged };
    });
  }
}

/** What changes when keystore.json is rewritten (an atomic rename: a new inode), or null. */
async function fileStamp(home: string): Promise<string | null> {
  let st: BigIntStats | undefined;
  try {
    st = statSync(keystorePath(home), { bigint: true, throwIfNoEntry: false });
  } catch {
    st = undefined;
  }
  return st ? `${st.ino}:${st.mtimeNs}:${st.size}` : null;
}
