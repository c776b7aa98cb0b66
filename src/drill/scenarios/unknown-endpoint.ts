/**
 * Unknown endpoint: a workload's credential is used from an address the service has never seen.
 * The key needs attested release (a Cedar policy forbids a plain unwrap without a verified TEE
 * report). The service must raise a first-seen alert for the new source, refuse the plain
 * unwrap, and refuse attested release with evidence the verifier did not sign or evidence
 * captured from the genuine workload and replayed — while the real
 * workload, with genuine evidence, still gets its key (the policy is not simply "deny all").
 */
import { createLocalJWKSet, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { unwrapAttested } from "../../keys/service/attested.js";
import { serviceRecipient } from "../../keys/service/client.js";
import { stanzaToWire } from "../../keys/service/stanza.js";
import { generateX25519KeyPair } from "../../keys/x25519-key.js";
import { ephemeralKeyBinding } from "../../service/attest/evidence.js";
import { Authorizer } from "../../service/authz/cedar.js";
import { DEFAULT_POLICIES } from "../../service/authz/schema.js";
import type { DrillContext, Scenario } from "../types.js";
import { ok200 } from "./util.js";

const VERIFIER = "https://verifier.drill.invalid";
/** TEST-NET-3 (RFC 5737): an address no sandbox client ever used. */
const INTRUDER = "203.0.113.7";
const ATTESTED_ONLY = `@id("drill-secure-needs-tee")
forbid (principal, action == TensorSeal::Action::"unwrap", resource == TensorSeal::Key::"secure")
  unless { context has attestation && context.attestation.tee == "sev-snp"
           && context.attestation.measurement == "drill-good" && !context.attestation.debug };`;

type Signer = (claims: Record<string, unknown>) => Promise<string>;

async function signer(): Promise<{ sign: Signer; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "drill", alg: "EdDSA" };
  const sign: Signer = (claims) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "EdDSA", kid: "drill" })
      .setIssuer(VERIFIER)
      .setIssuedAt()
      .setExpirationTime("2m")
      .sign(privateKey);
  return { sign, jwk };
}

export const unknownEndpoint: Scenario = {
  name: "unknown-endpoint",
  summary:
    "a workload credential used from an unknown address: a first-seen alert, and attested release refused without genuine evidence",
  weakenings: {
    "no-first-seen": "first-seen alerts are off",
    "no-attestation-policy": "the key does not require attestation (default policies)",
  },
  async run(ctx: DrillContext) {
    const verifier = await signer();
    const forger = await signer(); // the intruder's own key, same issuer name and kid
    const svc = await ctx.sandbox.startService({
      anomaly: { firstSeen: !ctx.weakened.has("no-first-seen"), warmupMinutes: 10_000 },
      authorizer: ctx.weakened.has("no-attestation-policy")
        ? Authorizer.fromPolicies(DEFAULT_POLICIES, "drill defaults")
        : Authorizer.fromPolicies(
            { ...DEFAULT_POLICIES, "drill-secure-needs-tee": ATTESTED_ONLY },
            "drill policy",
          ),
      attestation: {
        issuer: VERIFIER,
        keys: createLocalJWKSet({ keys: [verifier.jwk] }),
        nonceTtlMs: 30_000,
      },
    });
    await ok200(svc.admin, "/v1/keys", { name: "secure" });
    const stanza = await serviceRecipient(svc.admin, "secure").wrap(Buffer.alloc(32, 7));
    const workload = await svc.principal(["unwrap"]);
    // The genuine workload, from its usual address, with evidence the verifier signed.
    let genuineEvidence = "";
    const genuine = await unwrapAttested(workload.client, stanza, async (r) => {
      genuineEvidence = await verifier.sign({
        nonce: r.nonce,
        tensorseal_ephemeral_key: r.ephemeralKeyBinding,
        tee: "sev-snp",
        measurement: "drill-good",
        debug: false,
      });
      return genuineEvidence;
    });
    ctx.check("the genuine attested workload gets its key", genuine.equals(Buffer.alloc(32, 7)));
    genuine.fill(0);

    const firstSeen = async () => {
      const rows = await svc.db.db
        .selectFrom("audit")
        .select("entry")
        .where("action", "=", "alert.first-seen")
        .where("principal", "=", workload.id)
        .execute();
      return rows.some((r) => {
        const e = JSON.parse(r.entry) as { resource?: { client?: { source?: string } } };
        return e.resource?.client?.source === INTRUDER;
      });
    };
    const fromIntruder = (url: string, payload: object) =>
      svc.app.inject({
        method: "POST",
        url,
        headers: { authorization: `Bearer ${workload.token}` },
        payload,
        remoteAddress: INTRUDER,
      });

    ctx.breach();
    const plain = await fromIntruder("/v1/datakeys/unwrap", { stanza: stanzaToWire(stanza) });
    if (await firstSeen()) ctx.detected();
    ctx.check(
      "a first-seen alert names the unknown source",
      await firstSeen(),
      `source ${INTRUDER}`,
    );
    ctx.check(
      "a plain unwrap from the unknown endpoint is refused (403)",
      plain.statusCode === 403,
      `HTTP ${plain.statusCode}`,
    );
    // Attested release with evidence the intruder signed itself.
    const challenge = await fromIntruder("/v1/attestation/challenge", {});
    const nonce = String(challenge.json().nonce ?? "");
    /** An attested release asked for with a fresh ephemeral key and the evidence made for it. */
    const attestedFromIntruder = async (evidenceFor: (eph: Uint8Array) => Promise<string>) => {
      const eph = generateX25519KeyPair();
      try {
        return await fromIntruder("/v1/datakeys/unwrap-attested", {
          stanza: stanzaToWire(stanza),
          evidence: await evidenceFor(eph.publicKey),
          ephemeralPublicKey: Buffer.from(eph.publicKey).toString("base64"),
        });
      } finally {
        eph.privateKey.fill(0);
      }
    };
    const refused = (what: string, r: { statusCode: number; body: string }) =>
      ctx.check(
        what,
        r.statusCode === 403 && !r.body.includes("ciphertext"),
        `HTTP ${r.statusCode}`,
      );
    const forged = await attestedFromIntruder((eph) =>
      forger.sign({
        nonce,
        tensorseal_ephemeral_key: ephemeralKeyBinding(eph),
        tee: "sev-snp",
        measurement: "drill-good",
        debug: false,
      }),
    );
    refused("attested release with forged evidence is refused (403)", forged);
    // The genuine workload's evidence, captured in transit, replayed with the intruder's key.
    const replayed = await attestedFromIntruder(async () => genuineEvidence);
    refused("the genuine workload's evidence replayed by the intruder is refused (403)", replayed);
    if (plain.statusCode === 403 && forged.statusCode === 403 && replayed.statusCode === 403)
      ctx.contained();
  },
};
