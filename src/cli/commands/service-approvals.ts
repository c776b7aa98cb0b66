/**
 * `tensorseal service approvals list|show|request|approve|reject` and `tensorseal service policy
 * get|propose DIR`: dual control over HTTPS with the seal/open service client (TENSORSEAL_SERVER
 * or --server, TENSORSEAL_SERVER_TOKEN[_FILE], TENSORSEAL_SERVER_CA). Refusals are E_PROVIDER.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { fail } from "../../format/errors.js";
import type { ServiceClient } from "../../keys/service/index.js";
import { printJson } from "../options.js";
import { print, printRow, printText } from "../output.js";
import { intFlag, serviceGroup, withClient } from "./service-shared.js";

interface Approval {
  id: string;
  operation: string;
  state: string;
  approvers: string[];
  required: number;
  requester: string;
  expires: string;
}

async function call(c: ServiceClient, method: "get" | "post", path: string, body?: unknown) {
  const r = method === "get" ? await c.get(path) : await c.post(path, body ?? {});
  if (r.status !== 200 && r.status !== 202) c.refused(path, r);
  return r.body;
}

export function registerServiceApprovals(program: Command): void {
  const service = serviceGroup(program);
  const approvals = service
    .command("approvals")
    .description("dual control: M-of-N approval requests (over HTTPS; token with admin)");
  approvals
    .command("list")
    .description("approval requests, newest first")
    .option("--state <state>", "pending, executing, executed, failed, rejected or expired")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  tensorseal service approvals list --state pending")
    .action(async (o: { state?: string; json?: boolean }, cmd: Command) => {
      const q = o.state ? `?state=${encodeURIComponent(o.state)}` : "";
      const body = await withClient(cmd, (c) => call(c, "get", `/v1/approvals${q}`));
      const list = body.approvals as Approval[];
      if (o.json) return printJson(list);
      for (const a of list)
        printRow([
          a.id,
          a.operation,
          a.state,
          `${a.approvers.length}/${a.required}`,
          a.requester,
          a.expires,
        ]);
    });
  approvals
    .command("show")
    .description(
      "one request with its parameters (JSON); the requester gets an export's result once",
    )
    .argument("<id>", "approval id (apr_...)")
    .option("--json", "print JSON (the output is JSON anyway)")
    .addHelpText(
      "after",
      "\nExample:\n  tensorseal service approvals show apr_0c4f2e9b7a1d3c5e8f6a2b4d   # an id from `approvals list`",
    )
    .action(async (id: string, _o: unknown, cmd: Command) => {
      printJson(
        await withClient(cmd, (c) => call(c, "get", `/v1/approvals/${encodeURIComponent(id)}`)),
      );
    });
  approvals
    .command("request")
    .description(
      "request an operation under dual control: destroy, export or custody (policy: use `service policy propose`)",
    )
    .argument("<operation>", "destroy | export | custody")
    .option("--key <name>", "the key")
    // Not --version: that is the program's own option.
    .option("--key-version <n>", "the key version")
    .option("--days <n>", "destroy: waiting period before erasure (default 7)")
    // Not <tseal1...>: a placeholder ending in "..." makes commander collect an array.
    .option("--recipient <recipient>", "export: X25519 recipient (tseal1...) the KEK is sealed to")
    .option(
      "--custody <ref>",
      "custody: the HSM/KMS key (pkcs11:TOKEN/KEY, aws-kms:KEY_ARN) that may hold the service root",
    )
    .option("--json", "print JSON (the output is JSON anyway)")
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal service approvals request destroy --key models --key-version 1\n  tensorseal service approvals request export --key models --key-version 2 --recipient tseal1...\n  tensorseal service approvals request custody --custody pkcs11:prod-hsm/service-root",
    )
    .action(
      async (
        operation: string,
        o: {
          key?: string;
          keyVersion?: string;
          days?: string;
          recipient?: string;
          custody?: string;
        },
        cmd: Command,
      ) => {
        if (operation === "custody") {
          if (!o.custody)
            fail("E_USAGE", "custody needs --custody pkcs11:TOKEN/KEY or aws-kms:KEY_ARN");
          const body = { operation, custody: o.custody };
          printJson(await withClient(cmd, (c) => call(c, "post", "/v1/approvals", body)));
          return;
        }
        if (operation !== "destroy" && operation !== "export")
          fail("E_USAGE", `operation must be destroy, export or custody, got ${operation}`);
        if (!o.key || !o.keyVersion) fail("E_USAGE", `${operation} needs --key and --key-version`);
        if (operation === "export" && !o.recipient) fail("E_USAGE", "export needs --recipient");
        const body = {
          operation,
          key: o.key,
          version: intFlag("--key-version", o.keyVersion, 1, 999_999_999),
          ...(o.days !== undefined ? { days: intFlag("--days", o.days, 1, 365) } : {}),
          ...(o.recipient !== undefined ? { recipient: o.recipient } : {}),
        };
        printJson(await withClient(cmd, (c) => call(c, "post", "/v1/approvals", body)));
      },
    );
  for (const vote of ["approve", "reject"] as const) {
    approvals
      .command(vote)
      .description(
        vote === "approve"
          ? "approve a pending request (the M-th approval executes it)"
          : "reject a pending request (it never executes)",
      )
      .argument("<id>", "approval id (apr_...)")
      .option("--json", "print JSON (the output is JSON anyway)")
      .addHelpText(
        "after",
        `\nExample:\n  tensorseal service approvals ${vote} apr_0c4f2e9b7a1d3c5e8f6a2b4d   # an id from \`approvals list\``,
      )
      .action(async (id: string, _o: unknown, cmd: Command) => {
        const path = `/v1/approvals/${encodeURIComponent(id)}/${vote}`;
        printJson(await withClient(cmd, (c) => call(c, "post", path)));
      });
  }

  const policy = service
    .command("policy")
    .description("the service's active Cedar policy set (over HTTPS; token with admin)");
  policy
    .command("get")
    .description("print the active policy set (text; --json for version, digest and policies)")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  tensorseal service policy get\n  tensorseal service policy get --json",
    )
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const body = await withClient(cmd, (c) => call(c, "get", "/v1/policies"));
      if (o.json) return printJson(body);
      print(`// version ${body.version}, digest ${body.digest}, source ${body.source}`);
      printText(String(body.text)); // Cedar text from the service: newlines and tabs kept
    });
  policy
    .command("propose")
    .description("propose every *.cedar file of DIR as the new policy set (an approval request)")
    .argument("<dir>", "directory of *.cedar files")
    .option("--json", "print JSON (the output is JSON anyway)")
    .addHelpText(
      "after",
      "\nOther admins then approve the request: `tensorseal service approvals approve ID`.\n\nExample:\n  tensorseal policy test --policy policies/ --request samples.json && tensorseal service policy propose policies/",
    )
    .action(async (dir: string, _o: unknown, cmd: Command) => {
      let names: string[];
      try {
        names = (await readdir(dir)).filter((n) => n.endsWith(".cedar")).sort();
      } catch (e) {
        return fail("E_USAGE", `${dir}: ${(e as NodeJS.ErrnoException).code ?? e}`);
      }
      if (names.length === 0) fail("E_USAGE", `no *.cedar files in ${dir}`);
      const files: Record<string, string> = {};
      for (const n of names) files[n] = await readFile(join(dir, n), "utf8");
      printJson(
        await withClient(cmd, (c) =>
          call(c, "post", "/v1/approvals", { operation: "policy", files }),
        ),
      );
    });
}
