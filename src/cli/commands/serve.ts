/**
 * `tensorseal serve`: its flags (serve/flags.ts) and help. The key service (Fastify, the
 * database drivers, Cedar) loads in actions/serve.ts, only when the command runs.
 */
import type { Command } from "commander";
import { type ServeFlags, serveFlags } from "./serve/flags.js";

export function registerServe(program: Command): void {
  serveFlags(
    program.command("serve").description("run the key service (HTTPS; see docs/SERVICE.md)"),
  ).action(async (o: ServeFlags) => (await import("../actions/serve.js")).serve(o));
}
