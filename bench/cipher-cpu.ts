/**
 * The CPU a stream's cipher work costs on the running Node, for bench/peers.ts's floor under the
 * pipe rows:
 *   node dist/bench/cipher-cpu.js MIB
 * prints one JSON line: {"cpuSeconds": ..., "gbps": ...} for sealing MIB MiB with the engine's
 * own addon (sealBatch: AES-256-GCM of 1 MiB chunks through the OpenSSL of this node binary),
 * eight chunks per call into a reused buffer, on this thread, data in cache. That is the least
 * cipher work a `tensorseal seal`/`open` of MIB MiB does on this runtime (its data also crosses
 * memory; opening costs the same per byte), so a floor built on it errs low.
 */
import { randomBytes } from "node:crypto";
import { nativeGcm } from "../src/engine/native-gcm.js";

const CHUNK = 1 << 20;
const PER_CALL = 8;

const mib = Number(process.argv[2] ?? 1024);
const gcm = nativeGcm;
if (!gcm) throw new Error("cipher-cpu: the native addon is not built (npm run build:native)");
const key = randomBytes(32);
const nonce = randomBytes(12);
const src = randomBytes(PER_CALL * CHUNK);
const dst = Buffer.alloc(PER_CALL * (CHUNK + 16));
const pass = (first: number) =>
  gcm.sealBatch(key, nonce, first, PER_CALL, CHUNK, src, 0, src.length, dst, 0);
pass(0); // warm: pages touched, code paths hot
const calls = Math.max(1, Math.round(mib / PER_CALL));
const before = process.cpuUsage();
const t0 = process.hrtime.bigint();
for (let i = 0; i < calls; i++) pass(i * PER_CALL);
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const used = process.cpuUsage(before);
const cpuSeconds = (used.user + used.system) / 1e6;
const bytes = calls * PER_CALL * CHUNK;
process.stdout.write(`${JSON.stringify({ cpuSeconds, gbps: bytes / wall / 1e9 })}\n`);
