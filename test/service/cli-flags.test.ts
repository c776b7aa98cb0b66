/**
 * The service commands' flags as a class: no option collects an array by accident (a
 * placeholder ending in "..." makes commander variadic), every flag that takes a number refuses
 * a non-number with exit 2 and one line naming it, and `serve` explains a --listen it cannot use.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Command } from "commander";
import { registerAudit } from "../../src/cli/commands/audit.js";
import { registerServe } from "../../src/cli/commands/serve.js";
import { registerServiceApprovals } from "../../src/cli/commands/service-approvals.js";
import { registerServiceArtifacts } from "../../src/cli/commands/service-artifacts.js";
import { registerServiceCert } from "../../src/cli/commands/service-cert.js";
import { registerServiceKeys } from "../../src/cli/commands/service-keys.js";
import { registerServicePrincipals } from "../../src/cli/commands/service-principals.js";
import { registerServiceRoot } from "../../src/cli/commands/service-root.js";
import { registerServiceToken } from "../../src/cli/commands/service-token.js";
import { CLI, type Sandbox, sandbox } from "../cli/helpers.js";

/** Placeholders of flags that take a number; any other placeholder must be listed as text. */
const NUMERIC = new Set(["n", "m", "x", "seconds", "minutes", "hours", "days"]);
const TEXT = new Set([
  "keyfile", // seal-dir --sign: an ECDSA private key PEM (provenance)
  "pubkey", // --require-signer: an ECDSA public key PEM (provenance)
  "host:port",
  "url",
  "file",
  "files",
  "dir",
  "level",
  "aud",
  "name",
  "url|file",
  "domain",
  "OP=M,...",
  "base64",
  "state",
  "recipient",
  "ref",
  "list",
  "text",
  "id",
  "k=v",
  "key",
  "label",
  "sensitivity",
  "KEY=VALUE",
  "s",
  "outcome",
  "time",
  "duration",
  "tier",
]);

function program(): Command {
  const p = new Command("tensorseal").exitOverride();
  for (const r of [
    registerServe,
    registerServiceToken,
    registerServiceKeys,
    registerServiceArtifacts,
    registerServiceCert,
    registerServicePrincipals,
    registerServiceApprovals,
    registerServiceRoot,
    registerAudit,
  ])
    r(p);
  return p;
}

interface Flag {
  readonly path: string;
  readonly long: string;
  readonly placeholder: string;
  readonly variadic: boolean;
}

/** Every option taking a value, with the command path below the program ("service keys set"). */
function flags(cmd: Command, path: string[] = []): Flag[] {
  const own = cmd.options
    .filter((o) => o.required || o.optional)
    .map((o) => ({
      path: path.join(" "),
      long: o.long ?? o.flags,
      placeholder: /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1] ?? "",
      variadic: o.variadic,
    }));
  return [...own, ...cmd.commands.flatMap((c) => flags(c, [...path, c.name()]))];
}

function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)];
}

/** The CLI in the sandbox; a failure to run it at all is reported as such (not as a null). */
function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    env: { ...sb.env, ...env },
    cwd: sb.dir,
    timeout: 60_000,
  });
  if (r.error) throw new Error(`running tensorseal ${args.join(" ")}: ${r.error.message}`);
  return { status: r.status, stderr: r.stderr };
}

let sb: Sandbox;
before(() => {
  sb = sandbox();
});
after(() => sb.cleanup());

/** Arguments meant to be lists: one share file per custodian, as `root recover SHARE...`. */
const LIST_ARGUMENTS = new Set(["shares verify <shares>"]);

test("no serve, service or audit option or argument collects an array", () => {
  const p = program();
  const variadic = flags(p)
    .filter((f) => f.variadic)
    .map((f) => `${f.path} ${f.long}`);
  const args = allCommands(p).flatMap((c) =>
    c.registeredArguments
      .filter((a) => a.variadic)
      .map((a) => `${c.parent?.name()} ${c.name()} <${a.name()}>`)
      .filter((a) => !LIST_ARGUMENTS.has(a)),
  );
  assert.deepEqual([...variadic, ...args], []);
});

