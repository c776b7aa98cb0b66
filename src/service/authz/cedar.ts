/**
 * Authorization with Cedar (`@cedar-policy/cedar-wasm`, Node build). A policy set is loaded
 * once — from `*.cedar` files or the built-in default — validated against CEDAR_SCHEMA in
 * strict mode (an invalid set refuses to load), and pre-parsed into the Wasm module. Decisions
 * are default deny; an evaluation that fails or where any policy errored denies (fail closed).
 *
 * Policy ids: a policy's `@id("...")` annotation, else `FILE.cedar#N` (N from 0 in the file).
 */
import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { fail } from "../../format/errors.js";
import { sensitivityLevel } from "./attributes.js";
import { CEDAR_SCHEMA, DEFAULT_POLICIES } from "./schema.js";

const NS = "TensorSeal";

export type PrincipalType = "Workload" | "User";

export interface AuthzPrincipal {
  readonly id: string;
  readonly type: PrincipalType;
  readonly kind: string;
  readonly roles: readonly string[];
}

/** A key's attributes (labels as "k=v"; sensitivity default "unspecified"). */
export interface KeyAttrs {
  readonly name: string;
  readonly labels?: readonly string[];
  readonly sensitivity?: string;
}

/** The registered artifact a stanza belongs to, given to unwrap decisions as `context.artifact`. */
export interface ArtifactInfo {
  readonly id: string;
  readonly key: string;
  readonly version: number;
  readonly labels: readonly string[];
  readonly sensitivity: string;
}

/**
 * A resource: a key (optionally with the artifact of the stanza being unwrapped), an artifact
 * (child of its key; sensitivity default: the key's) or the service itself.
 */
export type AuthzResource =
  | ({ readonly type: "Key"; readonly artifact?: ArtifactInfo } & KeyAttrs)
  | {
      readonly type: "Artifact";
      readonly id: string;
      readonly key: KeyAttrs;
      readonly version: number;
      readonly digest?: string;
      readonly labels?: readonly string[];
      readonly sensitivity?: string;
    }
  | { readonly type: "Service"; readonly id?: string };

export interface AuthzRequest {
  readonly principal: AuthzPrincipal;
  readonly action: string;
  readonly resources: readonly AuthzResource[];
  readonly context: Record<string, unknown>;
}

export interface Decision {
  readonly decision: "allow" | "deny";
  /** The policies that decided: the permits that allowed, or the forbids that denied. */
  readonly policies: string[];
  /** Why, in words (for the audit and `policy test`). */
  readonly reason: string;
}

function describe(e: { message: string; help?: string | null }): string {
  return e.help ? `${e.message} (${e.help})` : e.message;
}

/** Splits policy text into policies with ids (the @id annotation or FILE#N). */
function policiesOf(file: string, text: string): Record<string, string> {
  const parts = cedar.policySetTextToParts(text);
  if (parts.type !== "success")
    fail("E_USAGE", `policy file ${file}: ${parts.errors.map(describe).join("; ")}`);
  if (parts.policy_templates.length > 0)
    fail("E_USAGE", `policy file ${file}: templates are not supported`);
  const out: Record<string, string> = {};
  parts.policies.forEach((p, i) => {
    const m = /@id\(\s*"([^"]+)"\s*\)/.exec(p);
    out[m ? m[1]! : `${file}#${i}`] = p;
  });
  return out;
}

/** Most memoised decisions kept; the memo is emptied when it grows past this. */
const MEMO_MAX = 4096;

export class Authorizer {
  /**
   * Decisions memoised by the complete request (principal with its roles, action, resource with
   * its attributes, context including `time` in seconds and any attestation claims). Cedar
   * evaluation is a pure function of those inputs and of this object's immutable policy set, so
   * a hit returns exactly what a fresh evaluation would; it saves the Wasm call (~0.3 ms) for a
   * caller repeating the same request within the same second.
   */
  private readonly memo = new Map<string, Decision>();
  private readonly setId = `ps-${randomBytes(8).toString("hex")}`;
  private readonly schemaId = `schema-${randomBytes(8).toString("hex")}`;

