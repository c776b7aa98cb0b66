/**
 * A local test token issuer: an ES256 (or Ed25519) key with a kid, its JWKS (as an object, a
 * file, or a jose key set), and tokens with chosen claims. Plays both the OIDC identity
 * provider and the attestation verifier in the tests.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  SignJWT,
} from "jose";

export interface IssueOptions {
  /** Seconds from now; negative for an expired token. Default 300. */
  expiresIn?: number;
  /** Seconds from now for iat; default 0. */
  issuedAt?: number;
  audience?: string;
  issuer?: string;
  subject?: string;
}

export class TestIssuer {
  private constructor(
    readonly issuer: string,
    readonly alg: string,
    readonly kid: string,
    private readonly privateKey: Parameters<SignJWT["sign"]>[0],
    private readonly publicJwk: Record<string, unknown>,
  ) {}

  static async create(issuer: string, alg: "ES256" | "EdDSA" = "ES256"): Promise<TestIssuer> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = randomBytes(6).toString("hex");
    const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
    return new TestIssuer(issuer, alg, kid, privateKey, jwk);
  }

  jwks(): JSONWebKeySet {
    return { keys: [this.publicJwk as never] };
  }

  keySet(): JWTVerifyGetKey {
    return createLocalJWKSet(this.jwks());
  }

  writeJwks(dir: string, name = "jwks.json"): string {
    const p = join(dir, name);
    writeFileSync(p, JSON.stringify(this.jwks()));
    return p;
  }

  /** The private key as a JWK file (mode 0600), for a child process that signs as this issuer. */
  async writePrivateJwk(dir: string, name: string): Promise<string> {
    const p = join(dir, name);
    writeFileSync(
      p,
      JSON.stringify(await exportJWK(this.privateKey as Parameters<typeof exportJWK>[0])),
      {
        mode: 0o600,
      },
    );
    return p;
  }

  async issue(claims: JWTPayload, o: IssueOptions = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    let j = new SignJWT(claims)
      .setProtectedHeader({ alg: this.alg, kid: this.kid, typ: "JWT" })
      .setIssuer(o.issuer ?? this.issuer)
      .setIssuedAt(now + (o.issuedAt ?? 0))
      .setExpirationTime(now + (o.expiresIn ?? 300));
    if (o.audience) j = j.setAudience(o.audience);
    if (o.subject) j = j.setSubject(o.subject);
    return j.sign(this.privateKey);
  }

  /** An unsecured token (alg "none") with the same claims: must always be refused. */
  unsigned(claims: JWTPayload, o: IssueOptions = {}): string {
    const now = Math.floor(Date.now() / 1000);
    const b = (x: unknown) => Buffer.from(JSON.stringify(x)).toString("base64url");
    return `${b({ alg: "none", typ: "JWT" })}.${b({
      ...claims,
      iss: o.issuer ?? this.issuer,
      iat: now,
      exp: now + 300,
      ...(o.audience ? { aud: o.audience } : {}),
      ...(o.subject ? { sub: o.subject } : {}),
    })}.`;
  }
}
