/**
 * The file header a registration carries (`header`: base64 of the header bytes — prefix,
 * descriptor and both slots, i.e. public metadata and wrapped file keys, never a key or
 * plaintext). The service reads from it what a tier restricts and only the header shows: the
 * kinds of the file's recipients and the tier recorded in its descriptor. Sound to the extent
 * the service can check: the registered stanza must be this service's and in the active slot,
 * and the header's MAC must verify under the file key that stanza wraps (opened here, wiped at
 * once, never sent), so the stanza list is the one bound to that file key. A writer holding the
 * file key could still MAC another header for it; the check stops honest mistakes and clients
 * that skip the local tier check, not a writer who already has the plaintext.
 */
import { createHash } from "node:crypto";
import { isTensorSealError } from "../../format/errors.js";
import { type ParsedHeader, parseHeader, verifyHeader } from "../../format/header.js";
import { TIER_LABEL } from "../../format/metadata.js";
import {
  parseServiceStanza,
  SERVICE_STANZA,
  serviceStanzaDigest,
} from "../../keys/service/stanza.js";
import { stanzaKind } from "../../tiers/policy.js";
import { ServiceError } from "../errors.js";
import type { KeyService } from "../keys/service.js";

/** Two 1 MiB slots (format/header.ts MAX_SLOT_CAPACITY), a descriptor and the prefix. */
export const HEADER_MAX_BYTES = 2_621_440;
/** The base64 text of the largest header (under the server's 4 MiB body limit). */
export const HEADER_MAX_BASE64 = 4 * Math.ceil(HEADER_MAX_BYTES / 3);

export interface RegisteredHeader {
  /** The service stanza the registration is for. */
  readonly stanza: { key: string; version: number; digest: string };
  /** The kind of every stanza in the active slot (tiers/policy.ts stanzaKind). */
  readonly kinds: readonly string[];
  /** The tier the descriptor records (`tensorseal:tier`), if any. */
  readonly tier: string | undefined;
  /** "sha256:" and the hex SHA-256 of the header bytes, as `reseal` reports name it. */
  readonly headerDigest: string;
}

const unprocessable = (m: string): never => {
  throw new ServiceError(422, "unprocessable", m);
};

/**
 * Parses and authenticates `b64`; the registered stanza is the one with `want.stanzaDigest`,
 * else this service's stanza of `want.key` (its only one when no key is named).
 */
export async function readRegisteredHeader(
  keys: KeyService,
  serverId: string,
  b64: string,
  want: { key?: string; stanzaDigest?: string; preferKey?: string },
): Promise<RegisteredHeader> {
  const bytes = Buffer.from(b64, "base64");
  if (bytes.length > HEADER_MAX_BYTES) unprocessable("header: larger than any header can be");
  let h: ParsedHeader;
  try {
    h = parseHeader(bytes);
  } catch (e) {
    if (!isTensorSealError(e)) throw e;
    return unprocessable(`header: not a sealed file's header (${e.message})`);
  }
  if (bytes.length !== h.headerLength)
    unprocessable(`header: ${bytes.length} bytes given, the header is ${h.headerLength}`);
  const ours = h.stanzas.filter(
    (s) => s.type === SERVICE_STANZA && parseServiceStanza(s).serverId === serverId,
  );
  const named = (key: string) => ours.filter((s) => parseServiceStanza(s).name === key);
  const match =
    want.stanzaDigest !== undefined
      ? ours.filter((s) => serviceStanzaDigest(s) === want.stanzaDigest)
      : want.key !== undefined
        ? named(want.key)
        : want.preferKey !== undefined && named(want.preferKey).length > 0
          ? named(want.preferKey)
          : ours;
  if (match.length !== 1)
    unprocessable(
      match.length === 0
        ? `header: it holds no stanza of this key service${want.stanzaDigest ? ` with digest ${want.stanzaDigest}` : want.key ? ` for key ${want.key}` : ""}`
        : "header: it holds several stanzas of this key service: name the one to register (stanzaDigest)",
    );
  const stanza = match[0]!;
  const u = await keys.unwrap(stanza);
  try {
    verifyHeader(h, u.fileKey);
  } catch (e) {
    if (!isTensorSealError(e)) throw e;
    unprocessable("header: its MAC does not verify under the file key of its service stanza");
  } finally {
    u.fileKey.fill(0);
  }
  return {
    stanza: { key: u.name, version: u.version, digest: serviceStanzaDigest(stanza) },
    kinds: h.stanzas.map(stanzaKind),
    tier: h.descriptor.labels[TIER_LABEL],
    headerDigest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
  };
}

/**
 * A registration's tier check: the tiers of the key's sensitivity, the artifact's
 * `sensitivity` label and the tier the header records (each that names a service tier) must
 * all allow the file's recipient kinds; where one restricts them the header is required.
 * 403 tier_violation, audited as a denial like the service's other tier refusals.
 */
export async function checkRegistrationTier(
  keys: KeyService,
  r: { key: string; labels: Record<string, string>; header: RegisteredHeader | null },
): Promise<void> {
  const sensitivities = new Set<string>();
  const keySensitivity = (await keys.attributes(r.key))?.sensitivity;
  if (keySensitivity !== undefined) sensitivities.add(keySensitivity);
  if (r.labels.sensitivity !== undefined) sensitivities.add(r.labels.sensitivity);
  if (r.header?.tier !== undefined) sensitivities.add(r.header.tier);
  for (const s of sensitivities) {
    if (!r.header) {
      if (keys.tiers.needsHeader(s))
        throw new ServiceError(
          403,
          "tier_violation",
          `tier ${s} restricts recipient kinds: a registration of an artifact of key ${r.key} must carry the file's header (\`header\`: base64 of its header bytes; \`seal --register\` and \`reseal\` send it)`,
        );
      continue;
    }
    keys.tiers.checkRecipientKinds(`a file of key ${r.key}`, s, r.header.kinds);
  }
}
