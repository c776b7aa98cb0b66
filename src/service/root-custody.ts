/**
 * Which HSM/KMS keys may hold this service's root (root-sealed.ts), recorded in the database.
 * Whoever controls a custody key can unwrap the root, so adding one is an operation under dual
 * control (`custody`, approvals/operations.ts): one admin moving the root into a KMS key of their
 * own is exactly the exfiltration path it closes. A database created by the sealed root itself
 * (its first start) records that custody as its bootstrap; any other custody must be approved
 * before `serve --root-sealed` will start with it.
 *
 * One `meta` row per custody (k = "root_custody:" + a digest of the reference, v = JSON), so
 * replicas approving different custodies at once never overwrite each other.
 */
import { createHash } from "node:crypto";
import { fail } from "../format/errors.js";
import type { Database } from "./db/schema.js";
import type { RootUnseal } from "./root-sealed.js";

const PREFIX = "root_custody:";
/** `pkcs11:TOKEN/KEY` or `aws-kms:KEY`, as `service root seal` prints it. */
export const CUSTODY_PATTERN = "^(pkcs11:[^/]{1,32}/.+|aws-kms:.+)$";
export const MAX_CUSTODY = 2100;

export interface CustodyRecord {
  readonly custody: string;
  /** The approval request that added it, or "bootstrap" for the database's first start. */
  readonly approval: string;
  readonly at: string;
}

function metaKey(custody: string): string {
  return PREFIX + createHash("sha256").update(custody, "utf8").digest("hex").slice(0, 40);
}

export function checkCustodyRef(custody: string): string {
  if (custody.length > MAX_CUSTODY || !new RegExp(CUSTODY_PATTERN).test(custody))
    fail("E_USAGE", "a custody is pkcs11:TOKEN/KEY or aws-kms:KEY_ARN");
  return custody;
}

export class RootCustody {
  constructor(private readonly d: Database) {}

  async list(): Promise<CustodyRecord[]> {
    const rows = await this.d.db
      .selectFrom("meta")
      .select("v")
      .where("k", "like", `${PREFIX}%`)
      .execute();
    return rows
      .map((r) => JSON.parse(r.v) as CustodyRecord)
      .sort((a, b) => a.at.localeCompare(b.at));
  }

  async find(custody: string): Promise<CustodyRecord | null> {
    const row = await this.d.db
      .selectFrom("meta")
      .select("v")
      .where("k", "=", metaKey(custody))
      .executeTakeFirst();
    const rec = row ? (JSON.parse(row.v) as CustodyRecord) : null;
    // A digest collision or an edited row is not an approval of this reference.
    return rec?.custody === custody ? rec : null;
  }

  /** Records `custody` (idempotent: the first approval stays on record). */
  async add(custody: string, approval: string, at: string): Promise<CustodyRecord> {
    const rec: CustodyRecord = { custody: checkCustodyRef(custody), approval, at };
    await this.d.db
      .insertInto("meta")
      .values({ k: metaKey(custody), v: JSON.stringify(rec) })
      .onConflict((oc) => oc.column("k").doNothing())
      .execute();
    return (await this.find(custody)) ?? rec;
  }
}

/** True while the database has never been started (no root recorded yet). */
export async function databaseIsNew(d: Database): Promise<boolean> {
  const row = await d.db
    .selectFrom("meta")
    .select("k")
    .where("k", "=", "root_check")
    .executeTakeFirst();
  return !row;
}

/**
 * Start-time gate for a root unsealed by a provider: its custody must be on record, or the
 * database must be new (the custody becomes its bootstrap). Fails closed otherwise.
 */
export async function admitCustody(
  d: Database,
  unseal: RootUnseal,
  databaseWasNew: boolean,
  now: Date,
): Promise<CustodyRecord> {
  const custody = new RootCustody(d);
  const known = await custody.find(unseal.custody);
  if (known) return known;
  if (databaseWasNew) return custody.add(unseal.custody, "bootstrap", now.toISOString());
  return fail(
    "E_KEYSTORE",
    `${d.where}: the root's custody ${unseal.custody} is not approved for this service: request it on the running service (\`tensorseal service approvals request custody --custody ${unseal.custody}\`) and have it approved, then start with --root-sealed`,
  );
}
