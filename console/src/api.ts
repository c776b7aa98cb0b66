/**
 * Calls to the key service from the console: same origin, the session cookie (HttpOnly: this
 * code never sees it), and the session's CSRF token on every state-changing request. The CSRF
 * token lives in memory only (never localStorage).
 */

let csrf = "";

export function setCsrf(token: string): void {
  csrf = token;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = csrf;
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    cache: "no-store",
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    if (r.ok) throw new ApiError(r.status, "malformed", "the server's answer is not JSON");
  }
  if (!r.ok)
    throw new ApiError(
      r.status,
      String(json.error ?? "error"),
      String(json.message ?? r.statusText),
    );
  return json as T;
}

/** Builds a query string from the set fields only. */
export function query(q: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== "") p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : "";
}
