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
 * (bearer token). The token is sent only in the Authorization header, never logged or echoed.
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
    this.agent =
      this.base.protocol === "https:"
        ? new https.Agent({ keepAlive: true, ...(opts.ca ? { ca: opts.ca } : {}) })
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
            `key service ${this.url} unreachable (${e.code ?? e.name}): check TENSORSEAL_SERVER and TENSORSEAL_SERVER_CA`,
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
  return new ServiceClient({
    url,
    ...(token ? { token } : {}),
    ...(caPath ? { ca: readFileSync(caPath, "utf8") } : {}),
  });
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
export function serviceIdentity(client: ServiceClient): Identity {
  return {
    id: `service:${client.url}`,
    unwrap: async (s) => {
      if (s.type !== SERVICE_STANZA) return null;
      const p = parseServiceStanza(s);
      if (p.serverId !== (await client.id())) return null;
      const r = await client.post("/v1/datakeys/unwrap", { stanza: stanzaToWire(s) });
      if (r.status === 200) {
        const fk = Buffer.from(String(r.body.fileKey), "base64");
        if (fk.length !== 32) fail("E_PROVIDER", `key service ${client.url} sent a bad file key`);
        return fk;
      }
      if (r.status === 404) return null;
      if (r.status === 422)
        fail("E_DECRYPT", `service stanza for ${p.name} v${p.version} does not open`);
      return client.refused("/v1/datakeys/unwrap", r);
    },
  };
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
