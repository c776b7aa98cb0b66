/**
 * Attestation-bound release: a single-use challenge nonce, then `unwrap-attested`, which
 * verifies the evidence JWT (signature, issuer, freshness, nonce, binding to the ephemeral
 * key), consumes the nonce, hands the attestation claims to Cedar as `context.attestation`, and
 * answers with the file key HPKE-sealed to the ephemeral key (KEM `kem`: X25519 by default or
 * X-Wing, ML-KEM-768 + X25519; the nonce bound as aad or, with `binding: "info"`, inside the
 * HPKE info: attested.ts), so a TLS terminator or proxy in between never sees it.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { TensorSealError } from "../../format/errors.js";
import {
  ATTESTED_BINDINGS,
  ATTESTED_KEM_PUBLIC_KEY_SIZE,
  ATTESTED_KEMS,
  type AttestedBinding,
  type AttestedKem,
  sealAttestedRelease,
  stanzaFromWire,
  type WireStanza,
} from "../../keys/service/index.js";
import { EvidenceError } from "../attest/evidence.js";
import type { ServiceContext } from "../context.js";
import { deny, ServiceError } from "../errors.js";
import { release } from "../protected.js";
import { errorResponses, stanzaSchema } from "../schemas.js";
import { stanzaKey } from "./datakeys.js";

const security = [{ bearer: [] }];
const challengeReply = {
  type: "object",
  required: ["nonce", "expiresAt"],
  properties: { nonce: { type: "string" }, expiresAt: { type: "string" } },
} as const;

interface AttestedBody {
  stanza: WireStanza;
  evidence: string;
  ephemeralPublicKey: string;
  /** Nonce binding of the HPKE seal; absent = "aad" (clients before the mode existed). */
  binding?: AttestedBinding;
  /** KEM of the ephemeral key and the seal; absent = "x25519" (clients before the field). */
  kem?: AttestedKem;
}

/** The nonce a request consumed, for the response's HPKE aad. */
const consumed = new WeakMap<FastifyRequest, string>();

/** Base64 of an X-Wing public key (1216 bytes) is 1624 characters: the schema's bound. */
const MAX_KEY_B64 = 4 * Math.ceil(ATTESTED_KEM_PUBLIC_KEY_SIZE.mlkem768x25519 / 3);

/** The ephemeral key, exactly the size of the request's KEM (canonical base64 only). */
function decodeKey(b64: string, kem: AttestedKem): Buffer {
  const size = ATTESTED_KEM_PUBLIC_KEY_SIZE[kem];
  const k = Buffer.from(b64, "base64");
  if (k.length !== size || k.toString("base64") !== b64)
    throw new ServiceError(
      400,
      "bad_request",
      `ephemeralPublicKey must be ${size} bytes of base64 (kem ${kem})`,
    );
  return k;
}

