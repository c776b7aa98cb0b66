/** What the `service ...` subcommands share: their command group, and the HTTPS client. */
import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import { type ServiceClient, serviceClientFromEnv } from "../../keys/service/index.js";

/** The `service` command group, created by whichever subcommand registers first. */
export function serviceGroup(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === "service") ??
    program.command("service").description("key service administration")
  );
}

/** The service client (--server or TENSORSEAL_SERVER) for `f`, closed afterwards. */
export async function withClient<T>(cmd: Command, f: (c: ServiceClient) => Promise<T>): Promise<T> {
  const url = (cmd.optsWithGlobals().server as string | undefined) ?? process.env.TENSORSEAL_SERVER;
  const client = serviceClientFromEnv(url);
  if (!client) return fail("E_USAGE", "no key service: give --server URL or TENSORSEAL_SERVER");
  try {
    return await f(client);
  } finally {
    client.close();
  }
}
