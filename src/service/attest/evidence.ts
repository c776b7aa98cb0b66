/**
 * Attestation evidence: a JWT from an attestation verifier (Azure Attestation, Intel Trust
 * Authority, a Trustee EAR token, or the tests' local verifier). Checked: signature against the
 * verifier's JWKS, `iss`, freshness (`iat` required and at most `maxAgeS` old, `exp` required),
 * the challenge nonce (claim `nonce`, or `eat_nonce`) and the binding to the caller's ephemeral
 * key:
 *
 *   tensorseal_ephemeral_key = base64url(SHA-256(ephemeral public key, raw bytes))
 *
 * (32 bytes for kem "x25519", the 1216-byte X-Wing public key for kem "mlkem768x25519": evidence
 * bound to a key of one KEM never matches a key of the other)
 *
 * (the verifier puts it in the evidence's runtime/report data and copies it into the token).
 * Claims passed to policy as `context.attestation` (first claim present wins):
 *
 *   tee         ← tee | x-ms-attestation-type | attester_type        (e.g. "sev-snp", "tdx")
 *   measurement ← measurement | x-ms-sevsnpvm-launchmeasurement | tdx_mrtd
 *   debug       ← debug | x-ms-sevsnpvm-is-debuggable                 (default true: unknown is unsafe)
 *   svn         ← svn | x-ms-sevsnpvm-guestsvn                        (default 0)
 *   issuer      ← iss
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import { JWT_ALGORITHMS, jwtFailure } from "../auth/jwks.js";

export const EPHEMERAL_KEY_CLAIM = "tensorseal_ephemeral_key";

export interface AttestationClaims {
  issuer: string;
  tee: string;
  measurement: string;
  debug: boolean;
  svn: number;
}

export interface VerifiedEvidence {
  readonly nonce: string;
  readonly claims: AttestationClaims;
}

export class EvidenceError extends Error {}

export function ephemeralKeyBinding(publicKey: Uint8Array): string {
  return createHash("sha256").update(publicKey).digest("base64url");
}

function first<T>(c: JWTPayload, names: string[], ok: (v: unknown) => v is T): T | undefined {
  for (const n of names) if (ok(c[n])) return c[n] as T;
  return undefined;
}
const isStr = (v: unknown): v is string => typeof v === "string" && v.length <= 1024;
const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

export function claimsForPolicy(c: JWTPayload): AttestationClaims {
  return {
    issuer: String(c.iss ?? ""),
    tee: first(c, ["tee", "x-ms-attestation-type", "attester_type"], isStr) ?? "",
    measurement:
      first(c, ["measurement", "x-ms-sevsnpvm-launchmeasurement", "tdx_mrtd"], isStr) ?? "",
    debug: first(c, ["debug", "x-ms-sevsnpvm-is-debuggable"], isBool) ?? true,
    svn: first(c, ["svn", "x-ms-sevsnpvm-guestsvn"], isInt) ?? 0,
  };
}

export interface AttestationVerifierOptions {
  readonly issuer: string;
  readonly keys: JWTVerifyGetKey;
  /** Oldest accepted `iat`, seconds; default 300. */
  readonly maxAgeS?: number;
  readonly clockToleranceS?: number;
}

export class AttestationVerifier {
  constructor(private readonly o: AttestationVerifierOptions) {}

  /** Verifies the token and its key binding; the caller consumes the nonce. */
  async verify(token: string, ephemeralPublicKey: Uint8Array): Promise<VerifiedEvidence> {
    let c: JWTPayload;
    try {
      ({ payload: c } = await jwtVerify(token, this.o.keys, {
        issuer: this.o.issuer,
        algorithms: JWT_ALGORITHMS,
        clockTolerance: this.o.clockToleranceS ?? 30,
        maxTokenAge: this.o.maxAgeS ?? 300,
        requiredClaims: ["iat", "exp"],
      }));
    } catch (e) {
      throw new EvidenceError(`attestation evidence refused: ${jwtFailure(e)}`);
    }
    const nonce = first(c, ["nonce", "eat_nonce"], isStr);
    if (!nonce) throw new EvidenceError("attestation evidence carries no nonce");
    const bound = c[EPHEMERAL_KEY_CLAIM];
    const want = Buffer.from(ephemeralKeyBinding(ephemeralPublicKey));
    const got = Buffer.from(typeof bound === "string" ? bound : "");
    if (got.length !== want.length || !timingSafeEqual(got, want))
      throw new EvidenceError("attestation evidence is not bound to the presented ephemeral key");
    return { nonce, claims: claimsForPolicy(c) };
  }
}
