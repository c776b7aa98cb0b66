/**
 * Key sets for verifying JWTs (OIDC bearer tokens, attestation evidence): an https:// URL
 * (fetched and cached by jose's createRemoteJWKSet, refreshed on an unknown `kid`), or a file
 * holding a JWKS document (`{"keys": [...]}`), read once at start.
 */
import { readFile } from "node:fs/promises";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from "jose";
import { fail } from "../../format/errors.js";

export async function loadKeySet(spec: string, what: string): Promise<JWTVerifyGetKey> {
  if (/^https?:\/\//.test(spec)) {
    const url = new URL(spec);
    if (url.protocol !== "https:" && !["127.0.0.1", "localhost", "[::1]"].includes(url.hostname))
      fail("E_USAGE", `${what} ${spec}: a remote JWKS must be https://`);
    return createRemoteJWKSet(url, { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
  }
  let doc: JSONWebKeySet;
  try {
    doc = JSON.parse(await readFile(spec, "utf8")) as JSONWebKeySet;
  } catch (e) {
    return fail("E_USAGE", `${what} ${spec}: not a readable JWKS file (${(e as Error).message})`);
  }
  if (!Array.isArray(doc?.keys) || doc.keys.length === 0)
    fail("E_USAGE", `${what} ${spec}: a JWKS needs a non-empty "keys" array`);
  for (const k of doc.keys) {
    if ("d" in k) fail("E_USAGE", `${what} ${spec}: holds a private key; publish public keys only`);
  }
  return createLocalJWKSet(doc);
}

/** Asymmetric algorithms only: no `none`, no HMAC (a shared secret is not an identity). */
export const JWT_ALGORITHMS = ["ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256"];

/** A jose error in words, for the audit reason (never the token itself). */
export function jwtFailure(e: unknown): string {
  const err = e as { code?: string; claim?: string; message?: string };
  switch (err?.code) {
    case "ERR_JWT_EXPIRED":
      return "token expired";
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      return `token claim ${err.claim ?? "?"} check failed (${err.message ?? ""})`;
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return "token algorithm not allowed";
    case "ERR_JWKS_NO_MATCHING_KEY":
      return "token signed by an unknown key";
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return "token signature does not verify";
    case "ERR_JWT_INVALID":
    case "ERR_JWS_INVALID":
      return "malformed token";
    case "ERR_JWKS_TIMEOUT":
    case "ERR_JOSE_GENERIC":
      return "token key set unavailable";
    default:
      return `token rejected (${err?.code ?? "unknown error"})`;
  }
}
