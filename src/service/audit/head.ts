/**
 * The newest signed checkpoint as an anchor line (`audit checkpoint`), for an operator or cron
 * job to anchor elsewhere (a WORM bucket, another host). It is checked before it is handed out —
 * signature under the (pinned) key, and the entry at its seq still has its hash — so a forged
 * or stale row is refused instead of being anchored.
 */
import { fail } from "../../format/errors.js";
import type { Database } from "../db/schema.js";
import { type AnchorLine, anchorLine } from "./anchor-line.js";
import { checkCheckpoint } from "./chain.js";
import { newestCheckpoint } from "./store.js";
import { ed25519FromRaw } from "./verify.js";

export async function newestAnchorLine(
  d: Database,
  opts: { publicKey?: string } = {},
): Promise<{ line: string; checkpoint: AnchorLine }> {
  const meta = Object.fromEntries(
    (await d.db.selectFrom("meta").selectAll().execute()).map((r) => [r.k, r.v]),
  );
  const server = meta.server_id ?? "";
  const cp = await newestCheckpoint(d.db);
  if (!cp) fail("E_USAGE", `no signed checkpoint in ${d.where} yet: nothing to anchor`);
  const seq = Number(cp.seq);
  let ok = false;
  try {
    ok = checkCheckpoint(
      ed25519FromRaw(opts.publicKey ?? meta.audit_public_key ?? ""),
      server,
      seq,
      cp.hash,
      cp.signature,
    );
  } catch {
    ok = false;
  }
  if (!ok) fail("E_HEADER_MAC", `checkpoint ${seq} has a bad signature: not anchoring it`);
  const entry = await d.db
    .selectFrom("audit")
    .select("hash")
    .where("seq", "=", seq)
    .executeTakeFirst();
  if (entry?.hash !== cp.hash)
    fail(
      "E_HEADER_MAC",
      `entry ${seq} is missing or differs from its checkpoint: run \`audit verify\``,
    );
  const checkpoint = { server, seq, hash: cp.hash, signature: cp.signature, ts: cp.ts };
  return { line: anchorLine(server, checkpoint), checkpoint };
}
