/** Client-side data-key cache (issue #4 §8), off by default. */
import { createHash } from "node:crypto";
import { fail } from "../../format/errors.js";
import type { Stanza } from "../../format/stanza.js";
export interface DataKeyCacheOptions {
  /** How long an unwrapped file key may be reused (ms). */
  readonly maxAgeMs: number;
  /** How many unwraps one entry serves, the request that fetched it included. */
  readonly maxUses: number;
}

const liveCaches = new Set<DataKeyCache>();
let exitHook = false;

/**
 * Unwrapped file keys by SHA-256 of the stanza bytes (type and fields, each length-prefixed),
 * each with its age and use count. A hit returns a copy (callers may wipe what they get); an
 * entry past its age or its uses is evicted, its key overwritten with zeros, as is every entry
 * on `clear()` and at process exit. Note: a cached key is released without a new request, so
 * the service's audit log and a revocation or disable take effect only after the entry expires.
 */
export class DataKeyCache {
  private readonly entries = new Map<
    string,
    { key: Buffer; born: number; uses: number; maxAgeMs: number }
  >();

  constructor(
    readonly opts: DataKeyCacheOptions,
    private readonly now: () => number = Date.now,
  ) {
    if (!(Number.isFinite(opts.maxAgeMs) && opts.maxAgeMs > 0))
      fail("E_USAGE", "data-key cache maxAge must be a positive duration");
    if (!(Number.isInteger(opts.maxUses) && opts.maxUses >= 1))
      fail("E_USAGE", "data-key cache maxUses must be a positive integer");
    liveCaches.add(this);
    if (!exitHook) {
      exitHook = true;
      process.once("exit", () => {
        for (const c of liveCaches) c.clear();
      });
    }
  }

  static digest(s: Stanza): string {
    const h = createHash("sha256");
    const len = Buffer.alloc(4);
    for (const part of [Buffer.from(s.type, "utf8"), ...s.fields]) {
      len.writeUInt32BE(part.length);
      h.update(len).update(part);
    }
    return h.digest("hex");
  }

  get size(): number {
    return this.entries.size;
  }

  /** A copy of the cached file key, counting one use; null on a miss (expired entries evicted). */
  get(s: Stanza): Buffer | null {
    const id = DataKeyCache.digest(s);
    const e = this.entries.get(id);
    if (!e) return null;
    if (this.now() - e.born >= e.maxAgeMs || e.uses >= this.opts.maxUses) {
      this.evict(id);
      return null;
    }
    e.uses++;
    const copy = Buffer.from(e.key);
    if (e.uses >= this.opts.maxUses) this.evict(id);
    return copy;
  }

  /**
   * Caches a copy of a freshly unwrapped key (that unwrap is its first use). `serverMaxAgeMs`,
   * the key's tier limit the service sent (`cacheMaxAge`), shortens this cache's maxAge for the
   * entry; 0 means the key may not be cached at all.
   */
  put(s: Stanza, fileKey: Uint8Array, serverMaxAgeMs?: number): void {
    if (this.opts.maxUses <= 1) return;
    const maxAgeMs = Math.min(this.opts.maxAgeMs, serverMaxAgeMs ?? Number.POSITIVE_INFINITY);
    const id = DataKeyCache.digest(s);
    this.evict(id);
    if (!(maxAgeMs > 0)) return;
    this.entries.set(id, { key: Buffer.from(fileKey), born: this.now(), uses: 1, maxAgeMs });
  }

  clear(): void {
    for (const id of [...this.entries.keys()]) this.evict(id);
  }

  /** Wipes the keys and forgets this cache (no longer wiped at exit: nothing left). */
  close(): void {
    this.clear();
    liveCaches.delete(this);
  }

  private evict(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    e.key.fill(0);
    this.entries.delete(id);
  }
}

const DURATION = /^([0-9]{1,9})(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses `maxAge=60s,maxUses=10` (both required; units ms, s, m, h). Empty or `off` = no cache.
 * Anything else is an E_USAGE error naming the variable.
 */
export function parseDataKeyCacheSpec(
  spec: string | undefined,
  what = "TENSORSEAL_SERVER_CACHE",
): DataKeyCacheOptions | null {
  const t = spec?.trim() ?? "";
  if (t === "" || t === "off") return null;
  let maxAgeMs: number | undefined;
  let maxUses: number | undefined;
  for (const part of t.split(",")) {
    const [k, v, ...rest] = part.trim().split("=");
    const bad = () =>
      fail(
        "E_USAGE",
        `${what}: invalid entry ${JSON.stringify(part)}: expected maxAge=DURATION (e.g. 60s, 500ms, 5m),maxUses=N`,
      );
    if (v === undefined || rest.length > 0) bad();
    if (k === "maxAge" && maxAgeMs === undefined) {
      const m = DURATION.exec(v as string);
      if (!m) bad();
      maxAgeMs = Number(m?.[1]) * (UNIT_MS[m?.[2] as string] as number);
      if (maxAgeMs <= 0) bad();
    } else if (k === "maxUses" && maxUses === undefined) {
      if (!/^[1-9][0-9]{0,8}$/.test(v as string)) bad();
      maxUses = Number(v);
    } else bad();
  }
  if (maxAgeMs === undefined || maxUses === undefined)
    fail("E_USAGE", `${what}: both maxAge and maxUses are required, e.g. maxAge=60s,maxUses=10`);
  return { maxAgeMs, maxUses };
}

/** The cache TENSORSEAL_SERVER_CACHE asks for, or null (the default: no caching). */
export function dataKeyCacheFromEnv(
  env = process.env.TENSORSEAL_SERVER_CACHE,
): DataKeyCache | null {
  const o = parseDataKeyCacheSpec(env);
  return o ? new DataKeyCache(o) : null;
}

// ---- Attestation-bound release (docs/SERVICE.md, "Attested release") ----
