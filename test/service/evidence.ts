/**
 * An attestation verifier for the CLI's `--attest` tests: a TestIssuer (Ed25519) whose private
 * key an evidence program reads from a file and whose JWKS the service trusts, and the evidence
 * program that signs the service's challenge as that verifier would.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { loadKeySet, type ServerOptions } from "../../src/service/index.js";
import { VERIFIER } from "./attested-fixture.js";
import { TestIssuer } from "./verifier.js";

const JOSE = createRequire(import.meta.url).resolve("jose");

export interface TestVerifier {
  /** The verifier's private key (JWK file) and key id, for evidenceProgram. */
  readonly jwkPath: string;
  readonly kid: string;
  /** The service's `attestation` option trusting this verifier. */
  readonly attestation: NonNullable<ServerOptions["attestation"]>;
}

/** A new verifier key in `dir` (verifier.jwk, verifier-jwks.json). */
export async function testVerifier(dir: string): Promise<TestVerifier> {
  const issuer = await TestIssuer.create(VERIFIER, "EdDSA");
  return {
    jwkPath: await issuer.writePrivateJwk(dir, "verifier.jwk"),
    kid: issuer.kid,
    attestation: {
      issuer: VERIFIER,
      keys: await loadKeySet(issuer.writeJwks(dir, "verifier-jwks.json"), "--attestation-jwks"),
      nonceTtlMs: 30_000,
    },
  };
}

export interface EvidenceOptions {
  /** The key binding to sign in place of the request's (evidence bound to another key). */
  readonly bindTo?: string;
  /** Program lines run on the parsed request `req` before signing (checks that exit non-zero). */
  readonly checks?: string;
}

/**
 * An evidence program `dir/name`: reads the challenge on stdin, signs its nonce and key binding
 * (or `bindTo`) as `verifier`, prints the JWT.
 */
export function evidenceProgram(
  dir: string,
  name: string,
  verifier: TestVerifier,
  opts: EvidenceOptions = {},
): string {
  const path = join(dir, name);
  const binding = opts.bindTo ? JSON.stringify(opts.bindTo) : "req.ephemeralKeyBinding";
  writeFileSync(
    path,
    `#!${process.execPath}
const { SignJWT, importJWK } = await import(${JSON.stringify(JOSE)});
const { readFileSync } = await import("node:fs");
let input = "";
for await (const c of process.stdin) input += c;
const req = JSON.parse(input);
${opts.checks ? `${opts.checks}\n` : ""}const key = await importJWK(JSON.parse(readFileSync(${JSON.stringify(verifier.jwkPath)}, "utf8")), "EdDSA");
const now = Math.floor(Date.now() / 1000);
const jwt = await new SignJWT({ nonce: req.nonce, tensorseal_ephemeral_key: ${binding}, tee: "sev-snp", measurement: "m", debug: false })
  .setProtectedHeader({ alg: "EdDSA", kid: ${JSON.stringify(verifier.kid)} }).setIssuer(${JSON.stringify(VERIFIER)})
  .setIssuedAt(now).setExpirationTime(now + 60).sign(key);
process.stdout.write(jwt + "\\n");
`,
  );
  chmodSync(path, 0o755);
  return path;
}
