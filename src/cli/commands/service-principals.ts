/**
 * `tensorseal service principals blocked|unblock ID`: principals blocked by the key service's
 * anomaly auto-block, over HTTPS with the seal/open client (TENSORSEAL_SERVER or --server,
 * TENSORSEAL_SERVER_TOKEN[_FILE], TENSORSEAL_SERVER_CA). Needs an admin token by default.
 */
import type { Command } from "commander";
import { printJson } from "../options.js";
import { printRow, say } from "../output.js";
import { serviceGroup, withClient } from "./service-shared.js";

interface Blocked {
  principal: string;
  since: string;
  reason: string;
}

export function registerServicePrincipals(program: Command): void {
  const service = serviceGroup(program);
  const principals = service
    .command("principals")
    .description("principals blocked by anomaly detection (over HTTPS; admin token)");
  principals
    .command("blocked")
    .description("list blocked principals (tab-separated: principal, since, reason)")
    .option("--json", "print JSON (an array)")
    .addHelpText("after", "\nExample:\n  tensorseal service principals blocked")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const list = await withClient(cmd, async (c) => {
        const r = await c.get("/v1/principals/blocked");
        if (r.status !== 200) c.refused("/v1/principals/blocked", r);
        return r.body.blocked as Blocked[];
      });
      if (o.json) return printJson(list);
      for (const b of list) printRow([b.principal, b.since, b.reason]);
    });
  principals
    .command("unblock")
    .description("lift the block: the principal's requests are served again")
    .argument("<id>", "principal id, e.g. token:tok_… or jwt:SUBJECT")
    .option("--json", "print JSON: {principal, unblocked: true}")
    .addHelpText(
      "after",
      "\nExample:\n  tensorseal service principals unblock token:3f9c2b7a1d4e8f60   # as `principals blocked` lists it",
    )
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, async (c) => {
        const path = `/v1/principals/${encodeURIComponent(id)}/unblock`;
        const r = await c.post(path, {});
        if (r.status !== 200) c.refused(path, r);
      });
      if (o.json) printJson({ principal: id, unblocked: true });
      else say(`${id} unblocked`);
    });
}