test("every flag placeholder is classified as a number or as text", () => {
  const unknown = flags(program()).filter(
    (f) => !NUMERIC.has(f.placeholder) && !TEXT.has(f.placeholder),
  );
  assert.deepEqual(
    unknown.map((f) => `${f.path} ${f.long} <${f.placeholder}>`),
    [],
    "add the placeholder to NUMERIC (and a refusal case below) or to TEXT",
  );
});

test("every numeric flag of serve refuses a non-number before anything listens: exit 2, one line", () => {
  const numeric = program()
    .commands.find((c) => c.name() === "serve")!
    .options.filter((o) => NUMERIC.has(/<([^>]+)>/.exec(o.flags)?.[1] ?? ""))
    .map((o) => o.long!);
  assert.ok(numeric.includes("--batch-max") && numeric.includes("--request-timeout"));
  for (const flag of numeric) {
    for (const bad of ["abc", "1e3"]) {
      const r = spawnSync(
        process.execPath,
        [CLI, "serve", "--dev", "--listen", "127.0.0.1:0", flag, bad],
        {
          encoding: "utf8",
          env: { PATH: process.env.PATH, TENSORSEAL_HOME: join(sb.dir, "h") },
          timeout: 20_000,
        },
      );
      assert.equal(r.status, 2, `${flag} ${JSON.stringify(bad)}: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0]!.includes(flag), r.stderr);
      assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
    }
  }
});

test("every numeric flag of the service commands refuses a non-number before any request", () => {
  // No server answers here: a request would fail with another exit code than 2.
  const env = { TENSORSEAL_SERVER: "https://127.0.0.1:1", TENSORSEAL_SERVER_TOKEN: "tsk_x" };
  const cases: [string, string[]][] = [
    ["--days", ["service", "cert", "issue", "--spiffe-id", "spiffe://td/a", "-o", "d", "--days"]],
    [
      "--shares",
      [
        "service",
        "root",
        "split",
        "--root-key-file",
        "r",
        "--threshold",
        "2",
        "-o",
        "d",
        "--shares",
      ],
    ],
    [
      "--threshold",
      [
        "service",
        "root",
        "split",
        "--root-key-file",
        "r",
        "--shares",
        "3",
        "-o",
        "d",
        "--threshold",
      ],
    ],
    [
      "--key-version",
      ["service", "approvals", "request", "destroy", "--key", "k", "--key-version"],
    ],
    [
      "--days",
      ["service", "approvals", "request", "destroy", "--key", "k", "--key-version", "1", "--days"],
    ],
    ["--days", ["service", "keys", "schedule-destroy", "k", "1", "--days"]],
    ["--min-decryption-version", ["service", "keys", "set", "k", "--min-decryption-version"]],
    ["--min-encryption-version", ["service", "keys", "set", "k", "--min-encryption-version"]],
    ["--checkpoint-every", ["audit", "verify", "--checkpoint-every"]],
    ["--max-unsigned", ["audit", "verify", "--max-unsigned"]],
    ["--after", ["audit", "query", "--after"]],
    ["--limit", ["audit", "query", "--limit"]],
  ];
  const covered = new Set(cases.map(([flag, argv]) => `${argv.slice(0, -1).join(" ")} |${flag}`));
  // Every numeric flag outside serve has a case (the class, not the instances found so far).
  const expected = flags(program()).filter((f) => NUMERIC.has(f.placeholder) && f.path !== "serve");
  for (const f of expected)
    assert.ok(
      [...covered].some((c) => c.startsWith(`${f.path} `) && c.endsWith(`|${f.long}`)),
      `no refusal case for ${f.path} ${f.long}`,
    );
  for (const [flag, argv] of cases) {
    for (const bad of ["abc", "2.5"]) {
      const r = cli([...argv, bad], env);
      assert.equal(r.status, 2, `${argv.join(" ")} ${bad}: ${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
      assert.ok(r.stderr.includes(flag), r.stderr);
    }
  }
});

test("serve names the address and --listen when it cannot listen there (exit 2)", async () => {
  const taken: Server = createServer();
  await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
  const port = (taken.address() as { port: number }).port;
  try {
    const r = cli(["serve", "--dev", "--listen", `127.0.0.1:${port}`, "--log-level", "warn"]);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(
      r.stderr.trim(),
      `tensorseal: error: cannot listen on 127.0.0.1:${port} (--listen): the address is already in use (another process listens there)`,
    );
  } finally {
    await new Promise((r) => taken.close(r));
  }
});