  private constructor(
    readonly policies: Readonly<Record<string, string>>,
    /** Where the policies came from (a directory, or "built-in default"). */
    readonly source: string,
  ) {
    const s = cedar.preparseSchema(this.schemaId, CEDAR_SCHEMA);
    if (s.type !== "success") throw new Error(`Cedar schema: ${s.errors.map(describe).join("; ")}`);
    const p = cedar.preparsePolicySet(this.setId, { staticPolicies: { ...policies } });
    if (p.type !== "success")
      fail("E_USAGE", `policies (${source}): ${p.errors.map(describe).join("; ")}`);
  }

  /** Validates a policy set against the schema; throws E_USAGE with every problem. */
  static fromPolicies(policies: Record<string, string>, source: string): Authorizer {
    if (Object.keys(policies).length === 0)
      fail("E_USAGE", `no policies in ${source}: with default deny nothing would be allowed`);
    const v = cedar.validate({
      schema: CEDAR_SCHEMA,
      policies: { staticPolicies: { ...policies } },
      validationSettings: { mode: "strict" },
    });
    if (v.type !== "success")
      fail("E_USAGE", `policies (${source}) do not parse: ${v.errors.map(describe).join("; ")}`);
    if (v.validationErrors.length > 0) {
      const why = v.validationErrors.map((e) => `${e.policyId}: ${describe(e.error)}`);
      fail("E_USAGE", `policies (${source}) do not validate against the schema: ${why.join("; ")}`);
    }
    return new Authorizer(policies, source);
  }

  /** The built-in set: each action needs the role the first slice's scope demanded. */
  static default(): Authorizer {
    return Authorizer.fromPolicies(DEFAULT_POLICIES, "built-in default");
  }

