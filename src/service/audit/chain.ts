/**
 * The audit chain: entry n is canonical JSON holding `seq` = n and `prev` = hash of entry n-1
 * (64 zeros for n = 1); hash = hex SHA-256(canonical entry). Checkpoints sign
 * canonical({server, seq, hash}) with the server's Ed25519 key.
 */
import { createHash, type KeyObject, sign, verify } from "node:crypto";
import { canonical } from "./canonical.js";

export const GENESIS = "0".repeat(64);

/** What a request contributes; the log adds seq, ts and prev. No secret ever goes in here. */
export interface AuditRecord {
  action: string;
  /** "alert": written by anomaly detection (action `alert.*`), not by a request's answer. */
  outcome: "allowed" | "denied" | "error" | "alert";
  status: number;
  principal: string | null;
  source: string;
  requestId: string;
  resource?: Record<string, unknown>;
  reason?: string;
  /** The Cedar decision and the policies that made it (absent when authentication failed). */
  authz?: { decision: "allow" | "deny"; policies: string[] };
}

export interface ChainedEntry {
  seq: number;
  text: string;
  hash: string;
}

export function chainEntry(seq: number, prev: string, ts: string, r: AuditRecord): ChainedEntry {
  const text = canonical({ v: 1, seq, prev, ts, ...r });
  return { seq, text, hash: sha256(text) };
}

export function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** A checkpoint row: entry `seq` had hash `hash`, signed by the server's key at `ts`. */
export interface SignedCheckpoint {
  seq: number;
  hash: string;
  /** Ed25519 over checkpointMessage(server, seq, hash), base64. */
  signature: string;
  ts: string;
}

export function checkpointMessage(server: string, seq: number, hash: string): Buffer {
  return Buffer.from(canonical({ hash, seq, server, type: "tensorseal-audit-checkpoint" }), "utf8");
}

export function signCheckpoint(key: KeyObject, server: string, seq: number, hash: string): string {
  return sign(null, checkpointMessage(server, seq, hash), key).toString("base64");
}

export function checkCheckpoint(
  key: KeyObject,
  server: string,
  seq: number,
  hash: string,
  signature: string,
): boolean {
  try {
    return verify(
      null,
      checkpointMessage(server, seq, hash),
      key,
      Buffer.from(signature, "base64"),
    );
  } catch {
    return false;
  }
}
