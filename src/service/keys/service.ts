/**
 * Key operations of the service: create and rotate KEKs, and wrap, generate, unwrap and rewrap
 * file keys in `service` stanzas. KEK material is opened from the database on first use and
 * cached in memory per (name, version) — a version's material never changes; the primary
 * version is re-read after `primaryTtlMs` so a rotation on another replica is picked up.
 */
import { randomBytes } from "node:crypto";
import type { Stanza } from "../../format/stanza.js";
import {
  openServiceStanza,
  parseServiceStanza,
  SERVICE_STANZA,
  sealServiceStanza,
} from "../../keys/service/index.js";
import { isSensitivity, SENSITIVITIES } from "../authz/attributes.js";
import { ServiceError } from "../errors.js";
import { KEY_NAME_PATTERN } from "../patterns.js";
import type { ServerState } from "../state.js";
import { NO_TIERS, type TierPolicy } from "../tiers.js";
import type { KeyMeta, KeyMetadata, KeyRepo, KeyRow } from "./repo.js";
import { openSecret, sealSecret } from "./sealing.js";

export { KEY_NAME_PATTERN };

const NAME_RE = new RegExp(KEY_NAME_PATTERN);

export interface Unwrapped {
  fileKey: Buffer;
  name: string;
  version: number;
}

const DAY_MS = 86_400_000;

/** A lifecycle change the routes audit. */
export type VersionAction = "disable" | "enable" | "schedule-destroy" | "cancel-destroy";

export class KeyService {
  private readonly materials = new Map<string, Buffer>();
  /** Per key: primary, limits and version states, re-read after `metaTtlMs` (other replicas). */
  private readonly metas = new Map<string, { meta: KeyMeta; at: number }>();

  constructor(
    private readonly repo: KeyRepo,
    private readonly state: ServerState,
    private readonly metaTtlMs = 1000,
    /** The clock (Unix ms); injectable so tests can pass a destruction waiting period. */
    readonly now: () => number = Date.now,
    /** Tier minimums (serve --tier-policy): rotation periods checked on create and update. */
    readonly tiers: TierPolicy = NO_TIERS,
  ) {}

  get serverId(): string {
    return this.state.serverId;
  }

  async create(
    name: string,
    m: KeyMetadata = { labels: {}, sensitivity: "unspecified" },
    rotationPeriod?: number | null,
  ): Promise<KeyRow> {
    checkName(name);
    checkSensitivity(m.sensitivity);
    // A key created in a tier with a maximum period gets that period unless it asks for less.
    const period = rotationPeriod ?? this.tiers.of(m.sensitivity)?.rotationPeriod ?? null;
    this.tiers.checkRotation(name, m.sensitivity, period);
    const material = randomBytes(32);
    const sealed = sealSecret(this.state.root.sealing, this.serverId, name, 1, material);
    material.fill(0);
    if (!(await this.repo.insertKey(name, new Date().toISOString(), sealed, m, period))) {
      throw new ServiceError(409, "conflict", `key ${name} already exists: rotate it instead`);
    }
    return this.show(name);
  }

  async rotate(name: string): Promise<KeyRow> {
    const k = await this.rotateFrom(name);
    return k!;
  }

  /**
   * Rotates `name`; with `ifPrimary`, only while that is still its primary version (null when
   * another replica rotated it first: `POST /v1/rotate-due` on two replicas makes one version).
   */
  async rotateFrom(name: string, ifPrimary?: number): Promise<KeyRow | null> {
    checkName(name);
    const seal = (version: number) => {
      const material = randomBytes(32);
      try {
        return sealSecret(this.state.root.sealing, this.serverId, name, version, material);
      } finally {
        material.fill(0);
      }
    };
    const v = await this.repo.addVersion(name, new Date().toISOString(), seal, ifPrimary);
    if (v === null) throw new ServiceError(404, "not_found", `no key named ${name}`);
    this.metas.delete(name);
    return v === 0 ? null : this.show(name);
  }

  list(): Promise<KeyRow[]> {
    return this.repo.list();
  }

  /** Keys whose primary version has reached their rotation period at `now()`, by name. */
  async rotationDue(): Promise<KeyRow[]> {
    const now = this.now();
    return (await this.repo.list()).filter(
      (k) => k.rotationDue !== null && Date.parse(k.rotationDue) <= now,
    );
  }

