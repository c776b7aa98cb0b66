/**
 * Console sessions, kept in this process only: the cookie holds a random id (32 bytes), the
 * store is keyed by its SHA-256, and each session keeps the credential it was opened with, so
 * every request is authenticated again by the service's own authenticators (a revoked token
 * ends its sessions). Sessions expire after an idle time and a maximum age, and end on sign-out.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export interface SessionOptions {
  /** Ends a session not used for this long (ms; default 15 minutes). */
  readonly idleMs?: number;
  /** Ends a session this long after sign-in, used or not (ms; default 8 hours). */
  readonly maxMs?: number;
  /** Most open sessions; the oldest goes first beyond it (default 10000). */
  readonly max?: number;
}

export const SESSION_DEFAULTS = { idleMs: 15 * 60_000, maxMs: 8 * 3600_000, max: 10_000 };

export interface Session {
  /** The bearer credential presented at sign-in (never sent back to the browser). */
  readonly credential: string;
  /** Sent back in the x-csrf-token header on every state-changing request. */
  readonly csrf: string;
  readonly principal: string;
  readonly created: number;
  used: number;
}

const digest = (id: string) => createHash("sha256").update(id, "utf8").digest("hex");

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly o: typeof SESSION_DEFAULTS;

  constructor(
    o: SessionOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.o = { ...SESSION_DEFAULTS, ...o };
  }

  /** A new session; returns the cookie value (the only copy of the id). */
  open(credential: string, principal: string): { id: string; session: Session } {
    const t = this.now();
    for (const [k, s] of this.sessions) if (this.expired(s, t)) this.sessions.delete(k);
    while (this.sessions.size >= this.o.max) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
    const id = randomBytes(32).toString("base64url");
    const session: Session = {
      credential,
      csrf: randomBytes(32).toString("base64url"),
      principal,
      created: t,
      used: t,
    };
    this.sessions.set(digest(id), session);
    return { id, session };
  }

  /** The live session for a cookie value (its idle time restarts), or null. */
  get(id: string): Session | null {
    const k = digest(id);
    const s = this.sessions.get(k);
    if (!s) return null;
    const t = this.now();
    if (this.expired(s, t)) {
      this.sessions.delete(k);
      return null;
    }
    s.used = t;
    return s;
  }

  close(id: string): boolean {
    return this.sessions.delete(digest(id));
  }

  /** When the session ends if left unused (ms since the epoch). */
  expires(s: Session): number {
    return Math.min(s.used + this.o.idleMs, s.created + this.o.maxMs);
  }

  private expired(s: Session, t: number): boolean {
    return t >= this.expires(s);
  }
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(s: Session, presented: string | undefined): boolean {
  if (typeof presented !== "string" || presented.length === 0) return false;
  const a = createHash("sha256").update(presented, "utf8").digest();
  const b = createHash("sha256").update(s.csrf, "utf8").digest();
  return timingSafeEqual(a, b);
}
