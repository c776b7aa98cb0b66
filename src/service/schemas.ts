/** JSON schemas shared by the routes (also the OpenAPI components). */
import { SENSITIVITIES } from "./authz/attributes.js";
import { KEY_NAME_PATTERN, LABEL_KEY_PATTERN } from "./patterns.js";

export const errorSchema = {
  type: "object",
  required: ["error", "message"],
  properties: { error: { type: "string" }, message: { type: "string" } },
} as const;

/** Error responses every route declares. */
export const errorResponses = { "4xx": errorSchema, "5xx": errorSchema } as const;

const base64 = { type: "string", pattern: "^[A-Za-z0-9+/]*={0,2}$", maxLength: 5464 } as const;

export const fileKeySchema = {
  type: "string",
  pattern: "^[A-Za-z0-9+/]{43}=$",
  description: "32-byte file key, base64",
} as const;

export const stanzaSchema = {
  type: "object",
  required: ["type", "fields"],
  additionalProperties: false,
  properties: {
    type: { type: "string", pattern: "^[a-z0-9][a-z0-9-]{0,31}$" },
    fields: { type: "array", maxItems: 16, items: base64 },
  },
} as const;

export const keyNameSchema = { type: "string", pattern: KEY_NAME_PATTERN } as const;

/** A key version in a path (`/v1/keys/:name/versions/:v/...`): a positive integer. */
export const VERSION_PATTERN = "^[1-9][0-9]{0,8}$";

/** A key version in a body: what VERSION_PATTERN admits in a path. */
export const versionSchema = { type: "integer", minimum: 1, maximum: 999_999_999 } as const;

/** 32 bytes of canonical base64 (the last character carries 4 zero bits): an X25519 public key. */
export const key32Schema = {
  type: "string",
  pattern: "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$",
} as const;

/** A `tensorseal keygen` recipient (bech32 of an X25519 key; the checksum is checked, 422). */
export const x25519RecipientSchema = {
  type: "string",
  pattern: "^tseal1[02-9ac-hj-np-z]{58}$",
} as const;

/** The waiting period of a scheduled destruction, in days. */
/** A key's rotation period in whole seconds (at most 100 years); null removes it. */
export const rotationPeriodSchema = {
  type: ["integer", "null"],
  minimum: 1,
  maximum: 3_153_600_000,
} as const;

export const destroyDaysSchema = { type: "integer", minimum: 1, maximum: 365 } as const;

export const sensitivitySchema = {
  type: "string",
  enum: SENSITIVITIES,
  description: `ordered: ${SENSITIVITIES.join(" < ")} (Cedar sensitivityLevel 0..${SENSITIVITIES.length - 1})`,
} as const;

/** Labels of keys and artifacts; a `sensitivity` label must name a level (artifacts use it). */
export const labelsSchema = {
  type: "object",
  maxProperties: 64,
  propertyNames: { pattern: LABEL_KEY_PATTERN },
  properties: { sensitivity: sensitivitySchema },
  additionalProperties: { type: "string", maxLength: 512 },
} as const;

export const keySchema = {
  type: "object",
  required: ["name", "created", "primaryVersion", "versions"],
  properties: {
    name: { type: "string" },
    created: { type: "string" },
    primaryVersion: { type: "integer" },
    minDecryptionVersion: { type: "integer" },
    minEncryptionVersion: { type: "integer" },
    labels: { type: "object", additionalProperties: { type: "string" } },
    sensitivity: { type: "string" },
    /** Seconds, or null: no rotation period. */
    rotationPeriod: { type: ["integer", "null"] },
    /** When the primary version reaches the period (ISO 8601), or null. */
    rotationDue: { type: ["string", "null"] },
    versions: {
      type: "array",
      items: {
        type: "object",
        required: ["version", "created", "state"],
        properties: {
          version: { type: "integer" },
          created: { type: "string" },
          state: { type: "string", enum: ["enabled", "disabled", "scheduled", "destroyed"] },
          destroyAfter: { type: "string" },
        },
      },
    },
  },
} as const;
