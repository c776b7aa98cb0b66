/**
 * Wires the console into a server being built: the cookie parser, the session store, the
 * session authenticator in front of the service's own (so the protected scope accepts the
 * cookie), and the console's routes. Off unless ServerOptions.console is given.
 */
import cookie from "@fastify/cookie";
import type { FastifyInstance } from "fastify";
import type { ServiceContext } from "../context.js";
import { cookieName, SessionAuthenticator } from "./authenticator.js";
import type { ConsoleOidcOptions } from "./oidc.js";
import { consoleRoutes } from "./routes.js";
import { type SessionOptions, SessionStore } from "./sessions.js";

export interface ConsoleOptions {
  /** The built UI (default: dist/console next to the compiled service). */
  readonly dir?: string;
  readonly sessions?: SessionOptions;
  /** OIDC sign-in besides tokens; the service must accept the issuer's ID tokens (`jwt`). */
  readonly oidc?: ConsoleOidcOptions;
}

/** Registers the console; returns the context whose authenticators accept its sessions. */
export async function withConsole(
  app: FastifyInstance,
  ctx: ServiceContext,
  o: { console: ConsoleOptions; tls: boolean; now?: () => number },
): Promise<ServiceContext> {
  await app.register(cookie);
  const sessions = new SessionStore(o.console.sessions, o.now);
  const name = cookieName(o.tls);
  const auth = new SessionAuthenticator(sessions, ctx.authenticators, name);
  const wrapped: ServiceContext = { ...ctx, authenticators: [auth, ...ctx.authenticators] };
  await app.register(consoleRoutes, {
    ctx: wrapped,
    sessions,
    auth,
    cookie: name,
    tls: o.tls,
    ...(o.console.dir ? { dir: o.console.dir } : {}),
    ...(o.console.oidc ? { oidc: o.console.oidc } : {}),
  });
  return wrapped;
}
