/**
 * The console: its static files (the Preact bundle in dist/console) under /console/, and the
 * session routes. Sign-in presents an API credential once (POST /console/session); it goes
 * through the service's own authentication (protected.ts `authenticate`), and the answer is a
 * session cookie (HttpOnly, SameSite=Strict, Secure over TLS) and the session's CSRF token.
 * Everything else the console shows or does goes to the /v1 API with that cookie, where
 * authentication, Cedar and the audit are the API's own.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ServiceContext } from "../context.js";
import { deny } from "../errors.js";
import { authenticate } from "../protected.js";
import { errorResponses } from "../schemas.js";
import { auditedError, written } from "./audited.js";
import { type SessionAuthenticator, sameOrigin, withCredential } from "./authenticator.js";
import { securityHeaders } from "./headers.js";
import { type ConsoleOidcOptions, OidcSignIn } from "./oidc.js";
import type { SessionStore } from "./sessions.js";

/** Where `npm run build` puts the bundle: dist/console (from dist/src/service/console/). */
export const CONSOLE_DIR = fileURLToPath(new URL("../../../console/", import.meta.url));

export interface ConsoleScope {
  readonly ctx: ServiceContext;
  readonly sessions: SessionStore;
  readonly auth: SessionAuthenticator;
  readonly cookie: string;
  readonly tls: boolean;
  readonly dir?: string;
  /** OIDC sign-in (authorization code + PKCE); absent: tokens only. */
  readonly oidc?: ConsoleOidcOptions;
}

const sessionSchema = {
  type: "object",
  required: ["principal", "roles", "csrf", "expires"],
  properties: {
    principal: { type: "string" },
    kind: { type: "string" },
    roles: { type: "array", items: { type: "string" } },
    csrf: { type: "string", description: "send back in x-csrf-token on every POST/PATCH/DELETE" },
    expires: { type: "string", description: "when the session ends if left unused" },
  },
} as const;

const tags = ["console"];

export async function consoleRoutes(app: FastifyInstance, c: ConsoleScope): Promise<void> {
  const { ctx, sessions, cookie } = c;
  securityHeaders(app, c.tls);
  app.setErrorHandler(async (err, req, reply) => auditedError(ctx, err, req, reply));

  /** Authenticates `credential` as the API would, audits the sign-in, opens the session. */
  const open = async (req: FastifyRequest, reply: FastifyReply, credential: string) => {
    const view = withCredential(req, credential);
    try {
      await authenticate(ctx, view);
    } finally {
      req.subject = view.subject;
      req.principal = view.principal;
    }
    const p = req.principal!;
    // On record first: no audit entry, no session.
    await written(ctx, req, { kind: p.kind });
    const { id, session } = sessions.open(credential, p.id);
    reply.setCookie(cookie, id, { path: "/", httpOnly: true, sameSite: "strict", secure: c.tls });
    return view_(p, session.csrf, sessions.expires(session));
  };

  // What the sign-in page offers (public, not audited: it names no account or key).
  app.get("/console/config", { schema: { hide: true } }, async (req, reply) => {
    req.audited = true;
    return noStore(reply).send({ oidc: c.oidc !== undefined });
  });

  if (c.oidc) {
    const oidc = new OidcSignIn(c.oidc, `${c.tls ? "__Secure-" : ""}tensorseal-oidc-state`, c.tls);
    app.get(
      "/console/oidc/login",
      { config: { action: "console.signin" }, schema: { hide: true } },
      async (req, reply) => {
        req.audited = true;
        return oidc.start(req, reply);
      },
    );
    app.get<{ Querystring: { code?: string; state?: string } }>(
      "/console/oidc/callback",
      { config: { action: "console.signin" }, schema: { hide: true } },
      async (req, reply) => {
        await open(req, reply, await oidc.finish(req, reply));
        return reply.redirect("/console/", 302);
      },
    );
  }

  app.post<{ Body: { token: string } }>(
    "/console/session",
    {
      config: { action: "console.signin" },
      schema: {
        summary: "Console sign-in: an API credential in, a session cookie and CSRF token out",
        tags,
        body: {
          type: "object",
          required: ["token"],
          additionalProperties: false,
          properties: { token: { type: "string", minLength: 1, maxLength: 8192 } },
        },
        response: { 200: sessionSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      // Login CSRF: a browser always sends Origin on a POST; another site's is refused.
      if (req.headers.origin !== undefined && !sameOrigin(req))
        deny(403, "console sign-in from another origin refused");
      return noStore(reply).send(await open(req, reply, req.body.token));
    },
  );

  app.get(
    "/console/session",
    {
      config: { action: "console.session" },
      schema: {
        summary: "The signed-in console session: principal, roles, CSRF token",
        tags,
        response: { 200: sessionSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      // Reads of one's own session are not audited (every page load asks; no service data).
      req.audited = true;
      const s = c.auth.session(req);
      if (!s) deny(401, "not signed in to the console");
      await authenticate(ctx, req);
      return noStore(reply).send(view_(req.principal!, s.csrf, sessions.expires(s)));
    },
  );

  app.delete(
    "/console/session",
    {
      config: { action: "console.signout" },
      schema: {
        summary: "Console sign-out: the session ends on the server (needs x-csrf-token)",
        tags,
        response: {
          200: {
            type: "object",
            required: ["signedOut"],
            properties: { signedOut: { type: "boolean" } },
          },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      if (!c.auth.session(req)) deny(401, "not signed in to the console");
      await authenticate(ctx, req);
      await written(ctx, req, {});
      sessions.close(req.cookies[cookie]!);
      reply.clearCookie(cookie, { path: "/", httpOnly: true, sameSite: "strict", secure: c.tls });
      return noStore(reply).send({ signedOut: true });
    },
  );

  const dir = c.dir ?? CONSOLE_DIR;
  if (existsSync(dir)) {
    await app.register(fastifyStatic, {
      root: dir,
      prefix: "/console/",
      index: "index.html",
      redirect: true,
      decorateReply: false,
      // The bundle's names carry no hash: the browser revalidates (ETag) every load.
      cacheControl: true,
      maxAge: 0,
    });
  } else {
    app.get("/console/", { schema: { hide: true } }, async (_req, reply) =>
      reply.code(503).type("text/plain").send("console not built: run npm run build"),
    );
  }
}

function view_(
  p: { id: string; kind: string; roles: readonly string[] },
  csrf: string,
  expires: number,
) {
  return {
    principal: p.id,
    kind: p.kind,
    roles: [...p.roles],
    csrf,
    expires: new Date(expires).toISOString(),
  };
}

function noStore(reply: FastifyReply): FastifyReply {
  return reply.header("cache-control", "no-store");
}
