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
} from "../../keys/service-client.js";
import { ServiceError } from "../errors.js";
import type { ServerState } from "../state.js";
import type { KeyRepo, KeyRow } from "./repo.js";
import { openSecret, sealSecret } from "./sealing.js";

export const KEY_NAME_PATTERN = "^[A-Za-z0-9._-]{1,128}$";
const NAME_RE = new RegExp(KEY_NAME_PATTERN);

export interface Unwrapped {
  fileKey: Buffer;
  name: string;
  version: number;
}

export class KeyService {
  private readonly materials = new Map<string, Buffer>();
  private readonly primaries = new Map<string, { version: number; at: number }>();

  constructor(
    private readonly repo: KeyRepo,
    private readonly state: ServerState,
    private readonly primaryTtlMs = 1000,
  ) {}

  get serverId(): string {
    return this.state.serverId;
  }

  async create(name: string): Promise<KeyRow> {
    checkName(name);
    const material = randomBytes(32);
    const sealed = sealSecret(this.state.root.sealing, this.serverId, name, 1, material);
    material.fill(0);
    if (!(await this.repo.insertKey(name, new Date().toISOString(), sealed))) {
      throw new ServiceError(409, "conflict", `key ${name} already exists: rotate it instead`);
    }
    return this.show(name);
  }

  async rotate(name: string): Promise<KeyRow> {
    checkName(name);
    const v = await this.repo.addVersion(name, new Date().toISOString(), (version) => {
      const material = randomBytes(32);
      try {
        return sealSecret(this.state.root.sealing, this.serverId, name, version, material);
      } finally {
        material.fill(0);
      }
    });
    if (v === null) throw new ServiceError(404, "not_found", `no key named ${name}`);
    this.primaries.delete(name);
    return this.show(name);
  }

  list(): Promise<KeyRow[]> {
    return this.repo.list();
  }

  private async show(name: string): Promise<KeyRow> {
    const k = (await this.repo.list()).find((x) => x.name === name);
    if (!k) throw new ServiceError(404, "not_found", `no key named ${name}`);
    return k;
  }

  /** Wraps a writer's file key under the primary version of `name`. */
  async wrap(name: string, fileKey: Uint8Array): Promise<{ stanza: Stanza; version: number }> {
    const version = await this.primary(name);
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
      throw new ServiceError(400, "bad_request", "not a service stanza");
    const p = parseServiceStanza(stanza);
    if (p.serverId !== this.serverId)
      throw new ServiceError(404, "not_mine", "stanza of another key service");
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

  private async primary(name: string): Promise<number> {
    checkName(name);
    const c = this.primaries.get(name);
    if (c && Date.now() - c.at < this.primaryTtlMs) return c.version;
    const v = await this.repo.primary(name);
    if (v === null) throw new ServiceError(404, "not_found", `no key named ${name}`);
    this.primaries.set(name, { version: v, at: Date.now() });
    return v;
  }

  private async material(name: string, version: number): Promise<Buffer | null> {
    const id = `${name}\0${version}`;
    const hit = this.materials.get(id);
    if (hit) return hit;
    const row = await this.repo.sealed(name, version);
    if (!row || row.state !== "enabled") return null;
    const m = openSecret(this.state.root.sealing, this.serverId, name, version, row.sealed);
    this.materials.set(id, m);
    return m;
  }

  /** Wipes cached material (server shutdown). */
  close(): void {
    for (const m of this.materials.values()) m.fill(0);
    this.materials.clear();
  }
}

function checkName(name: string): void {
  if (!NAME_RE.test(name))
    throw new ServiceError(400, "bad_request", `key name must match ${KEY_NAME_PATTERN}`);
}
