/**
 * Sensitivity tiers on the key service (docs/GOVERNANCE.md, "Tiers on the key service"). A key's
 * tier is its sensitivity (public, internal, confidential, restricted; "unspecified" has none);
 * the tier policy, given at start (`serve --tier-policy builtin|FILE`), sets minimums the
 * service enforces itself, whatever the client is:
 * - `rotationPeriod`: the longest rotation period a key of the tier may have (a key created in
 *   the tier gets it; setting a longer one, removing it, or moving a key with a longer one into
 *   the tier is refused, 409 tier_violation);
 * - `attestation`: its file keys are released only through attested release (plain and batch
 *   unwrap refused, 403 tier_violation, audited as a denial);
 * - `dualControl`: destroy and export of its versions need two approvals even where
 *   `--approvals` leaves them at one;
 * - `cacheTtl`: the longest a client may keep one of its file keys in its data-key cache
 *   (seconds, 0 = never), sent with every unwrap as `cacheMaxAge`;
 * - `postQuantum`: its attested releases are sealed with the hybrid post-quantum KEM
 *   (`kem: "mlkem768x25519"`, X-Wing), as its files' public-key recipients must be; an X25519
 *   attested release is refused (403 tier_violation, audited as a denial);
 * - `recipients`: the recipient kinds its files may be sealed to (as `.tensorseal.yaml` tiers'
 *   `allow`; postQuantum also refuses x25519), checked on the header a registration carries:
 *   a registration of such a tier must carry it (artifacts/header.ts; 403 tier_violation).
 * Without --tier-policy nothing is enforced (as before tiers existed).
 */
import { readFileSync } from "node:fs";
import { fail } from "../format/errors.js";
import { PUBLIC_STANZA_TYPE } from "../format/public.js";
import { BUILTIN_TIERS, RECIPIENT_KINDS } from "../tiers/policy.js";
import { ServiceError } from "./errors.js";

export const SERVICE_TIERS = ["public", "internal", "confidential", "restricted"] as const;

export interface ServiceTier {
  readonly name: string;
  /** Seconds; null: no maximum. */
  readonly rotationPeriod: number | null;
  readonly attestation: boolean;
  readonly dualControl: boolean;
  /** Seconds a client may cache a released file key; null: no limit from the service. */
  readonly cacheTtl: number | null;
  /** Attested releases only with the X-Wing KEM (and no x25519 recipients in its files). */
  readonly postQuantum: boolean;
  /** Recipient kinds its registered files may have (src/tiers RECIPIENT_KINDS); null: any. */
  readonly recipients: readonly string[] | null;
}

/** The client's built-in allowed kinds of a tier (src/tiers), so both sides say the same. */
const allowOf = (name: string): readonly string[] | null =>
  BUILTIN_TIERS.find((t) => t.name === name)?.allow ?? null;

const DAY = 86_400;

/** `serve --tier-policy builtin`: the client's built-in tiers (src/tiers) plus service minimums. */
export const BUILTIN_SERVICE_TIERS: readonly ServiceTier[] = [
  {
    name: "public",
    rotationPeriod: null,
    attestation: false,
    dualControl: false,
    cacheTtl: null,
    postQuantum: false,
    recipients: allowOf("public"),
  },
  {
    name: "internal",
    rotationPeriod: null,
    attestation: false,
    dualControl: false,
    cacheTtl: null,
    postQuantum: false,
    recipients: allowOf("internal"),
  },
  {
    name: "confidential",
    rotationPeriod: 365 * DAY,
    attestation: false,
    dualControl: false,
    cacheTtl: 300,
    postQuantum: false,
    recipients: allowOf("confidential"),
  },
  {
    name: "restricted",
    rotationPeriod: 90 * DAY,
    attestation: true,
    dualControl: true,
    cacheTtl: 0,
    postQuantum: true,
    recipients: allowOf("restricted"),
  },
];

const FIELDS = [
  "rotationPeriod",
  "attestation",
  "dualControl",
  "cacheTtl",
  "postQuantum",
  "recipients",
];
const DURATION = /^([0-9]{1,10})([smhdw])$/;
const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: DAY, w: 7 * DAY };

