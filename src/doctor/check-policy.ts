/**
 * service.policy-overbroad: a Cedar `permit` that grants too much (docs/DECISIONS.md, "doctor:
 * over-broad Cedar policies"). Each policy is turned into Cedar's JSON form by Cedar itself
 * (`policyToJson`, @cedar-policy/cedar-wasm) and its scope judged:
 *
 * - error: principal, action and resource all unconstrained and no `when`/`unless` condition
 *   (`permit (principal, action, resource);`): anyone authenticated may do anything to anything;
 * - warning: no condition and either any principal on a key-release action (unwrap,
 *   keys:export), or any action on any key (resource unconstrained or only `is Key`).
 *
 * `principal is T` / `resource is T` without `in` counts as unconstrained (any entity of the
 * type). A policy with a `when`/`unless` condition gets the same verdict only when Cedar itself,
 * evaluating that policy alone, permits a probe request its condition cannot have been written
 * for: a principal of the scope holding no other role (of every kind), on a key of every
 * sensitivity, with the least context a request carries (no attestation, certificate or
 * artifact). So `when { true }` or `unless { principal.roles.contains("blocked") }` is judged
 * like no condition, while a condition on roles, attributes or context the probe lacks is not
 * (an error in a condition denies, as on the service). Forbids never widen access and are
 * skipped. The policy text is not secret; the finding names the id.
 *
 * Sources: the active set of a key service (GET /v1/policies, `policies:read`, an admin token)
 * and local policy files (`doctor --policy FILE|DIR`, *.cedar as `serve --policy` reads them).
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { fail } from "../format/errors.js";
import { SENSITIVITIES } from "../service/authz/attributes.js";
import { CEDAR_SCHEMA, CEDAR_NAMESPACE as NS } from "../service/authz/schema.js";
import type { Finding, Severity } from "./findings.js";
import { getForCheck, type ServiceAccess } from "./service-access.js";

/** Actions that release key material to the caller. */
export const KEY_RELEASE_ACTIONS = ["unwrap", "keys:export"] as const;

type Scope = { op: string; entity?: { type: string; id: string }; entities?: { id: string }[] } & {
  entity_type?: string;
};

interface Verdict {
  readonly severity: Severity;
  readonly why: string;
  readonly scope: string;
}

/** The verdict on one policy's text, or null when it is not over-broad. */
export function judgePolicy(text: string): Verdict | null {
  const r = cedar.policyToJson(text);
  if (r.type !== "success") return null; // a set that does not parse never loads (cedar.ts)
  const j = r.json as unknown as PolicyJson;
  if (j.effect !== "permit") return null;
  const v = judgeScope(j);
  if (!v || j.conditions.length === 0) return v;
  const admitted = probeActions(j).find((action) => admitsProbe(text, j.principal, action));
  if (!admitted) return null;
  const who = j.principal.op === "All" ? "a principal holding no role" : "such a principal";
  return {
    severity: v.severity,
    why: v.why,
    scope: v.scope.replace(
      "no condition",
      `its condition admits ${who} (Cedar permits ${admitted} on a key with no attestation or artifact in the request)`,
    ),
  };
}

interface PolicyJson {
  effect: string;
  principal: Scope;
  action: Scope;
  resource: Scope;
  conditions: unknown[];
}

/** The verdict of the policy's scope alone, as if it had no condition. */
function judgeScope(j: PolicyJson): Verdict | null {
  // `is T` alone still admits every entity of the type.
  const anyPrincipal = j.principal.op === "All" || j.principal.op === "is";
  const anyResource = j.resource.op === "All" || j.resource.op === "is";
  const anyAction = j.action.op === "All";
  const scope = `principal ${show(j.principal)}, action ${show(j.action)}, resource ${show(j.resource)}, no condition`;
  if (anyPrincipal && anyAction && anyResource)
    return { severity: "error", why: "any principal may do any action on any resource", scope };
  const actions = scopeActions(j);
  const releases = anyAction || actions.some(isRelease);
  if (anyPrincipal && releases) {
    const which = anyAction ? "any action" : actions.filter(isRelease).join(", ");
    return { severity: "warning", why: `any principal may release key material (${which})`, scope };
  }
  const keyResource =
    j.resource.op === "All" || (j.resource.op === "is" && j.resource.entity_type === `${NS}::Key`);
  if (anyAction && keyResource)
    return { severity: "warning", why: "the principal may do any action on any key", scope };
  return null;
}

function scopeActions(j: PolicyJson): string[] {
  if (j.action.op === "==") return [j.action.entity?.id ?? ""];
  if (j.action.op === "in") return (j.action.entities ?? []).map((e) => e.id);
  return [];
}

function isRelease(action: string): boolean {
  return (KEY_RELEASE_ACTIONS as readonly string[]).includes(action);
}

/** The key-release actions whose permission confirms the scope's verdict (any action: both). */
function probeActions(j: PolicyJson): string[] {
  return j.action.op === "All" ? [...KEY_RELEASE_ACTIONS] : scopeActions(j).filter(isRelease);
}

const PROBE_KINDS = ["token", "jwt", "mtls"] as const;

/**
 * Does Cedar, with this policy alone and the service's schema, permit `action` on a key of some
 * sensitivity to a principal of the policy's scope that holds no other role? Evaluation errors
 * (an attribute the probe lacks) count as not permitted, as they deny on the service.
 */
