/**
 * Audit database edited or rolled back: an insider with database access rewrites an entry
 * (hiding who released a key), then deletes the newest entries together with the checkpoints
 * that signed them (a rollback the chain alone cannot show). `audit verify` with the pinned
 * public key and the checkpoint anchor kept outside the database must report both.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { openDatabase } from "../../service/db/open.js";
import { verifyAuditLog } from "../../service/index.js";
import type { DrillContext, Scenario } from "../types.js";
import { ok200 } from "./util.js";

const EVERY = 8;

export const auditRollback: Scenario = {
  name: "audit-rollback",
  summary:
    "audit entries edited, then the tail rolled back with its checkpoints: verify against the pinned key and the anchor reports both",
  weakenings: { "no-anchor": "verify without the checkpoint anchor (the database alone)" },
  async run(ctx: DrillContext) {
    const sb = ctx.sandbox;
    await mkdir(join(sb.dir, "anchor"), { mode: 0o700 });
    const anchor = join(sb.dir, "anchor", "checkpoints.jsonl");
    const svc = await sb.startService({
      checkpointEvery: EVERY,
      checkpointAnchor: { file: anchor },
    });
    const publicKey = svc.app.tensorseal.auditPublicKey;
    await ok200(svc.admin, "/v1/keys", { name: "ledger" });
    const user = await svc.principal(["unwrap"]);
    for (let i = 0; i < 12; i++) {
      const { stanza } = await ok200(svc.admin, "/v1/datakeys/generate", { key: "ledger" });
      await ok200(user.client, "/v1/datakeys/unwrap", { stanza });
    }
    // A clean shutdown signs the head; the anchor then holds every checkpoint.
    await svc.app.tensorseal.anchored();
    await svc.stop();

    const db = await openDatabase(sb.dbUrl);
    try {
      const verify = () =>
        verifyAuditLog(db, {
          publicKey,
          checkpointEvery: EVERY,
          ...(ctx.weakened.has("no-anchor") ? {} : { anchor }),
        });
      const before = await verify();
      ctx.check("the untouched log verifies", before.ok, before.problems.slice(0, 2).join("; "));
      const last = before.lastSeq;

      // Attack 1: an unwrap entry rewritten to name another principal.
      const victim = await db.db
        .selectFrom("audit")
        .select(["seq", "entry"])
        .where("action", "=", "datakeys.unwrap")
        .orderBy("seq")
        .executeTakeFirstOrThrow();
      ctx.breach();
      const edited = victim.entry.replace(user.id, "token:someone-else");
      await db.db
        .updateTable("audit")
        .set({ entry: edited })
        .where("seq", "=", victim.seq)
        .execute();
      const afterEdit = await verify();
      const editFound =
        !afterEdit.ok && afterEdit.problems.some((p) => p.includes(String(victim.seq)));
      if (editFound) ctx.detected();
      ctx.check(
        `the edited entry ${victim.seq} is reported`,
        editFound,
        afterEdit.problems[0] ?? "no problem reported",
      );
      await db.db
        .updateTable("audit")
        .set({ entry: victim.entry })
        .where("seq", "=", victim.seq)
        .execute();

      // Attack 2: the tail and its checkpoints deleted, back to an older signed checkpoint.
      const keep = Math.floor((last - 1) / EVERY) * EVERY - EVERY;
      await db.db.deleteFrom("audit_refs").where("seq", ">", keep).execute();
      await db.db.deleteFrom("audit").where("seq", ">", keep).execute();
      await db.db.deleteFrom("checkpoints").where("seq", ">", keep).execute();
      const afterRollback = await verify();
      const rollbackFound =
        !afterRollback.ok && afterRollback.problems.some((p) => /rollback/i.test(p));
      ctx.check(
        `the rollback from entry ${last} to ${keep} is reported`,
        rollbackFound,
        afterRollback.problems[0] ?? "no problem reported",
      );
      if (editFound && rollbackFound) ctx.contained();
    } finally {
      await db.close();
    }
  },
};
