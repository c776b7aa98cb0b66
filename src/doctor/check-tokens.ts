/**
 * service.token-no-expiry: bootstrap bearer tokens (`service token create`) never expire, so a
 * live one older than `maxDays` is a standing credential nobody rotated: a warning, an error
 * when it holds the admin scope. Read from the service database, as `service token list` does
 * (opening it applies pending schema migrations, as every command that opens it does); the
 * tokens themselves are stored hashed and never read.
 */
import { openDatabase, TokenRepo } from "../service/index.js";
import type { Finding } from "./findings.js";

export async function checkTokens(dbUrl: string, now: Date, maxDays: number): Promise<Finding[]> {
  const db = await openDatabase(dbUrl, { poolSize: 1 });
  let tokens: Awaited<ReturnType<TokenRepo["list"]>>;
  try {
    tokens = await new TokenRepo(db).list();
  } finally {
    await db.close();
  }
  const out: Finding[] = [];
  for (const t of tokens) {
    if (t.revoked) continue;
    const days = Math.floor((now.getTime() - Date.parse(t.created)) / 86400_000);
    if (days < maxDays) continue;
    const admin = t.scopes.includes("admin");
    out.push({
      id: "service.token-no-expiry",
      severity: admin ? "error" : "warning",
      message: `bootstrap token ${t.id}${t.label ? ` (${t.label})` : ""} has no expiry and is ${days} days old`,
      evidence: `created ${t.created}; scopes ${t.scopes.join(",")}; not revoked; limit ${maxDays} days`,
      fix: `tensorseal service token create --scope ${t.scopes.join(",")} (hand it out), then tensorseal service token revoke ${t.id}; or use short-lived JWTs or mTLS (docs/SERVICE.md)`,
    });
  }
  return out;
}
