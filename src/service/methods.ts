/**
 * Unknown routes: a path the service serves under other methods is answered 405 with `Allow`
 * (RFC 9110 §15.5.6), any other path 404 — both as `{error, message}` like every error, and
 * both before authentication, body parsing or auditing (nothing there to protect or record).
 */
import type { FastifyInstance } from "fastify";

interface KnownPath {
  readonly pattern: RegExp;
  readonly methods: Set<string>;
}

/** `/v1/keys/:name/rotate` → a regex for one concrete path (a parameter is one segment). */
function pathPattern(url: string): RegExp {
  const parts = url
    .split("/")
    .map((seg) => (seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  return new RegExp(`^${parts.join("/")}$`);
}

/** Registers the hooks; call before any route is added (onRoute sees only later routes). */
export function unknownRoutes(app: FastifyInstance): void {
  const known = new Map<string, KnownPath>();
  app.addHook("onRoute", (r) => {
    const entry = known.get(r.url) ?? { pattern: pathPattern(r.url), methods: new Set() };
    for (const m of [r.method].flat()) entry.methods.add(m);
    if (entry.methods.has("GET")) entry.methods.add("HEAD");
    known.set(r.url, entry);
  });
  app.addHook("onRequest", async (req, reply) => {
    if (!req.is404) return;
    const path = req.url.split("?")[0] ?? "";
    const allowed = new Set<string>();
    for (const k of known.values())
      if (k.pattern.test(path)) for (const m of k.methods) allowed.add(m);
    if (allowed.size > 0) {
      const allow = [...allowed].sort().join(", ");
      return reply
        .code(405)
        .header("allow", allow)
        .send({
          error: "method_not_allowed",
          message: `${req.method} is not allowed here: use ${allow}`,
        });
    }
    return reply.code(404).send({ error: "not_found", message: `no route ${req.method} ${path}` });
  });
}
