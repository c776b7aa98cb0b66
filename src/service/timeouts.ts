/**
 * How long a connection may hold the server without finishing a request. Fastify leaves
 * `requestTimeout` and `connectionTimeout` at 0 (none): a client trickling a body, or sending
 * nothing at all, would hold a connection forever, before any authentication. These limits are
 * enforced by Node's HTTP server itself, so they apply to every connection, authenticated or not.
 */

export interface ServerTimeouts {
  /** The whole request, headers and body, must arrive within this (else 408, closed). */
  readonly requestMs: number;
  /** The request headers must arrive within this (and within the TLS handshake's share of it). */
  readonly headersMs: number;
  /** A connection on which nothing moves for this long is closed (a slow reader too). */
  readonly idleMs: number;
  /** How long a kept-alive connection waits for its next request. */
  readonly keepAliveMs: number;
}

export const DEFAULT_TIMEOUTS: ServerTimeouts = {
  requestMs: 30_000,
  headersMs: 10_000,
  idleMs: 120_000,
  keepAliveMs: 72_000,
};

/**
 * Node checks the header and request deadlines of open connections on a timer (every 30 s by
 * default), so a deadline could be overshot by that much; once a second keeps it close.
 */
const CHECK_EVERY_MS = 1000;

/** The limits with defaults filled in; throws on a value that is not a positive number of ms. */
export function serverTimeouts(t: Partial<ServerTimeouts> = {}): ServerTimeouts {
  const out = { ...DEFAULT_TIMEOUTS, ...t };
  for (const [k, v] of Object.entries(out))
    if (!Number.isInteger(v) || v < 1) throw new Error(`timeouts.${k} must be a positive integer`);
  if (out.headersMs > out.requestMs)
    throw new Error("the headers timeout cannot be longer than the request timeout");
  return out;
}

/** What Fastify takes for them, and what goes to Node's http(s).createServer. */
export function timeoutOptions(t: ServerTimeouts) {
  return {
    fastify: {
      requestTimeout: t.requestMs,
      connectionTimeout: t.idleMs,
      keepAliveTimeout: t.keepAliveMs,
    },
    node: {
      headersTimeout: t.headersMs,
      connectionsCheckingInterval: Math.min(CHECK_EVERY_MS, t.headersMs),
      // A TLS handshake that does not finish holds its socket like slow headers do.
      handshakeTimeout: t.headersMs,
    },
  };
}