  async show(name: string): Promise<KeyRow> {
    checkName(name);
    const k = (await this.repo.list(name))[0];
    if (!k) throw new ServiceError(404, "not_found", `no key named ${name}`);
    return k;
  }

  /** Wraps a writer's file key under the primary version of `name`. */
  async wrap(name: string, fileKey: Uint8Array): Promise<{ stanza: Stanza; version: number }> {
    const m = await this.meta(name);
    const version = m.primary;
    const st = m.versions.get(version)?.state;
    if (st !== "enabled")
      throw new ServiceError(
        409,
        "conflict",
        `key ${name} primary version ${version} is ${st}: rotate the key (POST /v1/keys/${name}/rotate) to wrap under a new version`,
      );
    if (version < m.minEncryption)
      throw new ServiceError(
        409,
        "conflict",
        `key ${name} primary version ${version} is below its minimum encryption version ${m.minEncryption}: rotate the key`,
      );
    const kek = await this.material(name, version);
    if (!kek) throw new ServiceError(404, "not_found", `no key named ${name}`);
    return {
      stanza: sealServiceStanza({ serverId: this.serverId, name, version }, kek, fileKey),
      version,
    };
  }

  async generate(name: string): Promise<{ fileKey: Buffer; stanza: Stanza; version: number }> {
    const fileKey = randomBytes(32);
    return { fileKey, ...(await this.wrap(name, fileKey)) };
  }

  /** 404 not_mine for another server's stanza or an unknown key version; 422 when it does not open. */
  async unwrap(stanza: Stanza): Promise<Unwrapped> {
    if (stanza.type !== SERVICE_STANZA)
      throw new ServiceError(422, "unprocessable", "not a service stanza");
    const p = parseServiceStanza(stanza);
    if (p.serverId !== this.serverId)
      throw new ServiceError(404, "not_mine", "stanza of another key service");
    await this.usable(p.name, p.version);
    const kek = await this.material(p.name, p.version);
    if (!kek)
      throw new ServiceError(404, "not_mine", `no key ${p.name} v${p.version} on this service`);
    return { fileKey: openServiceStanza(p, kek), name: p.name, version: p.version };
  }

  /** Unwraps and re-wraps under the primary of `to` (default: the stanza's key); FK stays here. */
  async rewrap(
    stanza: Stanza,
    to?: string,
  ): Promise<{ stanza: Stanza; from: Unwrapped; version: number }> {
    const from = await this.unwrap(stanza);
    try {
      const out = await this.wrap(to ?? from.name, from.fileKey);
      return { ...out, from };
    } finally {
      from.fileKey.fill(0);
    }
  }

  /**
   * Refuses (403 version_unavailable, audited as a denial) a version that is disabled,
   * scheduled for destruction, destroyed, or below the key's minimum decryption version; the
   * message names the key, the version and the fix. An unknown key or version is 404 not_mine.
   */
  private async usable(name: string, version: number): Promise<void> {
    let m: KeyMeta;
    try {
      m = await this.meta(name);
    } catch (e) {
      if (e instanceof ServiceError && e.status === 404)
        throw new ServiceError(404, "not_mine", `no key ${name} v${version} on this service`);
      throw e;
    }
    const v = m.versions.get(version);
    if (!v) throw new ServiceError(404, "not_mine", `no key ${name} v${version} on this service`);
    const refuse = (why: string) => {
      throw new ServiceError(403, "version_unavailable", `key ${name} version ${version} ${why}`);
    };
    if (v.state === "destroyed") {
      this.wipe(name, version);
      refuse("was destroyed (its material is erased): files sealed only under it cannot be opened");
    }
    if (v.state === "scheduled")
      refuse(
        `is scheduled for destruction at ${v.destroyAfter}: cancel it (POST /v1/keys/${name}/versions/${version}/cancel-destroy, then enable), and rewrap its files under the primary version (POST /v1/datakeys/rewrap)`,
      );
    if (v.state === "disabled")
      refuse(
        `is disabled: enable it (POST /v1/keys/${name}/versions/${version}/enable) and rewrap its files under the primary version (POST /v1/datakeys/rewrap)`,
      );
    if (version < m.minDecryption)
      refuse(
        `is below the key's minimum decryption version ${m.minDecryption}: lower minDecryptionVersion (PATCH /v1/keys/${name}) and rewrap its files under the primary version (POST /v1/datakeys/rewrap)`,
      );
  }

