/** Key and artifact inventory (`tensorseal inventory`): gathered, then as table rows or a CBOM. */
export type * from "./model.js";
export { type InventoryOptions, runInventory } from "./run.js";
export { tableRows } from "./table.js";
