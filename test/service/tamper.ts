/** Test helper: rewrites the audit chain consistently from `from` on (what an insider with DB access could do). */
import { canonical } from "../../src/service/audit/canonical.js";
import { sha256 } from "../../src/service/audit/chain.js";
import type { Database } from "../../src/service/index.js";

export async function chainRewrite(
  db: Database,
  from: number,
  edit: (o: Record<string, unknown>) => Record<string, unknown>,
): Promise<void> {
  const rows = await db.db.selectFrom("audit").selectAll().orderBy("seq").execute();
  let prev = rows.find((r) => Number(r.seq) === from - 1)?.hash ?? "0".repeat(64);
  for (const r of rows.filter((x) => Number(x.seq) >= from)) {
    const o = JSON.parse(r.entry);
    const text = canonical({ ...(Number(r.seq) === from ? edit(o) : o), prev });
    const hash = sha256(text);
    await db.db.updateTable("audit").set({ entry: text, hash }).where("seq", "=", r.seq).execute();
    prev = hash;
  }
}
