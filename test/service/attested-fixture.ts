/**
 * A key service with attested release for the attestation tests: a test verifier (Ed25519
 * JWTs, its JWKS in a file as `serve --attestation-jwks` reads it), an unwrap-only token, and
 * one key with a data key generated under it (its stanza and file key).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { type Database, loadKeySet } from "../../src/service/index.js";
import { bearer, keyAndDataKey, lastAuditEntry, server, sqliteDb, token } from "./helpers.js";
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
  /** `POST /v1/datakeys/unwrap-attested` of secure's stanza as the unwrapper, `payload` added. */
  release(payload: Record<string, unknown>): Promise<LightMyRequestResponse>;
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
    release(payload) {
      return app.inject({
        method: "POST",
        url: "/v1/datakeys/unwrap-attested",
        headers: bearer(unwrapper),
        payload: { stanza: secure.stanza, ...payload },
      });
    },
    async close() {
      await app.close();
      await db.close();
      await tdb.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * startAttestedService in the test file's `before` hook, closed in its `after`: what it
 * returns is read through once `before` has run.
 */
export function attestedServiceForFile(name: string): AttestedService {
  let fx: AttestedService | undefined;
  before(async () => {
    fx = await startAttestedService(name);
  });
  after(() => fx?.close());
  const get = (): AttestedService => {
    assert.ok(fx, "the attested service starts in before()");
    return fx;
  };
  return {
    get dir() {
      return get().dir;
    },
    get db() {
      return get().db;
    },
    get app() {
      return get().app;
    },
    get verifier() {
      return get().verifier;
    },
    get unwrapper() {
      return get().unwrapper;
    },
    get secure() {
      return get().secure;
    },
    challenge: () => get().challenge(),
    release: (payload) => get().release(payload),
    close: () => get().close(),
  };
}

/** The last audit entry is an unwrap-attested refused by the route's schema on `field` (400). */
export async function assertSchemaRefusal(db: Database, field: string): Promise<void> {
  const e = await lastAuditEntry(db);
  assert.equal(e.action, "datakeys.unwrap-attested");
  assert.equal(e.outcome, "error");
  assert.equal(e.status, 400);
  assert.match(String(e.reason), new RegExp(`^body/${field} must be `));
}
