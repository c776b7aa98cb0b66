/**
 * The project config file `.tensorseal.yaml`, found by walking up from the current directory
 * (docs/KEYS.md §Configuration). Creation rules in the spirit of sops: the first rule whose
 * `path_regex` matches the input path (relative to the config file's directory, `/`-separated)
 * supplies the seal defaults; explicit flags override them.
 *
 *   creation_rules:
 *     - path_regex: '^models/prod/.*\.safetensors$'
 *       key: prod                       # keystore KEK (kek:NAME)
 *       recipients: [tseal1...]         # more recipients (tseal1... or kek:NAME)
 *       context: { tenant: acme }       # encryption context, bound to the payload
 *       labels: { team: ml }            # public labels
 *       chunk_size: 1MiB
 *   providers:                          # provider keys `open` & co. may use (docs/PROVIDERS.md)
 *     aws-kms: { keys: [arn:aws:kms:eu-west-1:111122223333:key/*, alias/ml] }
 *     pkcs11: { tokens: [prod-hsm, backup-hsm/models] }
 *   doctor:                             # `tensorseal doctor` settings (docs/CLI.md)
 *     rotation_period: 180d             # for keys without their own rotation period
 *   tiers:                              # sensitivity tiers (docs/GOVERNANCE.md)
 *     default: internal                 # tier of files no flag or rule names
 *     restricted: { allow: [pkcs11, aws-kms, service, mlkem768x25519], rotation_period: 90d }
 * A creation rule may also set tier, purpose and owner (recorded in the sealed header).
 *
 * Parsing is strict: unknown keys, wrong types and bad regexes are errors naming the line.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import type * as Yaml from "yaml";
import { notice } from "../engine/notices.js";
import { fail } from "../format/errors.js";
import { metadataProblem } from "../format/metadata.js";
import { PUBLIC_TIER } from "../format/public.js";
import { allowEntryProblem, type ProviderAllowList } from "../keys/provider-allow.js";
import {
  BUILTIN_TIERS,
  RECIPIENT_KINDS,
  type RecipientKind,
  type TierConfig,
  type TierPolicy,
} from "../tiers/policy.js";

type Node = Yaml.Node;

export const CONFIG_FILE = ".tensorseal.yaml";

export interface CreationRule {
  readonly pathRegex: RegExp;
  readonly key?: string;
  readonly recipients: readonly string[];
  readonly context: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly chunkSize?: string;
  readonly tier?: string;
  readonly purpose?: string;
  readonly owner?: string;
}

export interface ProjectConfig {
  readonly path: string;
  readonly dir: string;
  readonly rules: readonly CreationRule[];
  /** The `providers` section: keys allowed for unwrapping. */
  readonly providers: ProviderAllowList;
  /** The `doctor` section: `rotation_period` as written (90d, 12h, none), read by doctor. */
  readonly doctor: { readonly rotationPeriod?: string };
  /** The `tiers` section merged over the built-in tiers. */
  readonly tiers: TierConfig;
}

const RULE_KEYS = [
  "path_regex",
  "key",
  "recipients",
  "context",
  "labels",
  "chunk_size",
  "tier",
  "purpose",
  "owner",
];
const TOP_KEYS = ["creation_rules", "providers", "doctor", "tiers"];
const TIER_KEYS = ["allow", "rotation_period", "attestation", "encrypt"];
const DURATION = /^(\d{1,10})([smhdw]?)$/;
const DOCTOR_KEYS = ["rotation_period"];
/** providers: PROVIDER: { FIELD: [entries] } */
const PROVIDER_FIELDS = { "aws-kms": "keys", pkcs11: "tokens" } as const;

