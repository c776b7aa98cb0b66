/**
 * Unknown routes: a path the service serves under other methods is answered 405 with `Allow`
 * (RFC 9110 §15.5.6), any other path 404 — both as `{error, message}` like every error, and
 * both before authentication, body parsing or auditing (nothing there to protect or record).
 */
import type { FastifyInstance } from "fastify";

interface KnownPath {
  readonly pattern: RegExp;
  /** Parameter segments: a path served by a static route is that route's, not `:id`'s. */
  readonly params: number;
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
    const entry = known.get(r.url) ?? {
      pattern: pathPattern(r.url),
      params: r.url.split("/").filter((seg) => seg.startsWith(":")).length,
      methods: new Set(),
    };
    for (const m of [r.method].flat()) entry.methods.add(m);
    if (entry.methods.has("GET")) entry.methods.add("HEAD");
    known.set(r.url, entry);
  });
  app.addHook("onRequest", async (req, reply) => {
    if (!req.is404) return;
    const path = req.url.split("?")[0] ?? "";
    // The most specific routes that match (fewest parameters), as the documented API lists
    // them: `/v1/artifacts/restanza` allows POST, though GET `/v1/artifacts/:id` also matches.
    const matches = [...known.values()].filter((k) => k.pattern.test(path));
    const fewest = Math.min(...matches.map((k) => k.params));
    const allowed = new Set<string>();
    for (const k of matches) if (k.params === fewest) for (const m of k.methods) allowed.add(m);
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
