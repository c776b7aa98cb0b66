/**
 * A key service with attested release for the attestation tests: a test verifier (Ed25519
 * JWTs, its JWKS in a file as `serve --attestation-jwks` reads it), an unwrap-only token, and
 * one key with a data key generated under it (its stanza and file key).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { type Database, loadKeySet } from "../../src/service/index.js";
import { bearer, keyAndDataKey, server, sqliteDb, token } from "./helpers.js";
import { TestIssuer } from "./verifier.js";

export const VERIFIER = "https://verifier.test";

export interface AttestedService {
  readonly dir: string;
  readonly db: Database;
  readonly app: FastifyInstance;
  readonly verifier: TestIssuer;
  /** A token with the unwrap scope only. */
  readonly unwrapper: string;
  /** Key "secure" and a data key of it. */
  readonly secure: { stanza: { type: string; fields: string[] }; fileKey: string };
  /** A fresh nonce from `POST /v1/attestation/challenge`. */
  challenge(): Promise<string>;
  close(): Promise<void>;
}

export async function startAttestedService(name: string): Promise<AttestedService> {
  const dir = mkdtempSync(join(tmpdir(), `tensorseal-${name}-`));
  const verifier = await TestIssuer.create(VERIFIER, "EdDSA");
  const tdb = sqliteDb();
  const db = await tdb.open();
  const app = await server(db, {
    attestation: {
      issuer: VERIFIER,
      keys: await loadKeySet(verifier.writeJwks(dir, "verifier.json"), "--attestation-jwks"),
      nonceTtlMs: 30_000,
    },
  });
  const admin = await token(db, "admin,wrap");
  const unwrapper = await token(db, "unwrap");
  const secure = await keyAndDataKey(app, admin, "secure");
  return {
    dir,
    db,
    app,
    verifier,
    unwrapper,
    secure,
    async challenge() {
      const c = await app.inject({
        method: "POST",
        url: "/v1/attestation/challenge",
        headers: bearer(unwrapper),
        payload: {},
      });
      assert.equal(c.statusCode, 200, c.body);
      return c.json().nonce as string;
    },
    async close() {
      await app.close();
      await db.close();
      await tdb.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
