/**
 * `tensorseal service keys list|show|create|rotate|rotate-due|set|disable|enable|schedule-destroy|cancel-destroy`:
 * the key service's KEKs over HTTPS with the seal/open service client (TENSORSEAL_SERVER or
 * --server, TENSORSEAL_SERVER_TOKEN[_FILE], TENSORSEAL_SERVER_CA, TENSORSEAL_SERVER_CERT/KEY).
 * Needs an admin token by default. Arguments are checked against the server's own schemas
 * before any request (E_USAGE); refusals are E_PROVIDER.
 */
import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import { printable } from "../../format/printable.js";
import type { ServiceClient } from "../../keys/service/index.js";
import {
  destroyDaysSchema,
  keyNameSchema,
  labelsSchema,
  rotationPeriodSchema,
  sensitivitySchema,
  VERSION_PATTERN,
} from "../../service/schemas.js";
import { collect, printJson } from "../options.js";
import { print } from "../output.js";
import { parseDuration } from "./keys.js";
import { serviceGroup, withClient } from "./service-shared.js";

interface KeyVersion {
  version: number;
  state: string;
  destroyAfter?: string;
}

interface Key {
  name: string;
  primaryVersion: number;
  minDecryptionVersion?: number;
  minEncryptionVersion?: number;
  labels?: Record<string, string>;
  sensitivity?: string;
  rotationPeriod?: number | null;
  rotationDue?: string | null;
  versions: KeyVersion[];
}

const NAME_RE = new RegExp(keyNameSchema.pattern);
const VERSION_RE = new RegExp(VERSION_PATTERN);
const LABEL_KEY_RE = new RegExp(labelsSchema.propertyNames.pattern);
const SENSITIVITIES: readonly string[] = sensitivitySchema.enum;

function keyName(name: string): string {
  if (!NAME_RE.test(name))
    fail("E_USAGE", `key name ${JSON.stringify(name)} must match ${keyNameSchema.pattern}`);
  return name;
}

function positive(what: string, v: string): number {
  if (!VERSION_RE.test(v)) fail("E_USAGE", `${what} expects a positive integer, got ${v}`);
  return Number(v);
}

function days(v: string): number {
  const n = positive("--days", v);
  if (n < destroyDaysSchema.minimum || n > destroyDaysSchema.maximum)
    fail(
      "E_USAGE",
      `--days must be ${destroyDaysSchema.minimum}..${destroyDaysSchema.maximum}, got ${n}`,
    );
  return n;
}

/** `--rotation-period` as `keys set` reads it (90d, 2w, 12h, 3600s, none) → seconds or null. */
function rotationPeriod(s: string): number | null {
  const n = parseDuration(s);
  if (n !== null && n > rotationPeriodSchema.maximum)
    fail("E_USAGE", `--rotation-period at most ${rotationPeriodSchema.maximum}s (100 years)`);
  return n;
}

/** Seconds as the largest whole unit `--rotation-period` takes (90d, 2w, 12h, 3600s). */
function durationText(s: number): string {
  for (const [unit, n] of [
    ["w", 604_800],
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
  ] as const)
    if (s % n === 0) return `${s / n}${unit}`;
  return `${s}s`;
}

function sensitivity(s: string): string {
  if (!SENSITIVITIES.includes(s))
    fail("E_USAGE", `--sensitivity ${JSON.stringify(s)}: one of ${SENSITIVITIES.join(", ")}`);
  return s;
}

