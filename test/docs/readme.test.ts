/**
 * The examples of README.md and docs/CLI.md run as written, in order, in one sandbox, so the docs
 * cannot drift from what the commands do.
 *
 * What runs (the conventions a doc author follows):
 * - Every ```sh block of README.md, then every ```sh block of docs/CLI.md, each as one
 *   `bash -euo pipefail` script in the same working directory (the CLI.md blocks use the files
 *   the README's made). Not run: the README sections named in SKIPPED (the quick start runs the
 *   whole suite; Install changes the machine). A block that must not run at all is fenced
 *   ```text; any other fence language fails this test, so nothing is silently left unrun.
 * - A line whose comment says "runs until Ctrl-C" (`tensorseal serve --dev`) is a server: it is
 *   started alone, waited for until it prints that it listens, stopped with SIGINT as Ctrl-C
 *   would, and must exit 0. Shell variables do not carry across such a line. (`serve --dev`
 *   listens on its default 127.0.0.1:8443, as the README says: a service already there fails
 *   this test with serve's own "address is already in use".)
 * - Every ```ts block of README.md, after the shell blocks: types stripped (TypeScript's
 *   transpileModule) and run as an ES module from a folder inside this repository, so
 *   `import ... from "tensorseal"` resolves to this package by self-reference; its working
 *   directory is the sandbox's. (test/package/pack.test.ts type-checks the docs/LIBRARY.md
 *   examples against the packed package.)
 * - ```python blocks are run by python/tests/test_readme.py with the package's own venv.
 *
 * The sandbox: HOME is a fresh directory (so the keystore is ~/.tensorseal, as the README says);
 * TENSORSEAL_KEYSTORE_PASSPHRASE answers `init`'s prompt; inputs model.safetensors, llama/ (a
 * Hugging Face style directory), ckpt.pt; on PATH, `tensorseal` (this build's package.json
 * "bin", dist/cli/tensorseal.cjs) and a stand-in `vllm` that checks it was given the
 * plaintext model directory in /dev/shm; moto's KMS server with alias/models; a SoftHSM2 token `backup-hsm`
 * (module, PIN and AWS settings in the environment, as docs/PROVIDERS.md says). Skipped without
 * moto or SoftHSM2, never with TENSORSEAL_REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import ts from "typescript";
import { CLI } from "../cli/helpers.js";
import { buildSafetensors, floats } from "../integrations/helpers.js";
import { freePort, MOTO_REGION, motoEnv, motoServer, startMoto, stopMoto } from "../keys/moto.js";
import { SOFTHSM_MODULE, softhsmMissing } from "../keys/softhsm.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const DOCS = ["README.md", "docs/CLI.md"] as const;
/** README sections whose ```sh blocks are not run, and why. */
const SKIPPED: Record<string, string> = {
  "Quick start": "`npm test` runs the whole suite, this test included",
  Install: "it installs into the machine's global npm prefix and Python",
};
/** Fence languages each doc may use (anything else fails: it would silently go unrun). */
const FENCES: Record<(typeof DOCS)[number], readonly string[]> = {
  "README.md": ["sh", "ts", "python", "text"],
  "docs/CLI.md": ["sh", "text"],
};
const LONG_RUNNING = /#.*runs until Ctrl-C/;

interface Block {
  doc: string;
  lang: string;
  /** The nearest heading above the block. */
  heading: string;
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
}

function blocks(doc: string): Block[] {
  const out: Block[] = [];
  let heading = "";
  let open: Omit<Block, "code"> | null = null;
  let body: string[] = [];
  readFileSync(join(REPO, doc), "utf8")
    .split("\n")
    .forEach((text, i) => {
      if (open) {
        if (text.startsWith("```")) {
          out.push({ ...open, code: `${body.join("\n")}\n` });
          open = null;
        } else body.push(text);
      } else if (text.startsWith("```")) {
        open = { doc, lang: text.slice(3).trim(), heading, line: i + 1 };
        body = [];
      } else if (text.startsWith("#")) heading = text.replace(/^#+\s*/, "");
    });
  assert.equal(open, null, `${doc}: a code fence is never closed`);
  return out;
}

const ALL = DOCS.flatMap((d) => blocks(d));
const SHELL = ALL.filter(
  (b) => b.lang === "sh" && !(b.doc === "README.md" && b.heading in SKIPPED),
);
const TS = ALL.filter((b) => b.doc === "README.md" && b.lang === "ts");

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  out: string;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((res) => {
    const c = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });
    let out = "";
    c.stdout.on("data", (d: Buffer) => (out += d.toString()));
    c.stderr.on("data", (d: Buffer) => (out += d.toString()));
    c.on("error", (e) => res({ status: -1, signal: null, out: `${out}${cmd}: ${e.message}` }));
    c.on("close", (status, signal) => res({ status, signal, out }));
  });
}

