/** The key service's stanza and client side (spec/FORMAT.md §3.6, docs/SERVICE.md). */
export * from "./attested.js";
export * from "./client.js";
export * from "./datakey-cache.js";
export * from "./evidence-command.js";
export * from "./latest.js";
export * from "./stanza.js";