/** The nearest `.tensorseal.yaml` at or above `from`, or null. */
export function findConfig(from = process.cwd()): string | null {
  let dir = resolve(from);
  for (;;) {
    const p = join(dir, CONFIG_FILE);
    if (existsSync(p)) return p;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/**
 * The YAML parser (about 70 modules), loaded only when a project file exists: every seal and
 * open looks for one, and most find none. Its CommonJS build, so that parsing stays synchronous.
 */
let yaml: typeof Yaml | undefined;
function loadYaml(): typeof Yaml {
  yaml ??= createRequire(import.meta.url)("yaml") as typeof Yaml;
  return yaml;
}

export function parseConfig(text: string, path: string): ProjectConfig {
  const { isMap, isScalar, isSeq, LineCounter, parseDocument } = loadYaml();
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const at = (n: Node | null | undefined) => {
    const off = n?.range?.[0];
    return off === undefined ? path : `${path}:${lines.linePos(off).line}`;
  };
  const bad: (n: Node | null | undefined, why: string) => never = (n, why) =>
    fail("E_USAGE", `${at(n)}: ${why}`);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    fail("E_USAGE", `${path}:${e.linePos?.[0]?.line ?? "?"}: ${e.message.split("\n")[0]}`);
  }
  const root = doc.contents;
  if (!isMap(root)) return bad(root, "the file must be a mapping with creation_rules");
  const rules: CreationRule[] = [];
  let providers: ProviderAllowList = {};
  let doctor: { rotationPeriod?: string } = {};
  const tiers = new Map<string, TierPolicy>(BUILTIN_TIERS.map((t) => [t.name, t]));
  let defaultTier: { name: string; node: Node } | null = null;
  for (const item of root.items) {
    const name = isScalar(item.key) ? String(item.key.value) : "?";
    if (!TOP_KEYS.includes(name))
      bad(
        item.key as Node,
        `unknown key ${JSON.stringify(name)} (expected ${TOP_KEYS.join(", ")})`,
      );
    if (name === "providers") {
      providers = parseProviders(item.value as Node);
      continue;
    }
    if (name === "doctor") {
      doctor = parseDoctor(item.value as Node);
      continue;
    }
    if (name === "tiers") {
      defaultTier = parseTiers(item.value as Node, tiers);
      continue;
    }
    if (!isSeq(item.value)) bad(item.value as Node, "creation_rules must be a list");
    for (const r of (item.value as { items: unknown[] }).items) rules.push(parseRule(r as Node));
  }
  if (defaultTier && !tiers.has(defaultTier.name))
    bad(defaultTier.node, `tiers.default: no tier ${JSON.stringify(defaultTier.name)}`);
  for (const r of rules)
    if (r.tier && !tiers.has(r.tier))
      fail(
        "E_USAGE",
        `${path}: a creation rule names tier ${JSON.stringify(r.tier)}, which tiers does not define`,
      );
  return {
    path,
    dir: dirname(path),
    rules,
    providers,
    doctor,
    tiers: { tiers, defaultTier: defaultTier?.name ?? null, source: path },
  };

  /** tiers: { default: NAME, NAME: { allow: [kinds], rotation_period: 90d, attestation: bool } } */
  function parseTiers(n: Node, into: Map<string, TierPolicy>): { name: string; node: Node } | null {
    if (!isMap(n)) return bad(n, "tiers must be a mapping (default: NAME, NAME: {allow: [...]})");
    let dflt: { name: string; node: Node } | null = null;
    for (const item of n.items) {
      const k = isScalar(item.key) ? String(item.key.value) : "?";
      const v = item.value as Node;
      if (k === "default") {
        dflt = { name: str(v, "tiers.default"), node: v };
        continue;
      }
      const why = metadataProblem("tier", k);
      if (why) bad(item.key as Node, `tiers: ${JSON.stringify(k)}: ${why}`);
      if (!isMap(v)) bad(v, `tiers.${k} must be a mapping (allow, rotation_period, attestation)`);
      let allow: RecipientKind[] | null = null;
      let rotationPeriod: number | null = null;
      let attestation = false;
      // Only the tier named public may be unencrypted (spec/FORMAT.md §2.5), and is by default.
      let encrypt = k !== PUBLIC_TIER;
      for (const f of (v as unknown as { items: { key: Node; value: Node }[] }).items) {
        const fk = isScalar(f.key) ? String((f.key as { value: unknown }).value) : "?";
        if (!TIER_KEYS.includes(fk))
          bad(
            f.key,
            `unknown key ${JSON.stringify(fk)} in tiers.${k} (allowed: ${TIER_KEYS.join(", ")})`,
          );
        if (fk === "allow") {
          const kinds = list(f.value, `tiers.${k}.allow`);
          if (kinds.length === 1 && kinds[0] === "any") allow = null;
          else {
            for (const x of kinds)
              if (!(RECIPIENT_KINDS as readonly string[]).includes(x))
                bad(
                  f.value,
                  `tiers.${k}.allow: unknown recipient kind ${JSON.stringify(x)} (kinds: ${RECIPIENT_KINDS.join(", ")}, or [any])`,
                );
            allow = kinds as RecipientKind[];
          }
        } else if (fk === "rotation_period") {
          const text = scalarText(f.value, `tiers.${k}.rotation_period`);
          const m = DURATION.exec(text);
          if (!m && text !== "none")
            bad(f.value, `tiers.${k}.rotation_period must be a duration (90d, 12h, 3600s) or none`);
          rotationPeriod = m
            ? Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as "s"]
            : null;
        } else {
          if (!isScalar(f.value) || typeof f.value.value !== "boolean")
            bad(f.value, `tiers.${k}.${fk} must be true or false`);
          const flag = (f.value as unknown as { value: boolean }).value;
          if (fk === "attestation") attestation = flag;
          else if (!flag && k !== PUBLIC_TIER)
            bad(f.value, `tiers.${k}.encrypt: only the public tier may be unencrypted`);
          else encrypt = flag;
        }
      }
      into.set(k, { name: k, allow, rotationPeriod, attestation, encrypt });
    }
    return dflt;
  }

  function parseDoctor(n: Node): { rotationPeriod?: string } {
    if (!isMap(n)) return bad(n, "doctor must be a mapping (rotation_period: 180d)");
    const out: { rotationPeriod?: string } = {};
    for (const item of n.items) {
      const k = isScalar(item.key) ? String(item.key.value) : "?";
      if (!DOCTOR_KEYS.includes(k))
        bad(
          item.key as Node,
          `unknown key ${JSON.stringify(k)} in doctor (allowed: ${DOCTOR_KEYS.join(", ")})`,
        );
      const v = item.value as Node;
      if (!/^(\d{1,10}[smhdw]?|none|off)$/.test(scalarText(v, "doctor.rotation_period")))
        bad(v, "doctor.rotation_period must be a duration (90d, 12h, 3600s) or none");
      out.rotationPeriod = scalarText(v, "doctor.rotation_period");
    }
    return out;
  }

  function parseProviders(n: Node): ProviderAllowList {
    if (!isMap(n))
      return bad(
        n,
        "providers must be a mapping (aws-kms: {keys: [...]}, pkcs11: {tokens: [...]})",
      );
    const out: { awsKms?: string[]; pkcs11?: string[] } = {};
    for (const item of n.items) {
      const provider = isScalar(item.key) ? String(item.key.value) : "?";
      if (provider !== "aws-kms" && provider !== "pkcs11")
        bad(
          item.key as Node,
          `unknown provider ${JSON.stringify(provider)} under providers (allowed: aws-kms, pkcs11)`,
        );
      const field = PROVIDER_FIELDS[provider as keyof typeof PROVIDER_FIELDS];
      const body = item.value as Node;
      if (!isMap(body)) bad(body, `providers.${provider} must be a mapping with ${field}`);
      const entries: string[] = [];
      for (const f of (body as { items: { key: unknown; value: unknown }[] }).items) {
        const k = isScalar(f.key) ? String((f.key as { value: unknown }).value) : "?";
        if (k !== field)
          bad(
            f.key as Node,
            `unknown key ${JSON.stringify(k)} in providers.${provider} (allowed: ${field})`,
          );
        const list = f.value as Node;
        if (!isSeq(list)) bad(list, `providers.${provider}.${field} must be a list of strings`);
        for (const x of list.items) {
          const entry = str(x as Node, `each of providers.${provider}.${field}`);
          const why = allowEntryProblem(provider as "aws-kms" | "pkcs11", entry);
          if (why)
            bad(x as Node, `providers.${provider}.${field}: ${JSON.stringify(entry)}: ${why}`);
          entries.push(entry);
        }
      }
      if (provider === "aws-kms") out.awsKms = entries;
      else out.pkcs11 = entries;
    }
    return out;
  }

  function parseRule(n: Node): CreationRule {
    if (!isMap(n)) return bad(n, "each creation rule must be a mapping");
    const f: Record<string, Node> = {};
    for (const item of n.items) {
      const k = isScalar(item.key) ? String(item.key.value) : "?";
      if (!RULE_KEYS.includes(k))
        bad(
          item.key as Node,
          `unknown key ${JSON.stringify(k)} in a creation rule (allowed: ${RULE_KEYS.join(", ")})`,
        );
      f[k] = item.value as Node;
    }
    if (!f.path_regex) bad(n, "a creation rule needs path_regex");
    const source = str(f.path_regex, "path_regex");
    let pathRegex: RegExp;
    try {
      pathRegex = new RegExp(source);
    } catch (e) {
      return bad(
        f.path_regex,
        `path_regex is not a valid regular expression: ${(e as Error).message}`,
      );
    }
    return {
      pathRegex,
      ...(f.key ? { key: str(f.key, "key") } : {}),
      recipients: f.recipients ? list(f.recipients, "recipients") : [],
      context: f.context ? pairs(f.context, "context") : {},
      labels: f.labels ? pairs(f.labels, "labels") : {},
      ...(f.chunk_size ? { chunkSize: scalarText(f.chunk_size, "chunk_size") } : {}),
      ...metadata(f),
    };
  }
  function metadata(f: Record<string, Node>): { tier?: string; purpose?: string; owner?: string } {
    const out: { tier?: string; purpose?: string; owner?: string } = {};
    for (const field of ["tier", "purpose", "owner"] as const) {
      if (!f[field]) continue;
      const v = str(f[field], field);
      const why = metadataProblem(field, v);
      if (why) bad(f[field], `${field}: ${why}`);
      out[field] = v;
    }
    return out;
  }
  function scalarText(n: Node, what: string): string {
    if (!isScalar(n) || (typeof n.value !== "string" && typeof n.value !== "number"))
      bad(n, `${what} must be a string or number`);
    return String((n as { value: unknown }).value);
  }
  function str(n: Node, what: string): string {
    if (!isScalar(n) || typeof n.value !== "string" || n.value.length === 0)
      bad(n, `${what} must be a non-empty string`);
    return (n as { value: string }).value;
  }
  function list(n: Node, what: string): string[] {
    if (!isSeq(n)) return bad(n, `${what} must be a list of strings`);
    return n.items.map((x) => str(x as Node, `each of ${what}`));
  }
  function pairs(n: Node, what: string): Record<string, string> {
    if (!isMap(n)) return bad(n, `${what} must be a mapping of strings`);
    const out: Record<string, string> = {};
    for (const item of n.items) {
      const k = str(item.key as Node, `a ${what} key`);
      out[k] = scalarText(item.value as Node, `${what}.${k}`);
    }
    return out;
  }
}

