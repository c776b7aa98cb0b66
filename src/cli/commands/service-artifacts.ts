/**
 * `tensorseal service artifacts list|show`: the key service's artifact inventory over HTTPS
 * with the existing service client (TENSORSEAL_SERVER or --server, TENSORSEAL_SERVER_TOKEN[_FILE],
 * TENSORSEAL_SERVER_CA). Needs a token the service lets read artifacts (default: admin or reader).
 */
import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import type { Artifact } from "../../service/index.js";
import { printJson } from "../options.js";
import { printRow } from "../output.js";
import { serviceGroup, withClient } from "./service-shared.js";

function row(a: Artifact): string[] {
  const labels = Object.entries(a.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  return [a.id, `${a.key}@v${a.version}`, a.digest, a.created, labels || "-", a.location ?? "-"];
}

export function registerServiceArtifacts(program: Command): void {
  const service = serviceGroup(program);
  const artifacts = service
    .command("artifacts")
    .description("the key service's artifact inventory (over HTTPS; token with admin or reader)");
  artifacts
    .command("list")
    .description("list artifacts ordered by id (every page), optionally by key and one label")
    .option("--key <name>", "only artifacts sealed under this key")
    .option("--label <k=v>", "only artifacts with this label (exact match)")
    .option("--json", "print JSON (an array of artifacts)")
    .addHelpText(
      "after",
      "\nExamples:\n  TENSORSEAL_SERVER=https://kms:8443 tensorseal service artifacts list --label team=ml\n  tensorseal service artifacts list --key models --json",
    )
    .action(async (o: { key?: string; label?: string; json?: boolean }, cmd: Command) => {
      if (o.label !== undefined && o.label.indexOf("=") <= 0)
        fail("E_USAGE", `--label expects KEY=VALUE, got ${JSON.stringify(o.label)}`);
      const all = await withClient(cmd, async (c) => {
        const out: Artifact[] = [];
        let cursor: string | undefined;
        do {
          const q = new URLSearchParams({ limit: "1000" });
          if (o.key !== undefined) q.set("key", o.key);
          if (o.label !== undefined) q.set("label", o.label);
          if (cursor !== undefined) q.set("cursor", cursor);
          const path = `/v1/artifacts?${q}`;
          const r = await c.get(path);
          if (r.status !== 200) c.refused("/v1/artifacts", r);
          out.push(...(r.body.artifacts as Artifact[]));
          cursor = typeof r.body.nextCursor === "string" ? r.body.nextCursor : undefined;
        } while (cursor !== undefined);
        return out;
      });
      if (o.json) return printJson(all);
      for (const a of all) printRow(row(a));
    });
  artifacts
    .command("show")
    .description("one artifact (JSON)")
    .argument("<id>", "artifact id")
    .option("--json", "print JSON (the output is JSON anyway)")
    .addHelpText(
      "after",
      "\nExample:\n  tensorseal service artifacts show art_5d1e0c9a7b3f4e21a8c6d2f0b9e7a413   # an id from `artifacts list`",
    )
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const a = await withClient(cmd, async (c) => {
        const path = `/v1/artifacts/${encodeURIComponent(id)}`;
        const r = await c.get(path);
        if (r.status !== 200) c.refused(path, r);
        return r.body;
      });
      printJson(a);
    });
}
