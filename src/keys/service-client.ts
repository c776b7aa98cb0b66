/**
 * The `service` stanza (spec/FORMAT.md §3.6) and the client side of the TensorSeal key service:
 * a Recipient and an Identity that call the service over HTTPS. Only the service holds the KEK
 * versions; the stanza names the service (its server id), the key and the version.
 *
 *   fields = [serverId (UTF-8, 1..128), name (UTF-8, 1..128), version u32, nonce 12, wrapped 48]
 *   aad    = "tensorseal.dev/v1 service\0" || u16(len(serverId)) || serverId
 *            || u16(len(name)) || name || u32(version)
 *
 * Configuration: TENSORSEAL_SERVER (base URL), TENSORSEAL_SERVER_CA (PEM file of the CA to
 * trust, e.g. the `serve --dev` CA), TENSORSEAL_SERVER_TOKEN or TENSORSEAL_SERVER_TOKEN_FILE
 * (bearer token), TENSORSEAL_SERVER_CERT and TENSORSEAL_SERVER_KEY (PEM client certificate and
 * key for mTLS; a SPIFFE ID certificate authenticates without a token). The token is sent only
 * in the Authorization header, never logged or echoed.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { Aes256Gcm, CipherSuite, HkdfSha256 } from "@hpke/core";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";
import { ByteWriter } from "../format/bytes.js";
import { fail, TensorSealError } from "../format/errors.js";
import { expectFields, type Identity, type Recipient, type Stanza } from "../format/stanza.js";
import { generateX25519KeyPair } from "./x25519-key.js";

export const SERVICE_STANZA = "service";
const AAD_LABEL = "tensorseal.dev/v1 service\0";

export interface ServiceKeyRef {
  readonly serverId: string;
  readonly name: string;
  readonly version: number;
}

export interface ServiceStanza extends ServiceKeyRef {
  readonly nonce: Buffer;
  readonly wrapped: Buffer;
}

function utf8Field(b: Buffer, what: string): string {
  const s = b.toString("utf8");
  if (b.length === 0 || b.length > 128 || !Buffer.from(s, "utf8").equals(b)) {
    fail("E_MALFORMED", `service stanza ${what} must be 1..128 bytes of UTF-8`);
  }
  return s;
}

export function serviceAad(ref: ServiceKeyRef): Buffer {
  return new ByteWriter()
    .raw(Buffer.from(AAD_LABEL, "ascii"))
    .str16(ref.serverId)
    .str16(ref.name)
    .u32(ref.version)
    .finish();
}

export function parseServiceStanza(s: Stanza): ServiceStanza {
  if (s.type !== SERVICE_STANZA) fail("E_MALFORMED", `not a service stanza: ${s.type}`);
  const [id, name, version, nonce, wrapped] = expectFields(s, [null, null, 4, 12, 48]) as [
    Buffer,
    Buffer,
    Buffer,
    Buffer,
    Buffer,
  ];
  const v = version.readUInt32BE();
  if (v === 0) fail("E_MALFORMED", "service stanza version must be at least 1");
  return {
    serverId: utf8Field(id, "server id"),
    name: utf8Field(name, "key name"),
    version: v,
    nonce,
    wrapped,
  };
}

/**
 * "sha256:<hex>" of a service stanza's wrapped file key (the AES-GCM output, 48 bytes): what
 * `seal --register` records with an artifact and what the service looks the artifact up by
 * when it unwraps the stanza (docs/SERVICE.md, "Artifact-aware authorization").
 */
export function serviceStanzaDigest(s: Stanza): string {
  return `sha256:${createHash("sha256").update(parseServiceStanza(s).wrapped).digest("hex")}`;
}

/** Seals FK under one server-held KEK version (server side). */
export function sealServiceStanza(
  ref: ServiceKeyRef,
  kek: Uint8Array,
  fileKey: Uint8Array,
): Stanza {
  if (kek.length !== 32 || fileKey.length !== 32) fail("E_KEY", "KEK and file key are 32 bytes");
  // Random 96-bit nonce: a KEK version wraps far fewer than 2^32 keys before rotation.
  const nonce = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", kek, nonce).setAAD(serviceAad(ref));
  const wrapped = Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
  const version = Buffer.alloc(4);
  version.writeUInt32BE(ref.version);
  return {
    type: SERVICE_STANZA,
    fields: [
      Buffer.from(ref.serverId, "utf8"),
      Buffer.from(ref.name, "utf8"),
      version,
      nonce,
      wrapped,
    ],
  };
}