function admitsProbe(text: string, scope: Scope, action: string): boolean {
  const principal = probePrincipal(scope);
  if (!principal) return false;
  for (const kind of PROBE_KINDS)
    for (const sensitivity of SENSITIVITIES) {
      const key = { type: `${NS}::Key`, id: "doctor-probe-key" };
      const answer = cedar.isAuthorized({
        principal: principal.uid,
        action: { type: `${NS}::Action`, id: action },
        resource: key,
        context: {
          source: "192.0.2.1",
          time: Math.floor(Date.now() / 1000),
          principalKind: kind,
          workload: { kind, id: principal.uid.id },
        },
        schema: CEDAR_SCHEMA,
        validateRequest: true,
        policies: { staticPolicies: { probe: text } },
        entities: [
          {
            uid: principal.uid,
            attrs: { roles: principal.roles, kind },
            parents: principal.parents,
          },
          {
            uid: key,
            attrs: {
              name: key.id,
              labels: [],
              sensitivity,
              sensitivityLevel: SENSITIVITIES.indexOf(sensitivity),
            },
            parents: [],
          },
        ],
      });
      if (answer.type === "success" && answer.response.decision === "allow") return true;
    }
  return false;
}

/** A principal the scope admits, holding only the role the scope names (if any). */
function probePrincipal(scope: Scope): {
  uid: { type: string; id: string };
  roles: string[];
  parents: { type: string; id: string }[];
} | null {
  const fresh = { type: `${NS}::User`, id: "doctor-probe-principal" };
  if (scope.op === "All") return { uid: fresh, roles: [], parents: [] };
  if (scope.op === "is")
    return { uid: { type: scope.entity_type ?? fresh.type, id: fresh.id }, roles: [], parents: [] };
  const e = scope.entity;
  if (!e) return null;
  if (scope.op === "==") return { uid: e, roles: [], parents: [] };
  if (scope.op === "in" && e.type === `${NS}::Role`)
    return { uid: fresh, roles: [e.id], parents: [e] };
  return null;
}

function show(s: Scope): string {
  if (s.op === "All") return "any";
  if (s.op === "is") return `any ${s.entity_type ?? "entity"}`;
  if (s.entity) return `${s.op} ${s.entity.type}::"${s.entity.id}"`;
  if (s.entities) return `${s.op} [${s.entities.map((e) => e.id).join(", ")}]`;
  return s.op;
}

/** Findings for a policy set (ids to text); `where` names the source in the evidence. */
export function judgePolicies(
  policies: Readonly<Record<string, string>>,
  where: string,
  file?: string,
): Finding[] {
  const out: Finding[] = [];
  for (const id of Object.keys(policies).sort()) {
    const v = judgePolicy(policies[id]!);
    if (!v) continue;
    out.push({
      id: "service.policy-overbroad",
      severity: v.severity,
      message: `Cedar policy ${id} is over-broad: ${v.why}`,
      evidence: `${where}: ${id}: ${v.scope}`,
      fix: 'narrow the policy\'s scope (principal in TensorSeal::Role::"...", action == ..., resource in ...) or add a when condition; on a service, propose the change with `tensorseal service policy propose` (dual control)',
      ...(file ? { file } : {}),
    });
  }
  return out;
}

/** The active set of the service at `url` (an admin token in the environment). */
export async function checkServicePolicies(access: ServiceAccess): Promise<Finding[]> {
  const { origin } = access;
  const skipped = (why: string): Finding[] => [
    {
      id: "service.policies-unchecked",
      severity: "note",
      message: `the key service's Cedar policies were not checked: ${why}`,
      evidence: `${origin}: GET /v1/policies`,
      fix: "give doctor a token allowed policies:read (admin; TENSORSEAL_SERVER_TOKEN or TENSORSEAL_SERVER_TOKEN_FILE)",
    },
  ];
  const got = await getForCheck(access, "/v1/policies");
  if ("why" in got) return skipped(got.why);
  const body = got.body as { version?: number; digest?: string; policies?: Record<string, string> };
  const where = `${origin} policy set version ${body.version ?? "?"} (digest ${String(body.digest ?? "?").slice(0, 16)})`;
  return judgePolicies(body.policies ?? {}, where);
}

/** A local policy file, or every *.cedar file of a directory (ids as cedar.ts gives them). */
export async function checkPolicyFiles(path: string): Promise<Finding[]> {
  const abs = resolve(path);
  let files: string[];
  try {
    files = (await stat(abs)).isDirectory()
      ? (await readdir(abs))
          .filter((n) => n.endsWith(".cedar"))
          .sort()
          .map((n) => join(abs, n))
      : [abs];
  } catch (e) {
    return fail("E_USAGE", `--policy ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  const out: Finding[] = [];
  for (const f of files) {
    const text = await readFile(f, "utf8");
    const parts = cedar.policySetTextToParts(text);
    if (parts.type !== "success")
      fail("E_USAGE", `policy file ${f}: ${parts.errors.map((e) => e.message).join("; ")}`);
    const name = f.slice(f.lastIndexOf("/") + 1);
    const policies: Record<string, string> = {};
    parts.policies.forEach((p, i) => {
      const m = /@id\(\s*"([^"]+)"\s*\)/.exec(p);
      policies[m ? m[1]! : `${name}#${i}`] = p;
    });
    out.push(...judgePolicies(policies, f, f));
  }
  return out;
}
