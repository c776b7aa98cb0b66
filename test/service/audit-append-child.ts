/**
 * A second writer for test/service/audit-store.test.ts, in its own process (better-sqlite3 is
 * synchronous: two writers in one process would block each other's event loop):
 *   node audit-append-child.js DB_URL ROOT_HEX NAME BATCHES
 * Appends BATCHES batches of 1..7 records with request ids NAME-i-j, then exits 0.
 */

import { openDatabase } from "../../src/service/db/open.js";
import { AuditStore } from "../../src/service/index.js";
import { loadServerState } from "../../src/service/state.js";
import { appendBatches } from "./audit-store-helpers.js";

const [url, rootHex, name, batches] = process.argv.slice(2);
const db = await openDatabase(url!);
const state = await loadServerState(db, Buffer.from(rootHex!, "hex"), {});
const store = new AuditStore(db, {
  every: state.checkpointEvery,
  server: state.serverId,
  key: state.signingKey,
});
await appendBatches(store, name!, Number(batches));
await db.close();