/** Opens a parsed service stanza with its KEK version (server side); E_DECRYPT on failure. */
export function openServiceStanza(p: ServiceStanza, kek: Uint8Array): Buffer {
  const d = createDecipheriv("aes-256-gcm", kek, p.nonce).setAAD(serviceAad(p));
  d.setAuthTag(p.wrapped.subarray(32));
  try {
    return Buffer.concat([d.update(p.wrapped.subarray(0, 32)), d.final()]);
  } catch {
    return fail("E_DECRYPT", `service stanza for ${p.name} v${p.version} does not open`);
  }
}

/** JSON form of a stanza on the wire: type plus base64 fields. */
export interface WireStanza {
  type: string;
  fields: string[];
}

export function stanzaToWire(s: Stanza): WireStanza {
  return { type: s.type, fields: s.fields.map((f) => f.toString("base64")) };
}

export function stanzaFromWire(w: WireStanza): Stanza {
  return { type: w.type, fields: w.fields.map((f) => Buffer.from(f, "base64")) };
}

export interface ServiceClientOptions {
  readonly url: string;
  readonly token?: string;
  /** PEM of the CA to trust (in addition to nothing else: a private CA pins the service). */
  readonly ca?: string;
  /** PEM client certificate (chain) and its private key, for mTLS. */
  readonly cert?: string;
  readonly key?: string;
}

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** A small JSON-over-HTTPS client with one keep-alive agent; never logs the token. */
export class ServiceClient {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private serverId: Promise<string> | null = null;

  constructor(private readonly opts: ServiceClientOptions) {
    try {
      this.base = new URL(opts.url);
    } catch {
      fail("E_USAGE", `key service URL ${JSON.stringify(opts.url)} is not a URL`);
    }
    if (this.base.protocol !== "https:" && this.base.protocol !== "http:") {
      fail("E_USAGE", `key service URL must be https://, got ${this.base.protocol}`);
    }
    if (Boolean(opts.cert) !== Boolean(opts.key))
      fail(
        "E_USAGE",
        "a client certificate needs its key: give both (TENSORSEAL_SERVER_CERT/_KEY)",
      );
    this.agent =
      this.base.protocol === "https:"
        ? new https.Agent({
            keepAlive: true,
            ...(opts.ca ? { ca: opts.ca } : {}),
            ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}),
          })
        : new http.Agent({ keepAlive: true });
  }

  get url(): string {
    return this.base.origin;
  }

  /** The server id the service stamps into its stanzas (GET /v1/info, cached). */
  id(): Promise<string> {
    this.serverId ??= this.call("GET", "/v1/info").then((r) => {
      if (r.status !== 200 || typeof r.body.serverId !== "string") this.refused("/v1/info", r);
      return r.body.serverId as string;
    });
    this.serverId.catch(() => {
      this.serverId = null;
    });
    return this.serverId;
  }

  async get(path: string): Promise<Reply> {
    return this.call("GET", path);
  }

  async post(path: string, body: unknown): Promise<Reply> {
    return this.call("POST", path, body);
  }

  async patch(path: string, body: unknown): Promise<Reply> {
    return this.call("PATCH", path, body);
  }

  close(): void {
    this.agent.destroy();
  }

  refused(path: string, r: Reply): never {
    const msg = typeof r.body.message === "string" ? r.body.message : `HTTP ${r.status}`;
    return fail("E_PROVIDER", `key service ${this.url}${path}: ${msg}`);
  }

  private call(method: string, path: string, body?: unknown): Promise<Reply> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: "application/json" };
    if (payload) headers["content-type"] = "application/json";
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    const mod = this.base.protocol === "https:" ? https : http;
    return new Promise<Reply>((resolve, reject) => {
      const req = mod.request(new URL(path, this.base), { method, headers, agent: this.agent });
      req.on("error", (e: NodeJS.ErrnoException) =>
        reject(
          new TensorSealError(
            "E_PROVIDER",
            `key service ${this.url} unreachable (${e.code ?? e.name}): check TENSORSEAL_SERVER, TENSORSEAL_SERVER_CA (and _CERT/_KEY for mTLS)`,
            { cause: e },
          ),
        ),
      );
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {
            parsed = {};
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.end(payload);
    });
  }
}

