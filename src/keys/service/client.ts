/**
 * The client side of the TensorSeal key service: a JSON-over-HTTPS client, and a Recipient and
 * an Identity that call the service.
 *
 * Configuration: TENSORSEAL_SERVER (base URL), TENSORSEAL_SERVER_CA (PEM file of the CA to
 * trust, e.g. the `serve --dev` CA), TENSORSEAL_SERVER_TOKEN or TENSORSEAL_SERVER_TOKEN_FILE
 * (bearer token), TENSORSEAL_SERVER_CERT and TENSORSEAL_SERVER_KEY (PEM client certificate and
 * key for mTLS; a SPIFFE ID certificate authenticates without a token). The token is sent only
 * in the Authorization header, never logged or echoed.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { fail, TensorSealError } from "../../format/errors.js";
import type { Identity, Recipient } from "../../format/stanza.js";
import { type EvidenceProvider, unwrapAttested } from "./attested.js";
import { type DataKeyCache, dataKeyCacheFromEnv } from "./datakey-cache.js";
import {
  parseServiceStanza,
  SERVICE_STANZA,
  stanzaFromWire,
  stanzaToWire,
  type WireStanza,
} from "./stanza.js";
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

/** 421 retries: a few, for connections that were busy when the idle ones were dropped. */
const MISDIRECTED_RETRIES = 3;

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

  /**
   * One request; retried when the service answers 421: it replaced its TLS trust (client CAs or
   * CRL) after this pooled connection's handshake and closes that connection (RFC 9110
   * section 15.5.20). The other idle pooled connections predate the change too, so they are dropped
   * and the retry goes over a new connection, verified under the new trust.
   */
  private async call(method: string, path: string, body?: unknown): Promise<Reply> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.send(method, path, body);
      if (r.status !== 421 || attempt > MISDIRECTED_RETRIES) return r;
      for (const sockets of Object.values(this.agent.freeSockets)) {
        for (const s of sockets ?? []) s.destroy();
      }
    }
  }

  private send(method: string, path: string, body?: unknown): Promise<Reply> {
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
  const token = tokenFromEnv();
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

/**
 * TENSORSEAL_SERVER_TOKEN, else the content of TENSORSEAL_SERVER_TOKEN_FILE (whitespace around
 * it ignored). A bearer token is one run of printable ASCII: anything else (a second line, a
 * CR/LF that would inject a header) is refused here, naming the variable, never the token.
 */
function tokenFromEnv(): string | undefined {
  const env = process.env.TENSORSEAL_SERVER_TOKEN;
  const file = process.env.TENSORSEAL_SERVER_TOKEN_FILE;
  if (env === undefined && !file) return undefined;
  const source =
    env !== undefined ? "TENSORSEAL_SERVER_TOKEN" : `TENSORSEAL_SERVER_TOKEN_FILE=${file}`;
  let token = env;
  if (token === undefined) {
    try {
      token = readFileSync(file!, "utf8").trim();
    } catch (e) {
      return fail("E_IO", `${source}: cannot read it (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
  }
  if (token && !/^[\x21-\x7e]+$/.test(token))
    fail(
      "E_USAGE",
      `${source}: not a bearer token (it must be one line of printable ASCII, as \`tensorseal service token create\` prints it)`,
    );
  return token;
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
 * With `evidence`, through attested release (attested.ts): the file key comes HPKE-sealed to
 * a fresh key that the evidence binds, so a policy can require the runtime's attestation.
 * A refusal (401/403) or an unreachable service is E_PROVIDER; a stanza that does not open is
 * E_DECRYPT; both end the unlock (spec §3.6).
 */
export function serviceIdentity(
  client: ServiceClient,
  opts: { cache?: DataKeyCache | null; evidence?: EvidenceProvider } = {},
): Identity {
  // Off unless asked for: TENSORSEAL_SERVER_CACHE (or an explicit cache). Never with
  // attestation: each release must be attested.
  const cache = opts.evidence
    ? null
    : opts.cache === undefined
      ? dataKeyCacheFromEnv()
      : opts.cache;
  return {
    id: `service:${client.url}`,
    unwrap: async (s) => {
      if (s.type !== SERVICE_STANZA) return null;
      const p = parseServiceStanza(s);
      if (p.serverId !== (await client.id())) return null;
      if (opts.evidence) return unwrapAttested(client, s, opts.evidence);
      const hit = cache?.get(s);
      if (hit) return hit;
      const r = await client.post("/v1/datakeys/unwrap", { stanza: stanzaToWire(s) });
      if (r.status === 200) {
        const fk = Buffer.from(String(r.body.fileKey), "base64");
        if (fk.length !== 32) fail("E_PROVIDER", `key service ${client.url} sent a bad file key`);
        // The key's tier on the service may cap how long it is cached (0: not at all).
        const cap = r.body.cacheMaxAge;
        cache?.put(s, fk, typeof cap === "number" && cap >= 0 ? cap * 1000 : undefined);
        return fk;
      }
      if (r.status === 404) return null;
      if (r.status === 422)
        fail("E_DECRYPT", `service stanza for ${p.name} v${p.version} does not open`);
      return client.refused("/v1/datakeys/unwrap", r);
    },
  };
}