/** Repeated `-l k=v` as the labels the server accepts (labelsSchema), or undefined when none. */
function labels(pairs: string[] | undefined): Record<string, string> | undefined {
  if (pairs === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf("=");
    if (eq <= 0) fail("E_USAGE", `--label expects KEY=VALUE, got ${JSON.stringify(p)}`);
    const k = p.slice(0, eq);
    const v = p.slice(eq + 1);
    if (!LABEL_KEY_RE.test(k))
      fail("E_USAGE", `--label key ${JSON.stringify(k)} must match ${LABEL_KEY_RE.source}`);
    if (Object.hasOwn(out, k)) fail("E_USAGE", `--label ${k} given twice`);
    if (v.length > labelsSchema.additionalProperties.maxLength)
      fail(
        "E_USAGE",
        `--label ${k}: value longer than ${labelsSchema.additionalProperties.maxLength}`,
      );
    if (k === "sensitivity" && !SENSITIVITIES.includes(v))
      fail("E_USAGE", `--label sensitivity=${v}: one of ${SENSITIVITIES.join(", ")}`);
    out[k] = v;
  }
  if (Object.keys(out).length > labelsSchema.maxProperties)
    fail("E_USAGE", `at most ${labelsSchema.maxProperties} labels`);
  return out;
}

/** One request; anything but 200 (or 202 where `accepted`) is the service's refusal. */
async function call(
  cmd: Command,
  method: "get" | "post" | "patch",
  path: string,
  body?: unknown,
  accepted = false,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return withClient(cmd, async (c: ServiceClient) => {
    const r = method === "get" ? await c.get(path) : await c[method](path, body ?? {});
    if (r.status !== 200 && !(accepted && r.status === 202)) c.refused(path, r);
    return r;
  });
}

const keyPath = (name: string) => `/v1/keys/${encodeURIComponent(name)}`;

