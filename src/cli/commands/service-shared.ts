/** What the `service ...` subcommands share: their command group, and the HTTPS client. */
import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import type { ServiceClient } from "../../keys/service/index.js";

/** The `service` command group, created by whichever subcommand registers first. */
export function serviceGroup(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === "service") ??
    program.command("service").description("key service administration")
  );
}

/**
 * The service client (--server or TENSORSEAL_SERVER) for `f`, closed afterwards. The client
 * loads only when a subcommand runs: registering these commands costs no start-up.
 */
export async function withClient<T>(cmd: Command, f: (c: ServiceClient) => Promise<T>): Promise<T> {
  const { serviceClientFromEnv } = await import("../../keys/service/index.js");
  const url = (cmd.optsWithGlobals().server as string | undefined) ?? process.env.TENSORSEAL_SERVER;
  const client = serviceClientFromEnv(url);
  if (!client) return fail("E_USAGE", "no key service: give --server URL or TENSORSEAL_SERVER");
  try {
    return await f(client);
  } finally {
    client.close();
  }
}

/**
 * A flag's whole number in lo..hi, else E_USAGE naming the flag. Strict: "abc", "", " 5",
 * "1e3", "0x10" and "2.5" are refused (Number() would read several of them as numbers).
 */
export function intFlag(flag: string, v: string, lo: number, hi: number, unit = ""): number {
  const n = /^[0-9]{1,15}$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= lo && n <= hi))
    fail("E_USAGE", `${flag} must be a whole number ${lo}..${hi}${unit}, got ${JSON.stringify(v)}`);
  return n;
}

/** A flag's decimal number (digits, optionally a fraction: "1.5") in lo..hi, else E_USAGE. */
export function decimalFlag(flag: string, v: string, lo: number, hi: number, unit = ""): number {
  const n = /^[0-9]{1,15}(\.[0-9]{1,9})?$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= lo && n <= hi))
    fail("E_USAGE", `${flag} must be a number ${lo}..${hi}${unit}, got ${JSON.stringify(v)}`);
  return n;
}
