import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import { Authorizer, type AuthzRequest } from "../../service/index.js";

interface SampleRequest {
  name?: string;
  principal: { id: string; type?: "Workload" | "User"; kind?: string; roles?: string[] };
  action: string;
  resource:
    | { type: "Key"; name: string; labels?: string[]; sensitivity?: string }
    | { type: "Service" };
  context?: Record<string, unknown>;
  expect?: "allow" | "deny";
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
    resources: [s.resource],
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
    .addHelpText(
      "after",
      `\nRequest: {"name": "trainer unwraps", "principal": {"id": "jwt:ci", "type": "Workload", "kind": "jwt", "roles": ["unwrap"]},
         "action": "unwrap", "resource": {"type": "Key", "name": "models", "sensitivity": "high"},
         "context": {"attestation": {"issuer": "https://verifier", "tee": "sev-snp", "measurement": "...", "debug": false, "svn": 1}},
         "expect": "allow"}
Examples:\n  tensorseal policy test --policy policies/ --request samples.json\n  tensorseal policy test --request samples.json   # the built-in scope policies`,
    )
    .action(async (o: { policy?: string; request: string }) => {
      const authz = o.policy ? await Authorizer.fromDir(o.policy) : Authorizer.default();
      let doc: unknown;
      try {
        doc = JSON.parse(await readFile(o.request, "utf8"));
      } catch (e) {
        fail("E_USAGE", `--request ${o.request}: ${(e as Error).message}`);
      }
      const list = (Array.isArray(doc) ? doc : (doc as { requests?: unknown })?.requests) as
        | SampleRequest[]
        | undefined;
      if (!Array.isArray(list) || list.length === 0)
        fail("E_USAGE", `--request ${o.request}: no requests`);
      let mismatches = 0;
      list.forEach((s, i) => {
        const d = authz.authorize(toRequest(s));
        const name = s.name ?? `request ${i + 1}`;
        const policies = d.policies.length > 0 ? ` [${d.policies.join(", ")}]` : "";
        let line = `${d.decision.toUpperCase()}  ${name}: ${d.reason}${policies}`;
        if (s.expect && s.expect !== d.decision) {
          mismatches++;
          line += `  (expected ${s.expect}: MISMATCH)`;
        }
        process.stdout.write(`${line}\n`);
      });
      process.stdout.write(
        `${list.length} request(s), ${mismatches} mismatch(es) (policies: ${authz.source})\n`,
      );
      if (mismatches > 0) process.exitCode = 1;
    });
}
