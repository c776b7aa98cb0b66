/**
 * Wycheproof Cobblestone-256 vectors (c2sp.org/chunked-encryption, AES-256-GCM, HKDF-SHA-512,
 * 16 KiB chunks) against the payload code of spec/FORMAT.md §4: the streaming opener fed in
 * pieces of varied sizes, raw mode over chunked.ts, deterministic re-encryption with the salt
 * injected, and random-access length authentication through the final chunk.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { inflateSync } from "node:zlib";
import {
  type ChunkKeys,
  checkCommitment,
  deriveChunkKeys,
  openChunk,
  PAYLOAD_PREFIX_SIZE,
  SALT_SIZE,
  sealChunk,
  TAG_SIZE,
} from "../../src/format/chunked.js";
import { type ErrorCode, isTensorSealError, TensorSealError } from "../../src/format/errors.js";
import { PayloadGeometry } from "../../src/format/geometry.js";
import { PayloadOpener, PayloadSealer } from "../../src/format/payload.js";
import { hex, loadWycheproof, type WycheproofTest } from "./wycheproof.js";

interface ChunkedTest extends WycheproofTest {
  key: string;
  ctx: string;
  ct: string;
  aeadKey?: string;
  baseNonce?: string;
  msgLength?: number;
  msgSha512?: string;
}

const CHUNK = 16384;
const SEALED = CHUNK + TAG_SIZE;

function sha512(parts: readonly Buffer[]): string {
  const h = createHash("sha512");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

interface StreamResult {
  readonly parts: Buffer[];
  readonly error: unknown;
  readonly opener: Pick<PayloadOpener, "released" | "push" | "finish">;
}

function streamOpen(ct: Buffer, key: Buffer, ctx: Buffer, piece: number): StreamResult {
  let opener: PayloadOpener;
  try {
    opener = new PayloadOpener(key, ctx, CHUNK);
  } catch (error) {
    // A wrong-size key is refused at construction; it stays refused like any other failure.
    const rethrow = (): never => {
      throw error;
    };
    return { parts: [], error, opener: { released: 0, push: rethrow, finish: rethrow } };
  }
  const parts: Buffer[] = [];
  try {
    for (let i = 0; i < ct.length; i += piece) {
      parts.push(...opener.push(ct.subarray(i, i + piece)));
    }
    parts.push(opener.finish());
    return { parts, error: null, opener };
  } catch (e) {
    return { parts, error: e, opener };
  }
}

/** Raw mode: aeadKey and baseNonce given, no salt/commitment prefix. */
function rawOpen(keys: ChunkKeys, body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let index = 0;
  let pos = 0;
  while (body.length - pos >= SEALED) {
    out.push(openChunk(keys, index++, body.subarray(pos, pos + SEALED)));
    pos += SEALED;
  }
  out.push(openChunk(keys, index, body.subarray(pos)));
  return out;
}

/** Random access: authenticate the length by opening only the final chunk. */
function openFinalChunk(ct: Buffer, key: Buffer, ctx: Buffer): Buffer {
  const geo = new PayloadGeometry(CHUNK);
  const length = geo.plaintextLength(ct.length);
  const keys = deriveChunkKeys(key, ct.subarray(0, SALT_SIZE), ctx, CHUNK);
  checkCommitment(keys, ct.subarray(SALT_SIZE, PAYLOAD_PREFIX_SIZE));
  const last = geo.chunkCount(length) - 1;
  const pt = openChunk(keys, last, ct.subarray(geo.chunkOffset(last)));
  assert.equal(pt.length, geo.chunkPlaintextLength(last, length));
  return pt;
}

function headerFailureCode(t: ChunkedTest): ErrorCode {
  if (t.flags.includes("InvalidKeySize")) return "E_KEY";
  if (t.flags.includes("Truncation")) return "E_TRUNCATED";
  return "E_COMMITMENT"; // modified salt or commitment, wrong key, wrong context
}

