/**
 * `serve`'s console flags: on unless --no-console; --console-oidc adds OIDC sign-in with the
 * service's own OIDC settings (issuer = --oidc-issuer, client id = --oidc-audience, so the ID
 * tokens it receives are the bearer tokens the service already accepts).
 */
import { readFile } from "node:fs/promises";
import { fail } from "../../../format/errors.js";
import type { ConsoleOptions } from "../../../service/index.js";
import type { ServeFlags } from "../../commands/serve/flags.js";

export async function consoleSettings(o: ServeFlags): Promise<ConsoleOptions | null> {
  if (!o.consoleOidc) {
    if (o.consoleOidcClientSecretFile)
      fail("E_USAGE", "--console-oidc-client-secret-file needs --console-oidc");
    return o.console ? {} : null;
  }
  if (!o.console) fail("E_USAGE", "--console-oidc and --no-console contradict each other");
  if (!o.oidcIssuer || !o.oidcAudience)
    fail(
      "E_USAGE",
      "--console-oidc needs --oidc-issuer, --oidc-audience and --oidc-jwks (the console's client id is --oidc-audience)",
    );
  let clientSecret: string | undefined;
  if (o.consoleOidcClientSecretFile) {
    clientSecret = (await readFile(o.consoleOidcClientSecretFile, "utf8")).trim();
    if (!clientSecret) fail("E_USAGE", "--console-oidc-client-secret-file is empty");
  }
  return {
    oidc: {
      issuer: o.oidcIssuer,
      clientId: o.oidcAudience,
      ...(clientSecret !== undefined ? { clientSecret } : {}),
    },
  };
}
