/** `tensorseal inventory`: keys, versions and sealed artifacts, as a table, JSON or a CBOM. */
export { inventoryCommand } from "./command.js";
export type * from "./model.js";
export { type InventoryOptions, runInventory } from "./run.js";
