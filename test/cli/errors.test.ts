/**
 * Errors at the CLI's edges: a tampered or truncated file is named by every command that reads
 * it; a passphrase prompt without a terminal is one line with a documented exit code; ordinary
 * mistakes print one line, never a stack trace or a raw Node error; every error code maps to an
 * exit code that docs/CLI.md documents.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { EXIT, exitCodeFor } from "../../src/cli/exit-codes.js";
import type { ErrorCode } from "../../src/format/errors.js";
import { CLI, type Sandbox, sandbox } from "./helpers.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** One line on stderr, no stack frame, no raw Node error text. */
function oneLine(stderr: string, what: string): void {
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `${what}: ${stderr}`);
  assert.match(lines[0]!, /^tensorseal: error: /, what);
  assert.doesNotMatch(stderr, /\n\s+at |internal error|ENXIO|node:internal|Error: /, what);
}

describe("errors name the file, in every command that reads it", () => {
  let s: Sandbox;
  let good: string;
  let flipped: string;
  let truncated: string;
  let header: string;
  let ctx: string;
  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    const plain = join(s.dir, "w.bin");
    writeFileSync(plain, randomBytes(200_000));
    good = join(s.dir, "good.tseal");
    let r = s.run(["seal", plain, "-o", good, "-c", "tenant=acme", "--chunk-size", "16KiB"]);
    assert.equal(r.status, 0, r.stderr);
    const bytes = readFileSync(good);
    const cut = join(s.dir, "cut.tseal");
    truncated = cut;
    writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
    flipped = join(s.dir, "flipped.tseal");
    const f = Buffer.from(bytes);
    f[f.length - 40_000]! ^= 1;
    writeFileSync(flipped, f);
    // A header byte (inside the descriptor's context value): the header MAC catches it.
    header = join(s.dir, "header.tseal");
    const h = Buffer.from(bytes);
    const at = h.indexOf("acme");
    h[at]! ^= 0x20;
    writeFileSync(header, h);
    ctx = join(s.dir, "ctx.tseal");
    r = s.run(["seal", plain, "-o", ctx, "-c", "tenant=other"]);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => s.cleanup());

  test("open, open -o -, verify, inspect --verify, rewrap", () => {
    for (const [file, why] of [
      [flipped, /chunk \d+ failed authentication/],
      [truncated, /payload holds|truncated|ends|failed authentication/],
      [header, /header/i],
    ] as const) {
      for (const args of [
        ["open", file, "-o", join(s.dir, "out")],
        ["open", file, "-o", "-"],
        ["verify", file],
        ["inspect", file, "--verify"],
        ...(file === header ? [["rewrap", file, "--add-recipient", "kek:default"]] : []),
      ]) {
        const r = s.run(args);
        assert.equal(r.status, EXIT.authentication, `${args.join(" ")}: ${r.stderr}`);
        assert.ok(r.stderr.includes(`error: ${file}: `), `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, why);
        oneLine(r.stderr, args.join(" "));
      }
    }
    // In a list, each line names its file once.
    const v = s.run(["verify", good, flipped]);
    assert.equal(v.status, EXIT.authentication);
    const lines = v.stdout.toString().trimEnd().split("\n");
    assert.deepEqual(
      lines.map((l) => l.split(flipped).length - 1),
      [0, 1],
    );
    for (const args of [
      ["rewrap", good, header, "--add-recipient", "kek:default"],
      ["rewrap", "--to-latest", good, header],
    ]) {
      if (args[1] === "--to-latest") assert.equal(s.run(["keys", "rotate", "default"]).status, 0);
      const r = s.run(args);
      assert.equal(r.status, 1, r.stderr);
      const failed = r.stderr.split("\n").filter((l) => l.includes("FAILED"));
      assert.equal(failed.length, 1, r.stderr);
      assert.equal(failed[0]!.split(header).length - 1, 1, r.stderr);
    }
  });

  test("open-dir and exec name the tampered file of a model", () => {
    const model = join(s.dir, "model");
    mkdirSync(model);
    writeFileSync(join(model, "a.bin"), randomBytes(100_000));
    writeFileSync(join(model, "config.json"), "{}");
    const sealedDir = join(s.dir, "model.sealed");
    assert.equal(s.run(["seal-dir", model, "-o", sealedDir]).status, 0);
    const victim = join(sealedDir, "a.bin.tseal");
    const b = readFileSync(victim);
    b[b.length - 50]! ^= 1;
    writeFileSync(victim, b);
    for (const args of [
      ["open-dir", sealedDir, "-o", join(s.dir, "model.out")],
      ["exec", "-m", sealedDir, "--", "true"],
      ["exec", "-m", flipped, "--", "true"],
    ]) {
      const r = s.run(args);
      assert.equal(r.status, EXIT.authentication, `${args.join(" ")}: ${r.stderr}`);
      const named = args.includes(flipped) ? flipped : victim;
      assert.ok(r.stderr.includes(`${named}: chunk`), `${args.join(" ")}: ${r.stderr}`);
      oneLine(r.stderr, args.join(" "));
    }
  });

  test("an encryption context mismatch is exit 5 (authentication), not usage", () => {
    for (const expect of ["tenant=acme", "region=eu"]) {
      const r = s.run(["open", ctx, "-o", join(s.dir, "c.out"), "--expect-context", expect]);
      assert.equal(r.status, EXIT.authentication, r.stderr);
      assert.equal(exitCodeFor("E_CONTEXT"), EXIT.authentication);
      assert.ok(r.stderr.includes(`${ctx}: encryption context`), r.stderr);
      assert.doesNotMatch(r.stderr, /other/); // the file's value is never echoed
      oneLine(r.stderr, expect);
    }
    const ok = s.run(["open", ctx, "-o", join(s.dir, "c.out"), "--expect-context", "tenant=other"]);
    assert.equal(ok.status, 0, ok.stderr);
  });

  test("ordinary mistakes: one line, a documented code, no stack trace", () => {
    writeFileSync(join(s.dir, "exists.txt"), "x");
    writeFileSync(join(s.dir, "bad.json"), "{");
    writeFileSync(join(s.dir, "notadb.txt"), "not a database\n".repeat(300));
    const cases: [string[], number][] = [
      [["open", join(s.dir, "missing.tseal"), "-o", join(s.dir, "m.out")], EXIT.io],
      [["seal", join(s.dir, "missing"), "-o", join(s.dir, "m.tseal")], EXIT.io],
      [["inspect", join(s.dir, "missing.tseal")], EXIT.io],
      [["seal", good, "-o", join(s.dir, "no", "such", "dir.tseal")], EXIT.io],
      [["open", good, "-o", join(s.dir, "o1"), "-i", join(s.dir, "missing.id")], EXIT.io],
      [["open", good, "-o", join(s.dir, "o2"), "--passphrase-file", join(s.dir, "nope")], EXIT.io],
      [["open", s.dir, "-o", join(s.dir, "o3")], EXIT.usage],
      [["inspect", s.dir], EXIT.usage],
      [["verify", s.dir], EXIT.usage],
      [["open", good, "-o", "-", "--json"], EXIT.usage],
      [["keygen", "--json"], EXIT.usage],
      [["audit", "export", "-o", join(s.dir, "exists.txt")], EXIT.usage],
      [["audit", "verify", "--db", `sqlite:${join(s.dir, "no", "dir", "x.db")}`], EXIT.io],
      [["service", "token", "list", "--db", `sqlite:${join(s.dir, "notadb.txt")}`], EXIT.io],
      [["policy", "test", "--request", join(s.dir, "missing.json")], EXIT.io],
      [["policy", "test", "--request", join(s.dir, "bad.json")], EXIT.usage],
      [["keys", "show", "nope"], EXIT.keystore],
      [["seal-dir", join(s.dir, "missing"), "-o", join(s.dir, "sd")], EXIT.io],
    ];
    for (const [args, code] of cases) {
      const r = s.run(args);
      assert.equal(r.status, code, `${args.join(" ")}: ${r.stderr}`);
      oneLine(r.stderr, args.join(" "));
    }
  });

  test("a closed stdout (| head) ends quietly with 141", () => {
    // More plaintext than the stdout pipe holds (open widens it to 1 MiB): a smaller output fits
    // in the pipe whole and ends with 0 before the reader goes, as `cat` does.
    const big = join(s.dir, "big.bin");
    writeFileSync(big, randomBytes(8 << 20));
    const sealed = join(s.dir, "big.tseal");
    assert.equal(s.run(["seal", big, "-o", sealed]).status, 0);
    const p = spawnSync(
      "bash",
      [
        "-c",
        `"$0" "$1" open "$2" -o - | head -c 1 >/dev/null; echo "\${PIPESTATUS[0]}"`,
        process.execPath,
        CLI,
        sealed,
      ],
      { env: s.env, encoding: "utf8", cwd: s.dir },
    );
    assert.equal(p.stdout.trim(), String(EXIT.brokenPipe), p.stderr);
    assert.equal(p.stderr, "");
  });
});

describe("a passphrase prompt without a terminal", () => {
  let s: Sandbox;
  before(() => {
    s = sandbox();
    writeFileSync(join(s.dir, "w.bin"), "weights");
  });
  after(() => s.cleanup());

  const hasSetsid = spawnSync("setsid", ["--version"]).status === 0;

  test("no controlling terminal, stdin not a terminal: exit 2, one line naming the variables", {
    skip: !hasSetsid && "setsid (util-linux) is not installed",
  }, () => {
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [
        ["seal", "w.bin", "-o", "p.tseal", "-p"],
        { TENSORSEAL_PASSPHRASE: "" },
        /file passphrase is needed but there is no terminal.*TENSORSEAL_PASSPHRASE or --passphrase-file/,
      ],
      [
        ["keys", "list"],
        { TENSORSEAL_ROOT_KEY_FILE: "", TENSORSEAL_KEYSTORE_PASSPHRASE: "" },
        /keystore passphrase is needed but there is no terminal.*TENSORSEAL_KEYSTORE_PASSPHRASE or TENSORSEAL_ROOT_KEY_FILE/,
      ],
      [
        ["init"],
        { TENSORSEAL_ROOT_KEY_FILE: "", TENSORSEAL_KEYSTORE_PASSPHRASE: "" },
        /keystore passphrase is needed/,
      ],
    ];
    for (const [args, env, why] of cases) {
      // setsid: a new session, so no controlling terminal (/dev/tty is ENXIO); stdin is /dev/null.
      const r = spawnSync("setsid", ["-w", process.execPath, CLI, ...args], {
        env: { ...s.env, ...env },
        cwd: s.dir,
        stdio: ["ignore", "pipe", "pipe"],
        encoding: "utf8",
      });
      assert.equal(r.status, EXIT.usage, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, why);
      oneLine(r.stderr, args.join(" "));
    }
  });
});

describe("a passphrase prompt on a terminal", () => {
  const hasScript = spawnSync("script", ["--version"]).status === 0;
  let s: Sandbox;
  before(() => {
    s = sandbox();
    writeFileSync(join(s.dir, "w.bin"), "weights");
    writeFileSync(join(s.dir, "pw"), "secret words\n");
    const r = s.run(["seal", "w.bin", "-o", "p.tseal", "--passphrase-file", "pw"]);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => s.cleanup());

  /** The CLI on a pseudo-terminal (util-linux script) that receives `typed`. */
  function typing(args: string[], typed: string) {
    const cmd = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(" ");
    return spawnSync("script", ["-qfec", cmd, "/dev/null"], {
      env: { ...s.env, SHELL: "/bin/sh" },
      cwd: s.dir,
      input: typed,
      encoding: "utf8",
      timeout: 60_000, // a prompt that never got its line must not hang the suite
    });
  }

  // (Ctrl-C at the prompt is not tested here: whether it arrives as a character in raw mode or
  // as SIGINT before depends on timing; both end with 130.)
  test("reads it from the terminal", { skip: !hasScript && "no `script`" }, () => {
    const ok = typing(["open", "p.tseal", "-o", "p.out", "-p"], "secret words\r");
    assert.equal(ok.status, 0, ok.stdout);
    assert.equal(readFileSync(join(s.dir, "p.out"), "utf8"), "weights");
  });
});

test("every error code maps to an exit code that docs/CLI.md documents with it", () => {
  const source = readFileSync(join(ROOT, "src/format/errors.ts"), "utf8");
  const union = /export type ErrorCode =([^;]+);/.exec(source)![1]!;
  const codes = [...union.matchAll(/"(E_[A-Z_]+)"/g)].map((m) => m[1] as ErrorCode);
  assert.ok(codes.length >= 16 && codes.includes("E_CONTEXT"));
  const doc = readFileSync(join(ROOT, "docs/CLI.md"), "utf8");
  const table = doc.slice(doc.indexOf("## Exit codes"));
  for (const code of codes) {
    const exit = exitCodeFor(code);
    assert.notEqual(exit, EXIT.internal, `${code} has no exit code of its own`);
    const row = table.split("\n").find((l) => l.startsWith(`| ${exit} |`));
    assert.ok(row, `exit code ${exit} (${code}) is not in docs/CLI.md`);
    assert.ok(row.includes(`\`${code}\``), `docs/CLI.md's row for ${exit} does not list ${code}`);
  }
  for (const exit of [EXIT.brokenPipe])
    assert.ok(
      table.split("\n").some((l) => l.startsWith(`| ${exit} |`)),
      `exit ${exit} is not documented`,
    );
});
