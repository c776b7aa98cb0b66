/**
 * service.token-no-expiry: bootstrap bearer tokens (`service token create`) never expire, so a
 * live one older than `maxDays` is a standing credential nobody rotated: a warning, an error
 * when it holds the admin scope. Read from the service database, as `service token list` does
 * (opening it applies pending schema migrations, as every command that opens it does); the
 * tokens themselves are stored hashed and never read.
 */
import type { TokenRepo } from "../service/auth/tokens.js";
import type { Finding } from "./findings.js";

/** The default of `doctor --token-days` and the limit the service's overview applies. */
export const DEFAULT_TOKEN_DAYS = 90;

type ListedToken = Awaited<ReturnType<TokenRepo["list"]>>[number];

export async function checkTokens(dbUrl: string, now: Date, maxDays: number): Promise<Finding[]> {
  const { openDatabase, TokenRepo } = await import("../service/index.js");
  const db = await openDatabase(dbUrl, { poolSize: 1 });
  let tokens: ListedToken[];
  try {
    tokens = await new TokenRepo(db).list();
  } finally {
    await db.close();
  }
  return judgeTokens(tokens, now, maxDays);
}

/**
 * The rule itself, on listed tokens (id, scopes, label, dates: never the hash): shared by
 * `doctor --db` and the key service's overview (GET /v1/overview, `findings`).
 */
export function judgeTokens(tokens: readonly ListedToken[], now: Date, maxDays: number): Finding[] {
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