  /** Every `*.cedar` file of `dir` (sorted), validated. */
  static async fromDir(dir: string): Promise<Authorizer> {
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.endsWith(".cedar")).sort();
    } catch (e) {
      return fail("E_USAGE", `--policy ${dir}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
    const files: Record<string, string> = {};
    for (const n of names) files[n] = await readFile(join(dir, n), "utf8");
    return Authorizer.fromFiles(files, dir);
  }

  /** Policy files by name (as `fromDir` reads them; also a policy set proposed over the API). */
  static fromFiles(files: Readonly<Record<string, string>>, source: string): Authorizer {
    const all: Record<string, string> = {};
    for (const n of Object.keys(files).sort()) {
      for (const [id, p] of Object.entries(policiesOf(n, files[n]!))) {
        if (id in all) fail("E_USAGE", `policy id ${id} appears twice in ${source}`);
        all[id] = p;
      }
    }
    return Authorizer.fromPolicies(all, source);
  }

  /** SHA-256 (hex) of the canonical JSON of the policies by id: names a policy set. */
  get digest(): string {
    const sorted = Object.fromEntries(
      Object.keys(this.policies)
        .sort()
        .map((id) => [id, this.policies[id]]),
    );
    return createHash("sha256").update(JSON.stringify(sorted), "utf8").digest("hex");
  }

  /** Allow only if every resource is allowed with no evaluation error. */
  authorize(r: AuthzRequest): Decision {
    const permits = new Set<string>();
    for (const res of r.resources) {
      const d = this.one(r, res);
      if (d.decision === "deny") return d;
      for (const p of d.policies) permits.add(p);
    }
    if (r.resources.length === 0) return { decision: "deny", policies: [], reason: "no resource" };
    return { decision: "allow", policies: [...permits].sort(), reason: "permitted" };
  }

  private one(r: AuthzRequest, res: AuthzResource): Decision {
    const k = JSON.stringify([r.principal, r.action, res, r.context]);
    const hit = this.memo.get(k);
    if (hit) return hit;
    const d = this.evaluate(r, res);
    if (this.memo.size >= MEMO_MAX) this.memo.clear();
    this.memo.set(k, d);
    return d;
  }

  private evaluate(r: AuthzRequest, res: AuthzResource): Decision {
    const principal = { type: `${NS}::${r.principal.type}`, id: r.principal.id };
    let built: ReturnType<typeof resourceEntities>;
    try {
      built = resourceEntities(res);
    } catch (e) {
      return { decision: "deny", policies: [], reason: (e as Error).message };
    }
    const entities: cedar.EntityJson[] = [
      {
        uid: principal,
        attrs: { roles: [...r.principal.roles], kind: r.principal.kind },
        parents: r.principal.roles.map((role) => ({ type: `${NS}::Role`, id: role })),
      },
      ...built.entities,
    ];
    const resource = built.uid;
    const context = built.context ? { ...r.context, ...built.context } : r.context;
    const what = `${r.action} on ${describeResource(res)}`;
    let a: cedar.AuthorizationAnswer;
    try {
      a = cedar.statefulIsAuthorized({
        principal,
        action: { type: `${NS}::Action`, id: r.action },
        resource,
        context: context as cedar.Context,
        entities,
        preparsedPolicySetId: this.setId,
        preparsedSchemaName: this.schemaId,
        validateRequest: true,
      });
    } catch (e) {
      return { decision: "deny", policies: [], reason: `policy evaluation failed: ${String(e)}` };
    }
    if (a.type !== "success") {
      const why = a.errors.map(describe).join("; ");
      return { decision: "deny", policies: [], reason: `policy evaluation failed: ${why}` };
    }
    const { decision, diagnostics } = a.response;
    const ids = [...diagnostics.reason].sort();
    if (diagnostics.errors.length > 0) {
      const errored = diagnostics.errors.map((e) => e.policyId).sort();
      return {
        decision: "deny",
        policies: errored,
        reason: `policy evaluation errored in ${errored.join(", ")}: denied (fail closed)`,
      };
    }
    if (decision === "allow") return { decision: "allow", policies: ids, reason: "permitted" };
    if (ids.length > 0)
      return { decision: "deny", policies: ids, reason: `${what} forbidden by ${ids.join(", ")}` };
    return { decision: "deny", policies: [], reason: `no policy permits ${what} (default deny)` };
  }
}

function describeResource(res: AuthzResource): string {
  if (res.type === "Key") return `key ${res.name}`;
  if (res.type === "Artifact") return `artifact ${res.id}`;
  return "the service";
}

/** Level of a sensitivity name; an unknown name denies (fail closed), it never defaults. */
function level(name: string): number {
  const l = sensitivityLevel(name);
  if (l < 0) throw new Error(`unknown sensitivity "${name}": denied (fail closed)`);
  return l;
}

function keyEntity(k: KeyAttrs): cedar.EntityJson {
  const sensitivity = k.sensitivity ?? "unspecified";
  return {
    uid: { type: `${NS}::Key`, id: k.name },
    attrs: {
      name: k.name,
      labels: [...(k.labels ?? [])],
      sensitivity,
      sensitivityLevel: level(sensitivity),
    },
    parents: [],
  };
}

/** The resource's uid, the entities it needs (an artifact's key too) and per-resource context. */
function resourceEntities(res: AuthzResource): {
  uid: cedar.EntityUidJson;
  entities: cedar.EntityJson[];
  context?: Record<string, unknown>;
} {
  if (res.type === "Service") {
    const uid = { type: `${NS}::Service`, id: res.id ?? "service" };
    return { uid, entities: [{ uid, attrs: {}, parents: [] }] };
  }
  if (res.type === "Key") {
    const key = keyEntity(res);
    const a = res.artifact;
    const context = a
      ? {
          artifact: {
            id: a.id,
            key: a.key,
            version: a.version,
            labels: [...a.labels],
            sensitivity: a.sensitivity,
            sensitivityLevel: level(a.sensitivity),
          },
        }
      : undefined;
    return { uid: key.uid, entities: [key], ...(context ? { context } : {}) };
  }
  const key = keyEntity(res.key);
  const keyUid = { type: `${NS}::Key`, id: res.key.name };
  const uid = { type: `${NS}::Artifact`, id: res.id };
  const sensitivity = res.sensitivity ?? res.key.sensitivity ?? "unspecified";
  return {
    uid,
    entities: [
      key,
      {
        uid,
        attrs: {
          id: res.id,
          key: { __entity: keyUid },
          version: res.version,
          digest: res.digest ?? "",
          labels: [...(res.labels ?? [])],
          sensitivity,
          sensitivityLevel: level(sensitivity),
        },
        parents: [keyUid],
      },
    ],
  };
}
