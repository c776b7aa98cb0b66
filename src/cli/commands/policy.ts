import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import { isSensitivity, SENSITIVITIES } from "../../service/authz/attributes.js";
import type { AuthzRequest, AuthzResource } from "../../service/index.js";
import { printJson } from "../options.js";
import { print } from "../output.js";

/** Labels as Cedar sees them ("k=v" strings) or as the API takes them (a map). */
type SampleLabels = string[] | Record<string, string>;

interface SampleKey {
  name: string;
  labels?: SampleLabels;
  sensitivity?: string;
}

interface SampleArtifact {
  id: string;
  version?: number;
  digest?: string;
  labels?: SampleLabels;
  sensitivity?: string;
}

interface SampleRequest {
  name?: string;
  principal: { id: string; type?: "Workload" | "User"; kind?: string; roles?: string[] };
  action: string;
  resource:
    | ({ type: "Key"; artifact?: SampleArtifact } & SampleKey)
    | ({ type: "Artifact"; key: SampleKey | string } & SampleArtifact)
    | { type: "Service" };
  context?: Record<string, unknown>;
  expect?: "allow" | "deny";
}

function labels(l: SampleLabels | undefined): string[] {
  if (l === undefined) return [];
  return Array.isArray(l) ? [...l].sort() : Object.entries(l).map(([k, v]) => `${k}=${v}`);
}

function sensitivity(s: string | undefined, fallback: string): string {
  if (s === undefined) return fallback;
  if (!isSensitivity(s)) fail("E_USAGE", `sensitivity "${s}": one of ${SENSITIVITIES.join(", ")}`);
  return s;
}

/** An artifact's sensitivity: its own, its `sensitivity=` label, else its key's. */
function artifactSensitivity(a: SampleArtifact, key: string): string {
  const label = labels(a.labels)
    .find((l) => l.startsWith("sensitivity="))
    ?.slice(12);
  return sensitivity(a.sensitivity ?? (isSensitivity(label) ? label : undefined), key);
}

function toResource(r: SampleRequest["resource"]): AuthzResource {
  if (r.type === "Service") return { type: "Service" };
  if (r.type === "Key") {
    const key = {
      name: r.name,
      labels: labels(r.labels),
      sensitivity: sensitivity(r.sensitivity, "unspecified"),
    };
    if (!r.artifact) return { type: "Key", ...key };
    const a = r.artifact;
    return {
      type: "Key",
      ...key,
      artifact: {
        id: a.id,
        key: r.name,
        version: a.version ?? 1,
        labels: labels(a.labels),
        sensitivity: artifactSensitivity(a, key.sensitivity),
      },
    };
  }
  if (r.type === "Artifact") {
    const k = typeof r.key === "string" ? { name: r.key } : r.key;
    const key = {
      name: k.name,
      labels: labels(k.labels),
      sensitivity: sensitivity(k.sensitivity, "unspecified"),
    };
    return {
      type: "Artifact",
      id: r.id,
      key,
      version: r.version ?? 1,
      digest: r.digest ?? "",
      labels: labels(r.labels),
      sensitivity: artifactSensitivity(r, key.sensitivity),
    };
  }
  return fail("E_USAGE", `resource.type must be Key, Artifact or Service`);
}

function toRequest(s: SampleRequest): AuthzRequest {
  if (!s?.principal?.id || !s.action || !s.resource?.type)
    fail("E_USAGE", "each request needs principal.id, action and resource.type");
  const kind = s.principal.kind ?? "token";
  return {
    principal: {
      id: s.principal.id,
      type: s.principal.type ?? "Workload",
      kind,
      roles: s.principal.roles ?? [],
    },
    action: s.action,
    resources: [toResource(s.resource)],
    context: {
      source: "127.0.0.1",
      time: Math.floor(Date.now() / 1000),
      principalKind: kind,
      workload: { kind, id: s.principal.id },
      ...(s.context ?? {}),
    },
  };
}

export function registerPolicy(program: Command): void {
  const policy = program.command("policy").description("Cedar policies of the key service");
  policy
    .command("test")
    .description(
      "evaluate sample requests against a policy set (validated against the service schema); exit 1 if an expected decision differs",
    )
    .option("--policy <dir>", "directory of *.cedar files (default: the built-in policy set)")
    .requiredOption("--request <file>", 'JSON: {"requests": [...]} or an array of requests')
    .option(
      "--json",
      "print JSON: {requests, mismatches, policies, results: [{name, decision, reason, policies, expect?, mismatch}]}",
    )
    .addHelpText(
      "after",
      `\nRequest: {"name": "trainer unwraps", "principal": {"id": "jwt:ci", "type": "Workload", "kind": "jwt", "roles": ["unwrap"]},
         "action": "unwrap", "resource": {"type": "Key", "name": "models", "labels": {"team": "ml"}, "sensitivity": "confidential",
                                          "artifact": {"id": "llm-7b", "labels": {"stage": "prod"}}},
         "context": {"attestation": {"issuer": "https://verifier", "tee": "sev-snp", "measurement": "...", "debug": false, "svn": 1}},
         "expect": "allow"}
Resources: {"type": "Key", name, labels, sensitivity, artifact?} (artifact = the registered artifact of the stanza, context.artifact),
           {"type": "Artifact", id, key: {name, labels, sensitivity} | "name", version, digest, labels, sensitivity?}, {"type": "Service"};
           labels as {"k": "v"} or ["k=v"]; sensitivity one of ${SENSITIVITIES.join(" < ")}
Examples:\n  tensorseal policy test --policy policies/ --request samples.json\n  tensorseal policy test --request samples.json   # the built-in scope policies`,
    )
    .action(async (o: { policy?: string; request: string; json?: boolean }) => {
      // Cedar (a wasm module) loads only when a policy is evaluated.
      const { Authorizer } = await import("../../service/authz/cedar.js");
      const authz = o.policy ? await Authorizer.fromDir(o.policy) : Authorizer.default();
      let text: string;
      try {
        text = await readFile(o.request, "utf8");
      } catch (e) {
        return fail(
          "E_IO",
          `cannot read --request ${o.request}: ${(e as NodeJS.ErrnoException).code}`,
        );
      }
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (e) {
        fail("E_USAGE", `--request ${o.request} is not JSON: ${(e as Error).message}`);
      }
      const list = (Array.isArray(doc) ? doc : (doc as { requests?: unknown })?.requests) as
        | SampleRequest[]
        | undefined;
      if (!Array.isArray(list) || list.length === 0)
        fail("E_USAGE", `--request ${o.request}: no requests`);
      const results = list.map((s, i) => {
        const d = authz.authorize(toRequest(s));
        const name = s.name ?? `request ${i + 1}`;
        const mismatch = s.expect !== undefined && s.expect !== d.decision;
        return {
          name,
          decision: d.decision,
          reason: d.reason,
          policies: d.policies,
          ...(s.expect && { expect: s.expect }),
          mismatch,
        };
      });
      const mismatches = results.filter((r) => r.mismatch).length;
      if (o.json) printJson({ requests: list.length, mismatches, policies: authz.source, results });
      else {
        for (const r of results) {
          const policies = r.policies.length > 0 ? ` [${r.policies.join(", ")}]` : "";
          const verdict = r.mismatch ? `  (expected ${r.expect}: MISMATCH)` : "";
          print(`${r.decision.toUpperCase()}  ${r.name}: ${r.reason}${policies}${verdict}`);
        }
        print(`${list.length} request(s), ${mismatches} mismatch(es) (policies: ${authz.source})`);
      }
      if (mismatches > 0) process.exitCode = 1;
    });
}