/** The tier policy a server enforces: by key sensitivity. */
export class TierPolicy {
  private readonly tiers: ReadonlyMap<string, ServiceTier>;

  constructor(tiers: readonly ServiceTier[]) {
    this.tiers = new Map(tiers.map((t) => [t.name, t]));
  }

  /** The tier of a key of this sensitivity, or null (unspecified, or not configured). */
  of(sensitivity: string | undefined): ServiceTier | null {
    return sensitivity === undefined ? null : (this.tiers.get(sensitivity) ?? null);
  }

  list(): ServiceTier[] {
    return [...this.tiers.values()];
  }

  /**
   * The rotation period a key may have in `sensitivity`'s tier: `period` (null = none) when it
   * is within the tier's maximum; throws 409 tier_violation naming the rule and the fix.
   */
  checkRotation(key: string, sensitivity: string, period: number | null): void {
    const t = this.of(sensitivity);
    if (!t || t.rotationPeriod === null) return;
    if (period !== null && period <= t.rotationPeriod) return;
    throw new ServiceError(
      409,
      "tier_violation",
      `tier ${t.name} requires a rotation period of at most ${duration(t.rotationPeriod)}: key ${key} would have ${period === null ? "none" : duration(period)} (PATCH /v1/keys/${key} {"rotationPeriod": ${t.rotationPeriod}}, or \`tensorseal service keys set ${key} --rotation-period ${duration(t.rotationPeriod)}\`)`,
    );
  }

  /** Refuses (403 tier_violation) a plain release of a key whose tier requires attestation. */
  checkPlainRelease(key: string, sensitivity: string): void {
    const t = this.of(sensitivity);
    if (!t?.attestation) return;
    throw new ServiceError(
      403,
      "tier_violation",
      `tier ${t.name} releases the file keys of key ${key} only with attestation evidence: use attested release (POST /v1/datakeys/unwrap-attested; \`tensorseal open/exec --attest\`)`,
    );
  }

  /** Refuses (403 tier_violation) an attested release with a classical KEM where the tier is post-quantum. */
  checkAttestedKem(key: string, sensitivity: string, kem: string): void {
    const t = this.of(sensitivity);
    if (!t?.postQuantum || kem === "mlkem768x25519") return;
    throw new ServiceError(
      403,
      "tier_violation",
      `tier ${t.name} releases the file keys of key ${key} only sealed with the post-quantum KEM: ask with kem "mlkem768x25519" (the CLI and the Python client do by default)`,
    );
  }

  /**
   * Whether a registration in `sensitivity`'s tier must carry the file's header: the tier
   * restricts recipient kinds, which only the header shows.
   */
  needsHeader(sensitivity: string | undefined): boolean {
    const t = this.of(sensitivity);
    return t !== null && (t.recipients !== null || t.postQuantum);
  }

  /**
   * Refuses (403 tier_violation) a registered file whose stanza kinds (tiers/policy.ts
   * stanzaKind) the tier does not allow: `recipients`, and x25519 where it is post-quantum.
   */
  checkRecipientKinds(what: string, sensitivity: string, kinds: readonly string[]): void {
    const t = this.of(sensitivity);
    if (!t) return;
    const bad = [
      ...new Set(
        kinds.filter(
          (k) =>
            k !== PUBLIC_STANZA_TYPE &&
            ((t.recipients !== null && !t.recipients.includes(k)) ||
              (t.postQuantum && k === "x25519")),
        ),
      ),
    ];
    if (bad.length === 0) return;
    throw new ServiceError(
      403,
      "tier_violation",
      `tier ${t.name} does not allow ${bad.join(", ")} recipients in ${what} (allowed: ${(t.recipients ?? RECIPIENT_KINDS).filter((k) => !(t.postQuantum && k === "x25519")).join(", ")}): reseal or rewrap the file to allowed recipients, then register it`,
    );
  }

  dualControl(sensitivity: string | undefined): boolean {
    return this.of(sensitivity)?.dualControl === true;
  }

  /** Seconds a client may cache a file key of this tier, or null (no limit). */
  cacheTtl(sensitivity: string | undefined): number | null {
    return this.of(sensitivity)?.cacheTtl ?? null;
  }
}

