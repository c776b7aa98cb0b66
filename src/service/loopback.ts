/**
 * Where the service POSTs on its own (alert webhooks, checkpoint anchors): HTTPS, or plain HTTP
 * only to this machine.
 */
import { isIP } from "node:net";

/** localhost, 127.0.0.0/8 or ::1 (brackets optional), as `new URL` normalises a hostname. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  return h === "::1";
}

/** https:, or http: to a loopback host. */
export function httpsOrLoopback(u: URL): boolean {
  return u.protocol === "https:" || (u.protocol === "http:" && isLoopbackHost(u.hostname));
}