/** The first rule of the nearest config that matches `input`, or null (no config, no match). */
export function creationRuleFor(input: string, cwd = process.cwd()): CreationRule | null {
  const path = findConfig(cwd);
  if (!path) return null;
  const config = parseConfig(readFileSync(path, "utf8"), path);
  const rel = relative(config.dir, resolve(cwd, input)).split(sep).join("/");
  return config.rules.find((r) => r.pathRegex.test(rel)) ?? null;
}

export interface SealFlags {
  key?: string[];
  recipient?: string[];
  passphrase?: boolean;
  passphraseFile?: string;
  context?: string[];
  label?: string[];
  chunkSize: string;
  tier?: string;
  purpose?: string;
  owner?: string;
}

/**
 * Seal flags with the matching creation rule's defaults filled in. Explicit flags win: any
 * recipient flag replaces the rule's recipients; a context or label key given as a flag
 * replaces the rule's value for that key; an explicit --chunk-size replaces chunk_size.
 */
export function withCreationRule<T extends SealFlags>(
  input: string,
  flags: T,
  chunkSizeExplicit: boolean,
): T {
  if (input === "-") return flags;
  const rule = creationRuleFor(input);
  if (!rule) return flags;
  const out: T = { ...flags };
  const explicitRecipients =
    flags.key?.length || flags.recipient?.length || flags.passphrase || flags.passphraseFile;
  if (!explicitRecipients) {
    if (rule.key) out.key = [rule.key];
    if (rule.recipients.length > 0) out.recipient = [...rule.recipients];
  }
  const merge = (given: string[] | undefined, defaults: Readonly<Record<string, string>>) => {
    const set = new Set((given ?? []).map((p) => p.slice(0, p.indexOf("="))));
    const fromRule = Object.entries(defaults)
      .filter(([k]) => !set.has(k))
      .map(([k, v]) => `${k}=${v}`);
    return [...fromRule, ...(given ?? [])];
  };
  out.context = merge(flags.context, rule.context);
  out.label = merge(flags.label, rule.labels);
  if (!chunkSizeExplicit && rule.chunkSize) out.chunkSize = rule.chunkSize;
  for (const field of ["tier", "purpose", "owner"] as const)
    if (flags[field] === undefined && rule[field] !== undefined) out[field] = rule[field];
  return out;
}