/** Starts a "runs until Ctrl-C" line, waits until it listens, interrupts it as Ctrl-C does. */
async function runServer(line: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  const c: ChildProcess = spawn("bash", ["-c", line], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: SIGINT reaches it as Ctrl-C on a terminal would
  });
  let out = "";
  const exited = new Promise<Run>((res) =>
    c.on("close", (status, signal) => res({ status, signal, out })),
  );
  const listening = new Promise<boolean>((res) => {
    const seen = (d: Buffer) => {
      out += d.toString();
      if (/listening on/.test(out)) res(true);
    };
    c.stdout!.on("data", seen);
    c.stderr!.on("data", seen);
    c.on("close", () => res(false));
    setTimeout(() => res(false), 60_000).unref();
  });
  const up = await listening;
  if (c.exitCode === null && c.signalCode === null) process.kill(-c.pid!, "SIGINT");
  // Only so that a server deaf to Ctrl-C cannot hang the suite (it then fails: not exit 0).
  const kill = setTimeout(() => process.kill(-c.pid!, "SIGKILL"), 30_000);
  const r = await exited;
  clearTimeout(kill);
  assert.ok(up, `\`${line}\` did not say it listens within 60 s:\n${r.out}`);
  return r;
}

const motoPath = motoServer();
const missing = [
  motoPath ? null : "moto_server not found (run scripts/setup-test-deps.sh)",
  softhsmMissing(),
].filter((w): w is string => w !== null);
const why = missing.length > 0 ? missing.join("; ") : null;
if (why && process.env.TENSORSEAL_REQUIRE_ALL === "1") {
  test("moto and SoftHSM2 are available for the README examples (TENSORSEAL_REQUIRE_ALL=1)", () =>
    assert.fail(why));
}

