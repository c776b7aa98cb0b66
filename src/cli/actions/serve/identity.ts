/**
 * Who may call besides bootstrap tokens and mTLS: OIDC/JWT bearer tokens (--oidc-*), and
 * attested release (--attestation-*, --nonce-ttl). The flags are checked first, the key sets
 * (files or URLs) loaded later, once the cheaper checks of every feature have passed.
 */
import { fail } from "../../../format/errors.js";
import {
  type AttestationVerifierOptions,
  type JwtOptions,
  loadKeySet,
} from "../../../service/index.js";
import type { ServeFlags } from "../../commands/serve/flags.js";
import { intFlag } from "../../commands/service-shared.js";

/** The flag combinations and --nonce-ttl; returns the nonce lifetime in seconds. */
export function checkIdentityFlags(o: ServeFlags): number {
  const oidc = [o.oidcIssuer, o.oidcAudience, o.oidcJwks];
  if (oidc.some(Boolean) && !oidc.every(Boolean))
    fail("E_USAGE", "--oidc-issuer, --oidc-audience and --oidc-jwks go together");
  if (Boolean(o.attestationIssuer) !== Boolean(o.attestationJwks))
    fail("E_USAGE", "--attestation-issuer and --attestation-jwks go together");
  return intFlag("--nonce-ttl", o.nonceTtl, 1, 3600, " seconds");
}

export interface IdentitySettings {
  readonly jwt?: JwtOptions;
  readonly attestation?: AttestationVerifierOptions & { nonceTtlMs: number };
}

/** After checkIdentityFlags: the JWKS of each configured issuer. */
export async function identitySettings(
  o: ServeFlags,
  nonceTtlS: number,
): Promise<IdentitySettings> {
  const jwt = o.oidcIssuer
    ? {
        issuer: o.oidcIssuer,
        audience: o.oidcAudience!,
        keys: await loadKeySet(o.oidcJwks!, "--oidc-jwks"),
        rolesClaim: o.oidcRolesClaim,
      }
    : undefined;
  const attestation = o.attestationIssuer
    ? {
        issuer: o.attestationIssuer,
        keys: await loadKeySet(o.attestationJwks!, "--attestation-jwks"),
        nonceTtlMs: nonceTtlS * 1000,
      }
    : undefined;
  return { ...(jwt ? { jwt } : {}), ...(attestation ? { attestation } : {}) };
}
