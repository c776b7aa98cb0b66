/**
 * The `inventory` command's work: options checked, inventory gathered (src/inventory/), report
 * printed. Loaded by the command's action only (commands/inventory.ts).
 */
import { randomUUID } from "node:crypto";
import { fail } from "../../format/errors.js";
import { runInventory, tableRows } from "../../inventory/index.js";
import { defaultHome } from "../../keys/index.js";
import { describeStanza } from "../describe.js";
import { keystoreOptions } from "../keys-context.js";
import { printJson } from "../options.js";
import { printRow } from "../output.js";
import { defaultRotationSeconds } from "../rotation-default.js";

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
  const defaultRotation = defaultRotationSeconds();
  const server = o.server ?? process.env.TENSORSEAL_SERVER;
  const inv = await runInventory({
    paths,
    home: defaultHome(),
    now,
    defaultRotation,
    server: server || undefined,
    keystoreOptions: ksOpts,
    describe: describeStanza,
  });
  if (format === "json") return printJson(inv);
  if (format === "cyclonedx") {
    // The CycloneDX library loads only for this format.
    const { toCbom } = await import("../../inventory/cbom.js");
    return printJson(toCbom(inv, TOOL_VERSION, `urn:uuid:${randomUUID()}`));
  }
  for (const row of tableRows(inv)) printRow(row);
}