  /**
   * A plain release (unwrap, batch unwrap) of `u`'s file key: refused (403 tier_violation, the
   * key wiped) when the key's tier requires attestation; else the seconds its tier lets a
   * client cache the key (null: no limit).
   */
  async plainRelease(u: Unwrapped): Promise<number | null> {
    const a = await this.attributes(u.name);
    try {
      this.tiers.checkPlainRelease(u.name, a?.sensitivity ?? "unspecified");
    } catch (e) {
      u.fileKey.fill(0);
      throw e;
    }
    return this.tiers.cacheTtl(a?.sensitivity);
  }

  /** An attested release of `u`'s file key with `kem`: refused (the key wiped) where the tier says post-quantum. */
  async attestedRelease(u: Unwrapped, kem: string): Promise<void> {
    const a = await this.attributes(u.name);
    try {
      this.tiers.checkAttestedKem(u.name, a?.sensitivity ?? "unspecified", kem);
    } catch (e) {
      u.fileKey.fill(0);
      throw e;
    }
  }

  /**
   * A key's labels and sensitivity for authorization (through the 1 s metadata cache, so a
   * change on another replica applies within a second); null for an unknown key.
   */
  async attributes(name: string): Promise<KeyMetadata | null> {
    if (!NAME_RE.test(name)) return null;
    try {
      return (await this.meta(name)).attrs;
    } catch (e) {
      if (e instanceof ServiceError && e.status === 404) return null;
      throw e;
    }
  }

  private async meta(name: string): Promise<KeyMeta> {
    checkName(name);
    const c = this.metas.get(name);
    if (c && Date.now() - c.at < this.metaTtlMs) return c.meta;
    const m = await this.repo.meta(name);
    if (m === null) throw new ServiceError(404, "not_found", `no key named ${name}`);
    for (const [v, x] of m.versions) if (x.state === "destroyed") this.wipe(name, v);
    if (this.metas.size > 10_000) this.metas.clear();
    this.metas.set(name, { meta: m, at: Date.now() });
    return m;
  }

  private wipe(name: string, version: number): void {
    const id = `${name}\0${version}`;
    this.materials.get(id)?.fill(0);
    this.materials.delete(id);
  }

  /** Disable, enable, schedule destruction (after `days`) or cancel it; returns the key. */
  async changeVersion(
    name: string,
    version: number,
    action: VersionAction,
    days = 7,
  ): Promise<{ key: KeyRow; destroyAfter?: string }> {
    const k = await this.show(name);
    if (!k.versions.some((v) => v.version === version))
      throw new ServiceError(404, "not_found", `key ${name} has no version ${version}`);
    const at = new Date(this.now()).toISOString();
    let ok: boolean;
    let destroyAfter: string | undefined;
    let from: string[];
    switch (action) {
      case "disable":
        from = ["enabled"];
        ok = await this.repo.setState(name, version, from, "disabled", at);
        break;
      case "enable":
        from = ["disabled"];
        ok = await this.repo.setState(name, version, from, "enabled", at);
        break;
      case "schedule-destroy":
        if (version === k.primaryVersion)
          throw new ServiceError(
            409,
            "conflict",
            `key ${name} version ${version} is the primary version: rotate the key before destroying it`,
          );
        from = ["enabled", "disabled"];
        destroyAfter = new Date(this.now() + days * DAY_MS).toISOString();
        ok = await this.repo.setState(name, version, from, "scheduled", at, destroyAfter);
        break;
      case "cancel-destroy":
        // Like a cancelled KMS deletion, the version comes back disabled: enable it explicitly.
        from = ["scheduled"];
        ok = await this.repo.setState(name, version, from, "disabled", at);
        break;
    }
    this.metas.delete(name);
    if (!ok) {
      const now = (await this.show(name)).versions.find((v) => v.version === version)?.state;
      throw new ServiceError(
        409,
        "conflict",
        `key ${name} version ${version} is ${now}: ${action} needs a version that is ${from.join(" or ")}`,
      );
    }
    return { key: await this.show(name), ...(destroyAfter ? { destroyAfter } : {}) };
  }

