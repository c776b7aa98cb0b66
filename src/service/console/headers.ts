/**
 * The console's response headers: a strict Content-Security-Policy (scripts, styles and
 * requests only from this origin; no inline script or style, no framing, no plugins), and the
 * clickjacking, MIME-sniffing and referrer headers. HSTS when served over TLS.
 */
import type { FastifyInstance } from "fastify";

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export function securityHeaders(app: FastifyInstance, tls: boolean): void {
  app.addHook("onSend", async (_req, reply, payload) => {
    reply.header("content-security-policy", CONSOLE_CSP);
    reply.header("x-frame-options", "DENY");
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "no-referrer");
    reply.header("cross-origin-opener-policy", "same-origin");
    reply.header("cross-origin-resource-policy", "same-origin");
    if (tls) reply.header("strict-transport-security", "max-age=31536000");
    return payload;
  });
}