export async function attestationRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  const att = () => {
    if (!ctx.attestation)
      throw new ServiceError(
        404,
        "not_found",
        "attested release is not configured on this service",
      );
    return ctx.attestation;
  };
  const challenge = {
    config: {
      action: "attestation.challenge",
      authz: { action: "attestation:challenge", resources: () => ["service" as const] },
    },
    schema: {
      summary:
        "A single-use nonce for attestation evidence (expires after --nonce-ttl, default 60 s)",
      security,
      response: { 200: challengeReply, ...errorResponses },
    },
  };
  const issue = async (req: FastifyRequest) => {
    const n = await att().nonces.issue();
    await release(ctx, req, { expires: n.expires });
    return { nonce: n.nonce, expiresAt: new Date(n.expires).toISOString() };
  };
  app.get("/v1/attestation/challenge", challenge, issue);
  app.post(
    "/v1/attestation/challenge",
    {
      ...challenge,
      schema: {
        ...challenge.schema,
        body: { type: "object", additionalProperties: false, properties: {} },
      },
    },
    issue,
  );

  app.post<{ Body: AttestedBody }>(
    "/v1/datakeys/unwrap-attested",
    {
      config: {
        action: "datakeys.unwrap-attested",
        authz: {
          action: "unwrap",
          resources: (req) => [stanzaKey((req.body as AttestedBody).stanza)],
          context: async (req) => {
            const a = att();
            const b = req.body as AttestedBody;
            // The evidence binds SHA-256 of exactly these bytes: a key of the other KEM, or
            // evidence bound to one, never matches (the size is checked first, 400).
            const pub = decodeKey(b.ephemeralPublicKey, b.kem ?? "x25519");
            let v: Awaited<ReturnType<typeof a.verifier.verify>>;
            try {
              v = await a.verifier.verify(b.evidence, pub);
            } catch (e) {
              if (e instanceof EvidenceError) deny(403, e.message);
              throw e;
            }
            // Every validly signed, bound presentation burns the nonce, allowed or not.
            if (!(await a.nonces.consume(v.nonce)))
              deny(403, "attestation nonce unknown, already used or expired");
            consumed.set(req, v.nonce);
            return { attestation: { ...v.claims } };
          },
        },
      },
      schema: {
        summary:
          "Unwrap a service stanza for an attested workload: the file key comes back HPKE-sealed to its ephemeral X25519 or X-Wing (ML-KEM-768 + X25519) key",
        security,
        body: {
          type: "object",
          required: ["stanza", "evidence", "ephemeralPublicKey"],
          additionalProperties: false,
          properties: {
            stanza: stanzaSchema,
            evidence: {
              type: "string",
              maxLength: 16384,
              pattern: "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*\\.[A-Za-z0-9_-]*$",
            },
            ephemeralPublicKey: {
              type: "string",
              maxLength: MAX_KEY_B64,
              pattern: "^[A-Za-z0-9+/]+={0,2}$",
              description:
                'the ephemeral public key, base64: 32 bytes (kem "x25519") or 1216 bytes (kem "mlkem768x25519")',
            },
            binding: {
              type: "string",
              enum: [...ATTESTED_BINDINGS],
              description:
                'how the nonce is bound into the HPKE seal: "aad" (default; aad = nonce) or "info" (info = label || 0x00 || nonce, empty aad)',
            },
            kem: {
              type: "string",
              enum: [...ATTESTED_KEMS],
              description:
                'KEM of the ephemeral key and the HPKE seal: "x25519" (default; DHKEM-X25519) or "mlkem768x25519" (X-Wing, KEM id 0x647a; info label "tensorseal.dev/v1 attested-release mlkem768x25519")',
            },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["enc", "ciphertext"],
            properties: {
              enc: { type: "string", description: "HPKE encapsulated key, base64" },
              ciphertext: { type: "string", description: "sealed file key, base64" },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const nonce = consumed.get(req);
      if (!nonce) deny(403, "no verified attestation for this request");
      const kem = req.body.kem ?? "x25519";
      const pub = decodeKey(req.body.ephemeralPublicKey, kem);
      const binding = req.body.binding ?? "aad";
      const u = await ctx.keys.unwrap(stanzaFromWire(req.body.stanza));
      await ctx.keys.attestedRelease(u, kem);
      try {
        let sealed: Awaited<ReturnType<typeof sealAttestedRelease>>;
        try {
          sealed = await sealAttestedRelease(pub, u.fileKey, nonce, binding, kem);
        } catch (e) {
          // Only a malformed key gets here (its size was checked): the client's fault, a 400.
          if (e instanceof TensorSealError && e.code === "E_KEY")
            throw new ServiceError(400, "bad_request", e.message);
          throw e;
        }
        await release(ctx, req, {
          key: u.name,
          version: u.version,
          attested: true,
          binding,
          kem,
        });
        return sealed;
      } finally {
        u.fileKey.fill(0);
      }
    },
  );
}