function labelText(l: Record<string, string> | undefined): string {
  const s = Object.entries(l ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  return s || "-";
}

/**
 * name, primary, versions with states, labels, sensitivity, minimum versions, rotation period
 * and due date (tab-separated; `-` when the key has no period).
 */
function line(k: Key): string {
  const versions = k.versions.map((v) => `v${v.version}:${v.state}`).join(",");
  // Each field escaped: the service's answer is data, and a tab inside one would shift columns.
  return [
    k.name,
    `primary v${k.primaryVersion}`,
    versions,
    labelText(k.labels),
    k.sensitivity ?? "unspecified",
    `min decrypt v${k.minDecryptionVersion ?? 1}`,
    `min encrypt v${k.minEncryptionVersion ?? 1}`,
    `rotation ${k.rotationPeriod ? durationText(k.rotationPeriod) : "-"}`,
    `due ${k.rotationDue ?? "-"}`,
  ]
    .map((f) => printable(String(f)))
    .join("\t");
}

function report(json: boolean | undefined, value: unknown, human: string): void {
  if (json) printJson(value);
  else print(human);
}

const jsonHelp = "print the service's JSON answer";

export function registerServiceKeys(program: Command): void {
  const service = serviceGroup(program);
  const keys = service
    .command("keys")
    .description(
      "the key service's KEKs: metadata, versions and lifecycle (over HTTPS; admin token)",
    );

  keys
    .command("list")
    .description(
      "keys (tab-separated: name, primary, versions:states, labels, sensitivity, min decrypt, min encrypt, rotation period, due date)",
    )
    .option("--json", "print JSON (an array of keys)")
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal service keys list\n  tensorseal --server https://kms:8443 service keys list --json",
    )
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const list = (await call(cmd, "get", "/v1/keys")).body.keys as Key[];
      if (o.json) return printJson(list);
      for (const k of list) process.stdout.write(`${line(k)}\n`);
    });

  keys
    .command("show")
    .description("one key: the list's fields, or its JSON with versions' creation times")
    .argument("<name>", "key name")
    .option("--json", jsonHelp)
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal service keys show llm   # ... rotation 90d  due 2027-03-04T...\n  tensorseal service keys show llm --json",
    )
    .action(async (name: string, o: { json?: boolean }, cmd: Command) => {
      const k = (await call(cmd, "get", keyPath(keyName(name)))).body as unknown as Key;
      if (o.json) return printJson(k);
      process.stdout.write(`${line(k)}\n`);
    });

  keys
    .command("create")
    .description("create a KEK at version 1, with labels and a sensitivity")
    .argument("<name>", `key name (${keyNameSchema.pattern})`)
    .option("-l, --label <k=v>", "label (repeatable)", collect)
    .option("--sensitivity <s>", `one of ${SENSITIVITIES.join(" < ")} (default unspecified)`)
    .option("--json", jsonHelp)
    .addHelpText(
      "after",
      "\nExample:\n  tensorseal service keys create llm -l team=ml --sensitivity confidential",
    )
    .action(
      async (
        name: string,
        o: { label?: string[]; sensitivity?: string; json?: boolean },
        cmd: Command,
      ) => {
        const l = labels(o.label);
        const body = {
          name: keyName(name),
          ...(l !== undefined ? { labels: l } : {}),
          ...(o.sensitivity !== undefined ? { sensitivity: sensitivity(o.sensitivity) } : {}),
        };
        const k = (await call(cmd, "post", "/v1/keys", body)).body as unknown as Key;
        report(o.json, k, `created key ${k.name} (version 1)`);
      },
    );

  keys
    .command("rotate")
    .description("add a new version and make it primary (old versions still unwrap)")
    .argument("<name>", "key name")
    .option("--json", jsonHelp)
    .addHelpText(
      "after",
      "\nExample:\n  tensorseal service keys rotate llm && tensorseal rewrap --to-latest models/   # with TENSORSEAL_SERVER set",
    )
    .action(async (name: string, o: { json?: boolean }, cmd: Command) => {
      const path = `${keyPath(keyName(name))}/rotate`;
      const k = (await call(cmd, "post", path)).body as unknown as Key;
      report(o.json, k, `rotated ${k.name}: primary version is now ${k.primaryVersion}`);
    });

  keys
    .command("rotate-due")
    .description(
      "rotate every key whose primary version has reached its rotation period (run it from cron)",
    )
    .option("--json", jsonHelp)
    .addHelpText(
      "after",
      "\nEach rotation is decided (keys:rotate) and audited as a single `service keys rotate`; a\npolicy refusing one due key refuses the run with nothing rotated (exit 8).\n\nExamples:\n  tensorseal service keys set llm --rotation-period 90d\n  tensorseal service keys rotate-due && tensorseal rewrap --to-latest models/   # daily, from cron",
    )
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const r = await call(cmd, "post", "/v1/rotate-due");
      const rotated = r.body.rotated;
      if (!Array.isArray(rotated) || !rotated.every((n) => typeof n === "string"))
        fail("E_PROVIDER", "the key service answered rotate-due without a list of key names");
      const names = rotated.map((n) => printable(n)).join(", ");
      report(o.json, r.body, `rotated ${rotated.length} key(s)${names ? `: ${names}` : ""}`);
    });

  keys
    .command("set")
    .description(
      "change minimum versions, labels (replaced as a whole), sensitivity and rotation period",
    )
    .argument("<name>", "key name")
    .option("--min-decryption-version <n>", "versions below it no longer unwrap")
    .option("--min-encryption-version <n>", "the primary must be at least this version")
    .option("-l, --label <k=v>", "label (repeatable; the given set replaces the key's)", collect)
    .option("--sensitivity <s>", `one of ${SENSITIVITIES.join(" < ")}`)
    .option(
      "--rotation-period <duration>",
      "rotate with `service keys rotate-due` once the primary is this old (90d, 2w, 12h, 3600s, or none)",
    )
    .option("--json", jsonHelp)
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal service keys set llm --min-decryption-version 2 -l team=ml -l env=prod\n  tensorseal service keys set llm --rotation-period 90d   # then `service keys rotate-due` from cron",
    )
    .action(
      async (
        name: string,
        o: {
          minDecryptionVersion?: string;
          minEncryptionVersion?: string;
          label?: string[];
          sensitivity?: string;
          rotationPeriod?: string;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        keyName(name);
        const body: Record<string, unknown> = {};
        if (o.minDecryptionVersion !== undefined)
          body.minDecryptionVersion = positive("--min-decryption-version", o.minDecryptionVersion);
        if (o.minEncryptionVersion !== undefined)
          body.minEncryptionVersion = positive("--min-encryption-version", o.minEncryptionVersion);
        const l = labels(o.label);
        if (l !== undefined) body.labels = l;
        if (o.sensitivity !== undefined) body.sensitivity = sensitivity(o.sensitivity);
        if (o.rotationPeriod !== undefined) body.rotationPeriod = rotationPeriod(o.rotationPeriod);
        if (Object.keys(body).length === 0) fail("E_USAGE", "nothing to set: see --help");
        const k = (await call(cmd, "patch", keyPath(name), body)).body as unknown as Key;
        report(o.json, k, `updated ${k.name}: ${line(k)}`);
      },
    );

  const lifecycle: { action: string; description: string; example: string }[] = [
    {
      action: "disable",
      description: "stop a version from unwrapping (reversible)",
      example: "tensorseal service keys disable llm 1",
    },
    {
      action: "enable",
      description: "re-enable a disabled version",
      example: "tensorseal service keys enable llm 1",
    },
    {
      action: "cancel-destroy",
      description: "cancel a scheduled destruction (the version comes back disabled)",
      example:
        "tensorseal service keys cancel-destroy llm 1 && tensorseal service keys enable llm 1",
    },
  ];
  for (const { action, description, example } of lifecycle) {
    keys
      .command(action)
      .description(description)
      .argument("<name>", "key name")
      .argument("<version>", "version number")
      .option("--json", jsonHelp)
      .addHelpText("after", `\nExample:\n  ${example}`)
      .action(async (name: string, version: string, o: { json?: boolean }, cmd: Command) => {
        const v = positive("version", version);
        const path = `${keyPath(keyName(name))}/versions/${v}/${action}`;
        const k = (await call(cmd, "post", path)).body.key as Key;
        const state = k.versions.find((x) => x.version === v)?.state;
        report(o.json, k, `version ${v} of ${k.name} is now ${state}`);
      });
  }

  keys
    .command("schedule-destroy")
    .description(
      "destroy a version's material after a waiting period (crypto-shredding); under dual control, request it",
    )
    .argument("<name>", "key name")
    .argument("<version>", "version number")
    .option(
      "--days <n>",
      `waiting period in days (${destroyDaysSchema.minimum}..${destroyDaysSchema.maximum}, default 7)`,
    )
    .option("--json", jsonHelp)
    .addHelpText(
      "after",
      "\nFiles wrapped only under this version become unreadable for ever once it is destroyed.\nWith `serve --approvals destroy=M` (M > 1) this makes an approval request instead and\nprints its id: other admins approve it with `tensorseal service approvals approve ID`.\n\nExample:\n  tensorseal service keys rotate llm && tensorseal rewrap --to-latest models/\n  tensorseal service keys schedule-destroy llm 1 --days 30",
    )
    .action(
      async (name: string, version: string, o: { days?: string; json?: boolean }, cmd: Command) => {
        const v = positive("version", version);
        keyName(name);
        const body = o.days !== undefined ? { days: days(o.days) } : {};
        const path = `${keyPath(name)}/versions/${v}/schedule-destroy`;
        const r = await call(cmd, "post", path, body, true);
        if (o.json) return printJson(r.body);
        if (r.status === 202) {
          const b = r.body as { approval: string; required: number; approvers: string[] };
          print(
            `approval ${b.approval} pending: destroying ${name} v${v} needs ${b.required} approvals from distinct principals (${b.approvers.length} so far)`,
          );
          print(`approve with: tensorseal service approvals approve ${b.approval}`);
          return;
        }
        print(`version ${v} of ${name} will be destroyed after ${r.body.destroyAfter as string}`);
      },
    );
}