test("the docs use only fences this test knows how to treat", () => {
  for (const b of ALL) {
    const allowed = FENCES[b.doc as (typeof DOCS)[number]];
    assert.ok(
      allowed.includes(b.lang),
      `${b.doc}:${b.line}: fence \`\`\`${b.lang}: use one of ${allowed.join(", ")}`,
    );
  }
  for (const heading of Object.keys(SKIPPED)) {
    const skipped = ALL.filter((b) => b.doc === "README.md" && b.heading === heading);
    assert.ok(skipped.length > 0, `README.md has no sh block under "${heading}" any more`);
  }
  assert.ok(SHELL.filter((b) => b.doc === "README.md").length >= 3, "README.md: sh blocks");
  assert.ok(
    SHELL.some((b) => b.doc === "docs/CLI.md"),
    "docs/CLI.md: sh blocks",
  );
  assert.ok(TS.length >= 1, "README.md: a ts block");
  // Placeholders cannot run: executed code derives real values (comments may name them).
  for (const b of [...SHELL, ...TS]) {
    const code = b.code.replace(/(^|\s)(#|\/\/).*$/gm, "");
    assert.doesNotMatch(code, /tseal1\.\.\.|\.\.\.|\bnpx tensorseal\b/, `${b.doc}:${b.line}`);
  }
});

describe("README.md and docs/CLI.md examples, as written", { skip: why ?? false }, () => {
  let tmp: string;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let moto: ChildProcess | null = null;
  let kms: KMSClient | null = null;
  const model = buildSafetensors(
    [{ name: "lm_head.weight", dtype: "F32", shape: [2, 2], data: floats([1, 2, 3, 4]) }],
    { format: "pt" },
  );
  const ckpt = randomBytes(300_000);

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "tensorseal-readme-"));
    work = join(tmp, "work");
    const bin = join(tmp, "bin");
    const home = join(tmp, "home");
    for (const d of [work, bin, home, join(work, "llama"), join(tmp, "tokens")]) mkdirSync(d);

    writeFileSync(join(work, "model.safetensors"), model);
    writeFileSync(join(work, "ckpt.pt"), ckpt);
    writeFileSync(join(work, "llama", "config.json"), '{"model_type": "llama"}\n');
    writeFileSync(join(work, "llama", "tokenizer.json"), '{"version": "1.0"}\n');
    writeFileSync(join(work, "llama", "model.safetensors"), model);

    const script = (name: string, text: string) => {
      writeFileSync(join(bin, name), text);
      chmodSync(join(bin, name), 0o755);
    };
    script("tensorseal", `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`);
    // vLLM's stand-in: the model must arrive as the original plaintext files, in RAM.
    script(
      "vllm",
      `#!/bin/sh
[ "$1" = serve ] || { echo "vllm: expected 'serve DIR', got: $*" >&2; exit 64; }
case "$2" in /dev/shm/*) ;; *) echo "vllm: $2 is not in /dev/shm" >&2; exit 65 ;; esac
diff -r "$2" '${join(work, "llama")}' >&2 || { echo "vllm: $2 is not the plaintext model" >&2; exit 66; }
printf '%s\\n' "$2" > '${join(tmp, "vllm-ran")}'
`,
    );

    writeFileSync(
      join(tmp, "softhsm2.conf"),
      `directories.tokendir = ${join(tmp, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\n`,
    );
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    env = {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: home,
      LANG: "C.UTF-8",
      TENSORSEAL_KEYSTORE_PASSPHRASE: randomBytes(12).toString("hex"),
      TENSORSEAL_SCRYPT_WORK_FACTOR: "10",
      TENSORSEAL_TEST_KNOBS: "1",
      SOFTHSM2_CONF: join(tmp, "softhsm2.conf"),
      TENSORSEAL_PKCS11_MODULE: SOFTHSM_MODULE,
      TENSORSEAL_PKCS11_PIN: "2468-readme",
      ...motoEnv({ TENSORSEAL_KMS_ENDPOINT: endpoint }),
    };
    const token = await run(
      "softhsm2-util",
      [
        "--init-token",
        "--free",
        "--label",
        "backup-hsm",
        "--pin",
        "2468-readme",
        "--so-pin",
        "1357",
      ],
      tmp,
      env,
    );
    assert.equal(token.status, 0, token.out);
    moto = await startMoto(motoPath!, port);
    kms = new KMSClient({
      region: MOTO_REGION,
      endpoint,
      credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
    });
    const key = await kms.send(new CreateKeyCommand({ Description: "README alias/models" }));
    await kms.send(
      new CreateAliasCommand({ AliasName: "alias/models", TargetKeyId: key.KeyMetadata!.KeyId! }),
    );
  });

  after(async () => {
    kms?.destroy();
    await stopMoto(moto);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  for (const b of SHELL) {
    test(`${b.doc}:${b.line} (${b.heading}) runs`, async () => {
      // Consecutive ordinary lines run as one script; a server line alone (see above).
      const segments: { server: boolean; code: string }[] = [];
      for (const line of b.code.split("\n")) {
        const server = LONG_RUNNING.test(line);
        const last = segments.at(-1);
        if (!server && last && !last.server) last.code += `${line}\n`;
        else segments.push({ server, code: `${line}\n` });
      }
      for (const s of segments) {
        const r = s.server
          ? await runServer(s.code.trim(), work, env)
          : await run("bash", ["-euo", "pipefail", "-c", s.code], work, env);
        assert.equal(r.status, 0, `${b.doc}:${b.line} failed:\n${s.code}--- output ---\n${r.out}`);
      }
    });
  }

  for (const b of TS) {
    test(`${b.doc}:${b.line} (ts) runs`, async () => {
      const js = ts.transpileModule(b.code, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      // Inside the repository: `import ... from "tensorseal"` is this package (self-reference).
      const dir = mkdtempSync(join(REPO, "dist", ".docs-example-"));
      try {
        writeFileSync(join(dir, "example.mjs"), js);
        const r = await run(process.execPath, [join(dir, "example.mjs")], work, env);
        assert.equal(r.status, 0, `${b.doc}:${b.line} failed:\n${b.code}--- output ---\n${r.out}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test("the examples did what they say", () => {
    const same = (a: string, b: Buffer) => assert.ok(readFileSync(join(work, a)).equals(b), a);
    same("restored.safetensors", model); // open
    same("restored.pt", ckpt); // open through KMS
    same("partner.safetensors", model); // the library, with the partner's identity
    // exec: vllm saw the plaintext in RAM, and it was wiped when vllm exited.
    const ran = readFileSync(join(tmp, "vllm-ran"), "utf8").trim();
    assert.ok(ran.startsWith("/dev/shm/"), ran);
    assert.equal(existsSync(ran), false, `${ran} was not wiped`);
  });
});