describe("wycheproof c2sp_chunked_encryption_aes_256_gcm_test.json (Cobblestone-256)", () => {
  const file = loadWycheproof<ChunkedTest>("c2sp_chunked_encryption_aes_256_gcm_test.json");
  const counts = { ran: 0, valid: 0, raw: 0, resealed: 0, finalChunkOk: 0, headerFailure: 0 };
  for (const g of file.testGroups) {
    assert.equal(g["aead"], "AEAD_AES_256_GCM");
    assert.equal(g["sha"], "SHA-512");
    for (const t of g.tests) {
      test(`tcId ${t.tcId} ${t.result} [${t.flags.join(",")}] ${t.comment}`, () => {
        const ct = inflateSync(hex(t.ct));
        const key = hex(t.key);
        const ctx = hex(t.ctx);
        const valid = t.result === "valid";
        const headerFailure = t.flags.includes("HeaderFailure");
        const prefixLength = t.msgLength ?? 0;

        // (1) streaming opener, fed in pieces of varied sizes (1 and 7 bytes only when small).
        const pieces =
          ct.length <= 64 * 1024 ? [1, 7, SEALED, ct.length || 1] : [4093, SEALED, ct.length];
        let message: Buffer | null = null;
        for (const piece of pieces) {
          const { parts, error, opener } = streamOpen(ct, key, ctx, piece);
          const what = `piece size ${piece}`;
          if (valid) {
            assert.equal(error, null, what);
            message = Buffer.concat(parts);
            assert.equal(message.length, t.msgLength, what);
            assert.equal(sha512(parts), t.msgSha512, what);
            assert.equal(opener.released, t.msgLength, what);
            continue;
          }
          assert.ok(error instanceof TensorSealError, `${what}: must fail with a TensorSealError`);
          // `released` counts authenticated plaintext; a push that fails part-way hands out
          // none of it (its chunks are dropped with the exception), so handed <= released.
          const handed = parts.reduce((n, p) => n + p.length, 0);
          const released = opener.released;
          assert.ok(handed <= released, what);
          assert.ok(released <= prefixLength, `${what}: released ${released} > ${prefixLength}`);
          if (t.flags.includes("PartialPlaintext") && handed === prefixLength) {
            assert.equal(sha512(parts), t.msgSha512, `${what}: released prefix`);
          }
          if (headerFailure || t.flags.includes("WrongKey") || t.flags.includes("WrongContext")) {
            assert.equal(released, 0, `${what}: header failures release nothing`);
            assert.equal(error.code, headerFailureCode(t), what);
          } else {
            assert.ok(["E_DECRYPT", "E_TRUNCATED"].includes(error.code), `${what}: ${error.code}`);
          }
          // The opener remembers its failure: every later call fails the same way.
          assert.throws(
            () => opener.finish(),
            (e) => e === error,
          );
          assert.throws(
            () => opener.push(Buffer.alloc(SEALED)),
            (e) => e === error,
          );
        }

        // (2) raw mode: aeadKey and baseNonce directly, chunk by chunk.
        if (!headerFailure) {
          assert.ok(t.aeadKey && t.baseNonce, "non-HeaderFailure vectors carry raw keys");
          const keys: ChunkKeys = {
            aeadKey: hex(t.aeadKey),
            baseNonce: hex(t.baseNonce),
            commitment: Buffer.alloc(32),
          };
          if (key.length === 32 && ct.length >= SALT_SIZE) {
            const derived = deriveChunkKeys(key, ct.subarray(0, SALT_SIZE), ctx, CHUNK);
            assert.equal(derived.aeadKey.toString("hex"), t.aeadKey, "derived aeadKey");
            assert.equal(derived.baseNonce.toString("hex"), t.baseNonce, "derived baseNonce");
          }
          const body = ct.subarray(Math.min(PAYLOAD_PREFIX_SIZE, ct.length));
          if (valid) {
            const chunks = rawOpen(keys, body);
            assert.equal(sha512(chunks), t.msgSha512, "raw mode plaintext");
            const resealed = Buffer.concat(chunks.map((c, i) => sealChunk(keys, i, c)));
            assert.ok(resealed.equals(body), "raw re-encryption must reproduce the chunks");
          } else {
            assert.throws(() => rawOpen(keys, body), TensorSealError);
          }
          counts.raw++;
        } else {
          counts.headerFailure++;
        }

        // (3) deterministic encryption: the vector's salt injected reproduces ct exactly.
        if (valid) {
          assert.ok(message);
          const sealer = new PayloadSealer(key, ctx, CHUNK, ct.subarray(0, SALT_SIZE));
          const out = Buffer.concat([sealer.prefix, ...sealer.push(message), sealer.finish()]);
          assert.ok(out.equals(ct), "PayloadSealer with the vector's salt must reproduce ct");
          counts.resealed++;
          counts.valid++;
        }

        // (4) random access: the final chunk authenticates the length.
        if (valid || t.flags.includes("ValidFinalChunk")) {
          openFinalChunk(ct, key, ctx);
          counts.finalChunkOk++;
        } else {
          assert.throws(
            () => openFinalChunk(ct, key, ctx),
            (e) => isTensorSealError(e),
          );
        }
        counts.ran++;
      });
    }
  }
  test("ran every vector in every mode", () => {
    assert.equal(file.numberOfTests, 35);
    assert.deepEqual(counts, {
      ran: 35,
      valid: 10,
      raw: 25,
      resealed: 10,
      finalChunkOk: 14,
      headerFailure: 10,
    });
  });
});
