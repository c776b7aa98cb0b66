import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import { SCOPES } from "../../service/auth/principal.js";
import type { TokenRepo } from "../../service/index.js";
import { printJson } from "../options.js";
import { say } from "../output.js";

/** The key service (Fastify, database drivers, Cedar): loaded only when a subcommand runs. */
const keyService = () => import("../../service/index.js");

async function withTokens<T>(db: string | undefined, f: (t: TokenRepo) => Promise<T>): Promise<T> {
  const { openDatabase, TokenRepo } = await keyService();
  const { serviceDbUrl } = await import("../service-db.js");
  const d = await openDatabase(serviceDbUrl(db));
  try {
    return await f(new TokenRepo(d));
  } finally {
    await d.close();
  }
}

export function registerServiceToken(program: Command): void {
  const token = program
    .command("service")
    .description(
      "key service administration: tokens (from the service database), artifacts (over HTTPS)",
    )
    .command("token")
    .description("bootstrap bearer tokens (stored hashed; printed once)");
  token
    .command("create")
    .description("create a token and print it once on stdout")
    .requiredOption("--scope <list>", `comma-separated: ${SCOPES.join(", ")}`)
    .option("--label <text>", "a note for humans, shown by `service token list`", "")
    .option("--db <url>", "service database (default: sqlite:$TENSORSEAL_HOME/service.db)")
    .option("--json", "print JSON: {id, token, scopes, label}")
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal service token create --scope admin --label ops > admin.token\n  tensorseal service token create --scope wrap,unwrap --label trainer --db postgres://ts@db/tensorseal",
    )
    .action(async (o) => {
      const { parseScopes } = await keyService();
      let scopes: ReturnType<typeof parseScopes>;
      try {
        scopes = parseScopes(o.scope);
      } catch (e) {
        return fail("E_USAGE", `--scope: ${(e as Error).message}`);
      }
      const t = await withTokens(o.db, (r) => r.create(scopes, o.label));
      if (o.json) printJson({ id: t.id, token: t.token, scopes, label: o.label });
      else process.stdout.write(`${t.token}\n`);
      say(`token ${t.id} created with scopes ${scopes.join(",")}; it is not shown again`);
    });
  token
    .command("list")
    .description("list tokens (ids and scopes, never the tokens)")
    .option("--db <url>", "service database (default: sqlite:$TENSORSEAL_HOME/service.db)")
    .option("--json", "print JSON (the output is JSON anyway)")
    .addHelpText("after", "\nExample:\n  tensorseal service token list")
    .action(async (o) => printJson(await withTokens(o.db, (r) => r.list())));
  token
    .command("revoke")
    .description("revoke a token by id (replicas honour it within 2 seconds)")
    .argument("<id>", "token id from `service token list`")
    .option("--db <url>", "service database (default: sqlite:$TENSORSEAL_HOME/service.db)")
    .option("--json", "print JSON: {id, revoked: true}")
    .addHelpText(
      "after",
      "\nExample:\n  tensorseal service token revoke 3f9c2b7a1d4e8f60   # the id from `service token list`",
    )
    .action(async (id: string, o) => {
      if (!(await withTokens(o.db, (r) => r.revoke(id)))) fail("E_USAGE", `no active token ${id}`);
      if (o.json) printJson({ id, revoked: true });
      else say(`token ${id} revoked`);
    });
}