/** No tier policy: nothing enforced. */
export const NO_TIERS = new TierPolicy([]);

function duration(s: number): string {
  if (s % DAY === 0) return `${s / DAY}d`;
  if (s % 3600 === 0) return `${s / 3600}h`;
  return `${s}s`;
}

/** 90d, 12h, 3600s, or a number of seconds; null for `none`. */
function seconds(v: unknown, what: string): number | null {
  if (v === null || v === "none") return null;
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 3_153_600_000) return v;
  const m = typeof v === "string" ? DURATION.exec(v) : null;
  if (!m) return fail("E_USAGE", `${what} must be a duration (90d, 12h, 300s), seconds, or none`);
  return Number(m[1]) * (UNIT[m[2]!] as number);
}

/**
 * Parses a tier policy file: a JSON object by tier name (one of SERVICE_TIERS), each with any of
 * rotationPeriod, attestation, dualControl, cacheTtl, postQuantum; tiers it leaves out have no minimums.
 * Strict: an unknown tier or field is a usage error naming it.
 */
export function parseTierPolicy(text: string, source: string): TierPolicy {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return fail("E_USAGE", `${source}: not JSON (${(e as Error).message})`);
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc))
    fail("E_USAGE", `${source}: a tier policy is a JSON object by tier name`);
  const out: ServiceTier[] = [];
  for (const [name, v] of Object.entries(doc as Record<string, unknown>)) {
    if (!(SERVICE_TIERS as readonly string[]).includes(name))
      fail(
        "E_USAGE",
        `${source}: unknown tier ${JSON.stringify(name)} (the service's tiers are its sensitivities: ${SERVICE_TIERS.join(", ")})`,
      );
    if (!v || typeof v !== "object" || Array.isArray(v))
      fail("E_USAGE", `${source}: ${name} must be an object (${FIELDS.join(", ")})`);
    const f = v as Record<string, unknown>;
    for (const k of Object.keys(f))
      if (!FIELDS.includes(k))
        fail(
          "E_USAGE",
          `${source}: unknown field ${JSON.stringify(k)} in ${name} (fields: ${FIELDS.join(", ")})`,
        );
    const bool = (k: string): boolean => {
      if (f[k] === undefined) return false;
      if (typeof f[k] !== "boolean")
        fail("E_USAGE", `${source}: ${name}.${k} must be true or false`);
      return f[k] as boolean;
    };
    const rotationPeriod = seconds(f.rotationPeriod ?? null, `${source}: ${name}.rotationPeriod`);
    if (rotationPeriod === 0) fail("E_USAGE", `${source}: ${name}.rotationPeriod must be positive`);
    out.push({
      name,
      rotationPeriod,
      attestation: bool("attestation"),
      dualControl: bool("dualControl"),
      cacheTtl: seconds(f.cacheTtl ?? null, `${source}: ${name}.cacheTtl`),
      postQuantum: bool("postQuantum"),
      recipients: kindList(f.recipients, `${source}: ${name}.recipients`),
    });
  }
  return new TierPolicy(out);
}

/** `recipients`: a list of recipient kinds (src/tiers RECIPIENT_KINDS), or absent/null for any. */
function kindList(v: unknown, what: string): readonly string[] | null {
  if (v === undefined || v === null) return null;
  const kinds: readonly string[] = RECIPIENT_KINDS;
  if (!Array.isArray(v) || v.some((k) => typeof k !== "string" || !kinds.includes(k)))
    return fail("E_USAGE", `${what} must be a list of recipient kinds (${kinds.join(", ")})`);
  return [...new Set(v as string[])];
}

/** `serve --tier-policy`: `builtin`, or a file path. */
export function loadTierPolicy(spec: string): TierPolicy {
  if (spec === "builtin") return new TierPolicy(BUILTIN_SERVICE_TIERS);
  let text: string;
  try {
    text = readFileSync(spec, "utf8");
  } catch (e) {
    return fail("E_USAGE", `--tier-policy ${spec}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  return parseTierPolicy(text, spec);
}