/** The tiers of the nearest config (merged over the built-ins), or the built-ins alone. */
export function projectTiers(cwd = process.cwd()): TierConfig {
  const path = findConfig(cwd);
  if (!path)
    return {
      tiers: new Map(BUILTIN_TIERS.map((t) => [t.name, t])),
      defaultTier: null,
      source: null,
    };
  return parseConfig(readFileSync(path, "utf8"), path).tiers;
}

/**
 * The provider keys the nearest config allows: its `providers` section plus the provider keys its
 * creation rules seal to (keys the project names are keys it uses). A config that another user
 * owns is not trusted for this (someone else's directory must not choose which keys run under
 * your credentials, as git's safe.directory): it is ignored with a notice.
 */
export function projectAllowList(cwd = process.cwd()): ProviderAllowList {
  const path = findConfig(cwd);
  if (!path) return {};
  const config = parseConfig(readFileSync(path, "utf8"), path);
  const fromRules = config.rules.flatMap((r) => r.recipients);
  const list = {
    awsKms: [
      ...(config.providers.awsKms ?? []),
      ...fromRules
        .filter((r) => r.startsWith("aws-kms:"))
        .map((r) => r.slice(8))
        .filter((e) => allowEntryProblem("aws-kms", e) === null),
    ],
    pkcs11: [
      ...(config.providers.pkcs11 ?? []),
      ...fromRules
        .filter((r) => r.startsWith("pkcs11:"))
        .map((r) => r.slice(7))
        .filter((e) => allowEntryProblem("pkcs11", e) === null),
    ],
  };
  if (list.awsKms.length + list.pkcs11.length === 0) return {};
  const owner = statSync(path).uid;
  const me = process.getuid?.();
  if (me !== undefined && owner !== me && owner !== 0) {
    notice(
      `${path} is owned by uid ${owner}, not you: its provider keys are not allowed (copy the entries you trust into your own config or TENSORSEAL_KMS_KEYS / TENSORSEAL_PKCS11_TOKENS)`,
    );
    return {};
  }
  return list;
}

/** The `doctor` section of the nearest config ({} without one), and the config's path. */
export function doctorConfig(cwd = process.cwd()): {
  path: string | null;
  rotationPeriod?: string;
} {
  const path = findConfig(cwd);
  if (!path) return { path: null };
  return { path, ...parseConfig(readFileSync(path, "utf8"), path).doctor };
}
