/** The `inventory` command's work: options checked, inventory gathered, report printed. */
import { randomUUID } from "node:crypto";
import { parseDuration } from "../cli/commands/keys.js";
import { keystoreOptions } from "../cli/keys-context.js";
import { printJson } from "../cli/options.js";
import { printRow } from "../cli/output.js";
import { doctorConfig } from "../cli/project-config.js";
import { DEFAULT_ROTATION_SECONDS } from "../doctor/check-rotation.js";
import { fail } from "../format/errors.js";
import { defaultHome } from "../keys/index.js";
import { runInventory } from "./run.js";
import { tableRows } from "./table.js";

export interface InventoryFlags {
  format: string;
  json?: boolean;
  server?: string;
}

export const TOOL_VERSION = "0.1.0";

export async function inventoryCommand(paths: string[], o: InventoryFlags): Promise<void> {
  const format = o.json ? "json" : o.format;
  if (!["table", "json", "cyclonedx"].includes(format))
    fail("E_USAGE", `--format must be table, json or cyclonedx, not ${JSON.stringify(format)}`);
  if (o.json && o.format !== "table" && o.format !== "json")
    fail("E_USAGE", `--json and --format ${o.format} are contradictory: give one`);
  const ksOpts = keystoreOptions();
  const now = ksOpts.now?.() ?? new Date();
  const config = doctorConfig();
  const defaultRotation =
    config.rotationPeriod === undefined
      ? DEFAULT_ROTATION_SECONDS
      : parseDuration(config.rotationPeriod);
  const server = o.server ?? process.env.TENSORSEAL_SERVER;
  const inv = await runInventory({
    paths,
    home: defaultHome(),
    now,
    defaultRotation,
    server: server || undefined,
    keystoreOptions: ksOpts,
  });
  if (format === "json") return printJson(inv);
  if (format === "cyclonedx") {
    // The CycloneDX library loads only for this format.
    const { toCbom } = await import("./cbom.js");
    return printJson(toCbom(inv, TOOL_VERSION, `urn:uuid:${randomUUID()}`));
  }
  for (const row of tableRows(inv)) printRow(row);
}
