/**
 * What every replica must agree on, kept in the `meta` table and created by the first replica:
 * the server id (stamped into service stanzas), the root check value, the Ed25519 audit
 * signing key (sealed under the root) and the checkpoint interval.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from "node:crypto";
import { fail } from "../format/errors.js";
import type { Database } from "./db/schema.js";
import {
  deriveRootKeys,
  openSecret,
  type RootKeys,
  SIGNING_KEY_NAME,
  sealSecret,
} from "./keys/sealing.js";

export interface ServerState {
  readonly serverId: string;
  readonly root: RootKeys;
  readonly signingKey: KeyObject;
  /** Raw Ed25519 public key, base64: pin it when verifying the audit log. */
  readonly auditPublicKey: string;
  readonly checkpointEvery: number;
}

export const DEFAULT_CHECKPOINT_EVERY = 64;

async function getOrSet(d: Database, k: string, make: () => string): Promise<string> {
  const v = make();
  await d.db
    .insertInto("meta")
    .values({ k, v })
    .onConflict((oc) => oc.column("k").doNothing())
    .execute();
  const row = await d.db
    .selectFrom("meta")
    .select("v")
    .where("k", "=", k)
    .executeTakeFirstOrThrow();
  return row.v;
}

export async function loadServerState(
  d: Database,
  rootKey: Uint8Array,
  opts: { checkpointEvery?: number } = {},
): Promise<ServerState> {
  const root = deriveRootKeys(rootKey);
  const serverId = await getOrSet(d, "server_id", () => `ts-${randomBytes(12).toString("hex")}`);
  const check = await getOrSet(d, "root_check", () => root.check);
  if (check !== root.check) {
    fail(
      "E_KEYSTORE",
      `the root key does not match the one ${d.where} was created with: pass the right --root-key-file`,
    );
  }
  const storedEvery = await getOrSet(d, "checkpoint_every", () =>
    String(opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY),
  );
  // Replicas share it, so it lives in the database; a value that would stop the signing (0, not
  // a number) is refused rather than obeyed. Verifiers never read it (audit/verify.ts).
  const every = /^[1-9][0-9]{0,6}$/.test(storedEvery) ? Number(storedEvery) : 0;
  if (every === 0)
    fail(
      "E_KEYSTORE",
      `${d.where}: meta.checkpoint_every is ${JSON.stringify(storedEvery)}, not a positive number of entries: the database was altered; restore it, and run \`audit verify\``,
    );
  const sealedKey = await getOrSet(d, "audit_signing_key", () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const der = privateKey.export({ type: "pkcs8", format: "der" });
    return sealSecret(root.sealing, serverId, SIGNING_KEY_NAME, 1, der);
  });
  const der = openSecret(root.sealing, serverId, SIGNING_KEY_NAME, 1, sealedKey);
  const signingKey = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  der.fill(0);
  const auditPublicKey = rawPublicKey(createPublicKey(signingKey));
  await getOrSet(d, "audit_public_key", () => auditPublicKey);
  return { serverId, root, signingKey, auditPublicKey, checkpointEvery: every };
}

export function rawPublicKey(k: KeyObject): string {
  const jwk = k.export({ format: "jwk" });
  return Buffer.from(String(jwk.x), "base64url").toString("base64");
}