/** Client configuration from the environment (and an optional --server override). */
export function serviceClientFromEnv(url = process.env.TENSORSEAL_SERVER): ServiceClient | null {
  if (!url) return null;
  const caPath = process.env.TENSORSEAL_SERVER_CA;
  const tokenFile = process.env.TENSORSEAL_SERVER_TOKEN_FILE;
  const token =
    process.env.TENSORSEAL_SERVER_TOKEN ??
    (tokenFile ? readFileSync(tokenFile, "utf8").trim() : undefined);
  const certPath = process.env.TENSORSEAL_SERVER_CERT;
  const keyPath = process.env.TENSORSEAL_SERVER_KEY;
  if (Boolean(certPath) !== Boolean(keyPath))
    fail("E_USAGE", "TENSORSEAL_SERVER_CERT and TENSORSEAL_SERVER_KEY go together (PEM files)");
  return new ServiceClient({
    url,
    ...(token ? { token } : {}),
    ...(caPath ? { ca: readFileSync(caPath, "utf8") } : {}),
    ...(certPath && keyPath
      ? {
          cert: envFile(certPath, "TENSORSEAL_SERVER_CERT"),
          key: envFile(keyPath, "TENSORSEAL_SERVER_KEY"),
        }
      : {}),
  });
}

function envFile(path: string, name: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    return fail("E_USAGE", `${name}=${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

/** `service:KEYNAME`: the service wraps the writer's file key under the key's primary version. */
export function serviceRecipient(client: ServiceClient, name: string): Recipient {
  if (name.length === 0) fail("E_USAGE", "recipient service:NAME needs a key name");
  return {
    id: `service:${name}`,
    wrap: async (fileKey) => {
      const r = await client.post("/v1/datakeys/wrap", {
        key: name,
        fileKey: Buffer.from(fileKey).toString("base64"),
      });
      if (r.status !== 200) client.refused("/v1/datakeys/wrap", r);
      const stanza = stanzaFromWire(r.body.stanza as WireStanza);
      parseServiceStanza(stanza);
      return stanza;
    },
    matches: (s) => s.type === SERVICE_STANZA && parseServiceStanza(s).name === name,
  };
}

/**
 * Unwraps `service` stanzas of this client's server; another server's stanza is *not mine*.
 * A refusal (401/403) or an unreachable service is E_PROVIDER; a stanza that does not open is
 * E_DECRYPT; both end the unlock (spec §3.6).
 */
export function serviceIdentity(
  client: ServiceClient,
  opts: { cache?: DataKeyCache | null } = {},
): Identity {
  // Off unless asked for: TENSORSEAL_SERVER_CACHE (or an explicit cache).
  const cache = opts.cache === undefined ? dataKeyCacheFromEnv() : opts.cache;
  return {
    id: `service:${client.url}`,
    unwrap: async (s) => {
      if (s.type !== SERVICE_STANZA) return null;
      const p = parseServiceStanza(s);
      if (p.serverId !== (await client.id())) return null;
      const hit = cache?.get(s);
      if (hit) return hit;
      const r = await client.post("/v1/datakeys/unwrap", { stanza: stanzaToWire(s) });
      if (r.status === 200) {
        const fk = Buffer.from(String(r.body.fileKey), "base64");
        if (fk.length !== 32) fail("E_PROVIDER", `key service ${client.url} sent a bad file key`);
        cache?.put(s, fk);
        return fk;
      }
      if (r.status === 404) return null;
      if (r.status === 422)
        fail("E_DECRYPT", `service stanza for ${p.name} v${p.version} does not open`);
      return client.refused("/v1/datakeys/unwrap", r);
    },
  };
}

// ---- Client-side data-key cache (issue #4 §8), off by default ----

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
  private readonly entries = new Map<string, { key: Buffer; born: number; uses: number }>();

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
    if (this.now() - e.born >= this.opts.maxAgeMs || e.uses >= this.opts.maxUses) {
      this.evict(id);
      return null;
    }
    e.uses++;
    const copy = Buffer.from(e.key);
    if (e.uses >= this.opts.maxUses) this.evict(id);
    return copy;
  }

  /** Caches a copy of a freshly unwrapped key (that unwrap is its first use). */
  put(s: Stanza, fileKey: Uint8Array): void {
    if (this.opts.maxUses <= 1) return;
    const id = DataKeyCache.digest(s);
    this.evict(id);
    this.entries.set(id, { key: Buffer.from(fileKey), born: this.now(), uses: 1 });
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

/** HPKE info of attested releases; aad = the challenge nonce (UTF-8). */
export const ATTESTED_RELEASE_INFO = "tensorseal.dev/v1 attested-release";

let attestedSuite: CipherSuite | null = null;
function hpke(): CipherSuite {
  attestedSuite ??= new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Aes256Gcm(),
  });
  return attestedSuite;
}

function ab(b: Uint8Array): ArrayBuffer {
  return new Uint8Array(b).buffer;
}

/** Server side: seals the file key to the caller's ephemeral X25519 public key. */
export async function sealAttestedRelease(
  ephemeralPublicKey: Uint8Array,
  fileKey: Uint8Array,
  nonce: string,
): Promise<{ enc: string; ciphertext: string }> {
  const s = hpke();
  const recipientPublicKey = await s.kem.importKey("raw", ab(ephemeralPublicKey), true);
  const r = await s.seal(
    { recipientPublicKey, info: ab(Buffer.from(ATTESTED_RELEASE_INFO, "ascii")) },
    ab(fileKey),
    ab(Buffer.from(nonce, "utf8")),
  );
  return {
    enc: Buffer.from(r.enc).toString("base64"),
    ciphertext: Buffer.from(r.ct).toString("base64"),
  };
}

/** Client side: opens a sealed release with the ephemeral private key. */
export async function openAttestedRelease(
  ephemeralPrivateKey: Uint8Array,
  sealed: { enc: string; ciphertext: string },
  nonce: string,
): Promise<Buffer> {
  const s = hpke();
  const recipientKey = await s.kem.importKey("raw", ab(ephemeralPrivateKey), false);
  try {
    const pt = await s.open(
      {
        recipientKey,
        enc: ab(Buffer.from(sealed.enc, "base64")),
        info: ab(Buffer.from(ATTESTED_RELEASE_INFO, "ascii")),
      },
      ab(Buffer.from(sealed.ciphertext, "base64")),
      ab(Buffer.from(nonce, "utf8")),
    );
    const fk = Buffer.from(pt);
    if (fk.length !== 32)
      fail("E_PROVIDER", "attested release: the sealed file key is not 32 bytes");
    return fk;
  } catch (e) {
    if (e instanceof TensorSealError) throw e;
    return fail("E_PROVIDER", "attested release: the sealed file key does not open");
  }
}

/** What an evidence provider is asked to attest: the nonce and the ephemeral key binding. */
export interface EvidenceRequest {
  readonly nonce: string;
  /** base64url(SHA-256(ephemeral X25519 public key)): claim `tensorseal_ephemeral_key`. */
  readonly ephemeralKeyBinding: string;
  readonly ephemeralPublicKey: Buffer;
}

/** Returns an attestation verifier's JWT for the request (e.g. from a TEE's attestation agent). */
export type EvidenceProvider = (r: EvidenceRequest) => Promise<string>;

/**
 * Attested unwrap: fetch a nonce, get evidence bound to it and to a fresh ephemeral X25519
 * key, present both, and open the HPKE-sealed file key. The ephemeral private key is wiped.
 */
export async function unwrapAttested(
  client: ServiceClient,
  stanza: Stanza,
  evidence: EvidenceProvider,
): Promise<Buffer> {
  const c = await client.post("/v1/attestation/challenge", {});
  if (c.status !== 200 || typeof c.body.nonce !== "string")
    client.refused("/v1/attestation/challenge", c);
  const nonce = c.body.nonce as string;
  const { privateKey, publicKey } = generateX25519KeyPair();
  try {
    const token = await evidence({
      nonce,
      ephemeralKeyBinding: createHash("sha256").update(publicKey).digest("base64url"),
      ephemeralPublicKey: Buffer.from(publicKey),
    });
    const r = await client.post("/v1/datakeys/unwrap-attested", {
      stanza: stanzaToWire(stanza),
      evidence: token,
      ephemeralPublicKey: Buffer.from(publicKey).toString("base64"),
    });
    if (r.status === 422) fail("E_DECRYPT", "service stanza does not open");
    if (r.status !== 200) client.refused("/v1/datakeys/unwrap-attested", r);
    return await openAttestedRelease(
      privateKey,
      { enc: String(r.body.enc), ciphertext: String(r.body.ciphertext) },
      nonce,
    );
  } finally {
    privateKey.fill(0);
  }
}
