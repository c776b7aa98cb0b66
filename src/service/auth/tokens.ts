/**
 * Scoped static bearer tokens for bootstrap: `tsk_` + base64url(32 random bytes), shown once;
 * only SHA-256(token) is stored. Lookup is by that hash, so the comparison never touches the
 * token bytes (no timing signal on a prefix of the secret). Positive lookups are cached for
 * `cacheMs` (revocation takes effect within that time).
 */
import { createHash, createHmac, randomBytes } from "node:crypto";
import type { FastifyRequest } from "fastify";
import type { Database } from "../db/schema.js";
import {
  type Authenticator,
  type AuthResult,
  type Principal,
  SCOPES,
  type Scope,
} from "./principal.js";

const PREFIX = "tsk_";
const TOKEN_RE = /^tsk_[A-Za-z0-9_-]{43}$/;

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export function parseScopes(s: string): Scope[] {
  const out = [
    ...new Set(
      s
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean),
    ),
  ];
  for (const x of out) {
    if (!(SCOPES as readonly string[]).includes(x))
      throw new Error(`unknown scope ${JSON.stringify(x)}: expected ${SCOPES.join(", ")}`);
  }
  if (out.length === 0) throw new Error(`no scope given: expected some of ${SCOPES.join(", ")}`);
  return out as Scope[];
}

export class TokenRepo {
  constructor(private readonly d: Database) {}

  async create(scopes: Scope[], label = ""): Promise<{ id: string; token: string }> {
    const token = PREFIX + randomBytes(32).toString("base64url");
    const id = randomBytes(8).toString("hex");
    await this.d.db
      .insertInto("tokens")
      .values({
        id,
        hash: hashToken(token),
        scopes: scopes.join(","),
        label,
        created: new Date().toISOString(),
        revoked: null,
      })
      .execute();
    return { id, token };
  }

  async revoke(id: string): Promise<boolean> {
    const r = await this.d.db
      .updateTable("tokens")
      .set({ revoked: new Date().toISOString() })
      .where("id", "=", id)
      .where("revoked", "is", null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async list(): Promise<
    { id: string; scopes: string[]; label: string; created: string; revoked: string | null }[]
  > {
    const rows = await this.d.db
      .selectFrom("tokens")
      .select(["id", "scopes", "label", "created", "revoked"])
      .orderBy("created")
      .execute();
    return rows.map((r) => ({ ...r, scopes: r.scopes.split(",") }));
  }

  async byHash(hash: string): Promise<{ id: string; scopes: string } | null> {
    const r = await this.d.db
      .selectFrom("tokens")
      .select(["id", "scopes"])
      .where("hash", "=", hash)
      .where("revoked", "is", null)
      .executeTakeFirst();
    return r ?? null;
  }
}

export class StaticTokenAuthenticator implements Authenticator {
  private readonly cache = new Map<string, { p: Principal; at: number }>();

  constructor(
    private readonly repo: TokenRepo,
    /** HMAC key for the fingerprint of an unknown token in the audit log. */
    private readonly hmacKey: Buffer,
    private readonly cacheMs = 2000,
  ) {}

  async authenticate(req: FastifyRequest): Promise<AuthResult> {
    const h = req.headers.authorization;
    if (h === undefined) return { denied: "no credentials", subject: "anonymous" };
    const m = /^Bearer (\S+)$/.exec(h);
    if (!m) return { denied: "malformed Authorization header", subject: "anonymous" };
    const token = m[1]!;
    if (!token.startsWith(PREFIX)) return null; // another kind of bearer token (JWT later)
    const fp = `token-hmac:${createHmac("sha256", this.hmacKey).update(token).digest("hex").slice(0, 16)}`;
    if (!TOKEN_RE.test(token)) return { denied: "malformed token", subject: fp };
    const hash = hashToken(token);
    const hit = this.cache.get(hash);
    if (hit && Date.now() - hit.at < this.cacheMs) return hit.p;
    const row = await this.repo.byHash(hash);
    if (!row) {
      this.cache.delete(hash);
      return { denied: "unknown or revoked token", subject: fp };
    }
    const p: Principal = { id: `token:${row.id}`, kind: "token", roles: row.scopes.split(",") };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { p, at: Date.now() });
    return p;
  }
}
