/**
 * Object URLs a sealed file can be read from or written to: `s3://bucket/key`, `https://...`
 * (a presigned URL or any server that answers Range requests) and `http://` to a loopback
 * host only (tests, a local proxy). Light on purpose: the CLI imports it to tell a URL from a
 * path before loading any network code.
 *
 * `redactUrl` is the only form of a URL that reaches an error or a log: no user:password, and
 * no query string (a presigned URL carries its signature, credential and session token there).
 */
import { fail } from "../../format/errors.js";

export type ObjectUrl =
  | { readonly kind: "s3"; readonly bucket: string; readonly key: string; readonly shown: string }
  | { readonly kind: "http"; readonly url: URL; readonly shown: string };

const SCHEME = /^(s3|https?):\/\//i;

/** Whether `s` names an object URL rather than a local path. */
export function isObjectUrl(s: string): boolean {
  return SCHEME.test(s);
}

export function parseObjectUrl(s: string): ObjectUrl {
  const scheme = SCHEME.exec(s)?.[1]?.toLowerCase();
  if (scheme === "s3") {
    const rest = s.slice("s3://".length);
    const slash = rest.indexOf("/");
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const key = slash < 0 ? "" : rest.slice(slash + 1);
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || key === "" || key.includes("?")) {
      fail("E_USAGE", `${redactUrl(s)} is not an s3://BUCKET/KEY URL`);
    }
    return { kind: "s3", bucket, key, shown: `s3://${bucket}/${key}` };
  }
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return fail("E_USAGE", `${redactUrl(s)} is not a valid URL`);
  }
  if (url.protocol === "http:" && !isLoopback(url.hostname)) {
    fail(
      "E_USAGE",
      `${redactUrl(s)}: plain http:// is allowed only to a loopback host; use https://`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    fail("E_USAGE", `${redactUrl(s)}: only s3://, https:// (and http:// to loopback) are read`);
  }
  return { kind: "http", url, shown: redactUrl(s) };
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The URL as errors and logs may show it: scheme, host, path; no credentials, no query. */
export function redactUrl(s: string): string {
  if (/^s3:\/\//i.test(s)) return s.replace(/[?#].*$/s, (q) => (q ? "?…" : ""));
  try {
    const u = new URL(s);
    const q = u.search ? "?[query redacted]" : "";
    return `${u.protocol}//${u.host}${u.pathname}${q}`;
  } catch {
    return "(an invalid URL)";
  }
}