  /**
   * Sets the minimum decryption/encryption versions (each 1..primary; encryption >= decryption)
   * and/or the key's labels (replaced as a whole) and sensitivity.
   */
  async update(
    name: string,
    l: {
      minDecryptionVersion?: number;
      minEncryptionVersion?: number;
      labels?: Record<string, string>;
      sensitivity?: string;
      /** Seconds; null removes the period. */
      rotationPeriod?: number | null;
    },
  ): Promise<KeyRow> {
    const k = await this.show(name);
    if (l.sensitivity !== undefined) checkSensitivity(l.sensitivity);
    // The key as it would be must meet its (possibly new) tier's maximum rotation period.
    this.tiers.checkRotation(
      name,
      l.sensitivity ?? k.sensitivity,
      l.rotationPeriod !== undefined ? l.rotationPeriod : k.rotationPeriod,
    );
    const dec = l.minDecryptionVersion ?? k.minDecryptionVersion;
    // Raising only the decryption floor lifts the encryption floor with it.
    const enc = l.minEncryptionVersion ?? Math.max(k.minEncryptionVersion, dec);
    if (dec > k.primaryVersion || enc > k.primaryVersion)
      throw new ServiceError(
        409,
        "conflict",
        `key ${name}: minimum versions must be at most the primary version ${k.primaryVersion}`,
      );
    if (enc < dec)
      throw new ServiceError(
        409,
        "conflict",
        `key ${name}: minEncryptionVersion (${enc}) must be at least minDecryptionVersion (${dec})`,
      );
    await this.repo.update(name, {
      min_decryption_version: dec,
      min_encryption_version: enc,
      ...(l.labels !== undefined ? { labels: l.labels } : {}),
      ...(l.sensitivity !== undefined ? { sensitivity: l.sensitivity } : {}),
      ...(l.rotationPeriod !== undefined ? { rotation_period: l.rotationPeriod } : {}),
    });
    this.metas.delete(name);
    return this.show(name);
  }

  /**
   * Destroys every scheduled version whose waiting period has passed: `audit` is awaited first
   * (no audit entry, no destruction), then the sealed material row is erased and the cached
   * material wiped. Returns what was destroyed.
   */
  async sweep(
    audit: (d: { key: string; version: number }) => Promise<void>,
  ): Promise<{ key: string; version: number }[]> {
    const now = new Date(this.now()).toISOString();
    const out: { key: string; version: number }[] = [];
    for (const d of await this.repo.due(now)) {
      await audit({ key: d.name, version: d.version });
      if (await this.repo.destroy(d.name, d.version, now)) {
        this.wipe(d.name, d.version);
        this.metas.delete(d.name);
        out.push({ key: d.name, version: d.version });
      }
    }
    return out;
  }

  private async material(name: string, version: number): Promise<Buffer | null> {
    const id = `${name}\0${version}`;
    const hit = this.materials.get(id);
    if (hit) return hit;
    const row = await this.repo.sealed(name, version);
    if (row?.state !== "enabled") return null;
    const m = openSecret(this.state.root.sealing, this.serverId, name, version, row.sealed);
    this.materials.set(id, m);
    return m;
  }

  /**
   * Lends a version's plain material to `use` (key export under dual control) and wipes it
   * after; never cached. Only an enabled or disabled version: a scheduled one is on its way
   * out, a destroyed one has no material.
   */
  async withMaterial<T>(
    name: string,
    version: number,
    use: (kek: Buffer) => Promise<T>,
  ): Promise<T> {
    checkName(name);
    const row = await this.repo.sealed(name, version);
    if (!row) throw new ServiceError(404, "not_found", `key ${name} has no version ${version}`);
    if (row.state !== "enabled" && row.state !== "disabled")
      throw new ServiceError(
        409,
        "conflict",
        `key ${name} version ${version} is ${row.state}: only an enabled or disabled version can be exported`,
      );
    const m = openSecret(this.state.root.sealing, this.serverId, name, version, row.sealed);
    try {
      return await use(m);
    } finally {
      m.fill(0);
    }
  }

  /** Wipes cached material (server shutdown). */
  close(): void {
    for (const m of this.materials.values()) m.fill(0);
    this.materials.clear();
  }
}

function checkSensitivity(s: string): void {
  if (!isSensitivity(s))
    throw new ServiceError(
      400,
      "bad_request",
      `sensitivity must be one of ${SENSITIVITIES.join(", ")}`,
    );
}

function checkName(name: string): void {
  if (!NAME_RE.test(name))
    throw new ServiceError(400, "bad_request", `key name must match ${KEY_NAME_PATTERN}`);
}
