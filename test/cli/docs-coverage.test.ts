/**
 * The documentation matches the command tree: every command's --help shows examples that parse
 * as that command (same flags, arguments and required options), and docs/CLI.md's command tables
 * name every command and, in that command's own rows or in the prose of its section, every flag.
 * Walks the real commander tree, so a command or flag added without its docs fails here.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { Command } from "commander";
import { buildProgram } from "../../src/cli/program.js";

const REPO = new URL("../../../", import.meta.url);
const CLI_MD = readFileSync(new URL("docs/CLI.md", REPO), "utf8");

/** Every command that runs something (has no subcommands), with its full path. */
function leaves(cmd: Command, prefix: string[] = []): { path: string; cmd: Command }[] {
  return cmd.commands.flatMap((c) => {
    const path = [...prefix, c.name()];
    return c.commands.length > 0 ? leaves(c, path) : [{ path: path.join(" "), cmd: c }];
  });
}

/** What `--help` prints, including the text added after the option list. */
function helpOf(cmd: Command): string {
  let out = "";
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  cmd.outputHelp();
  return out;
}

const commands = leaves(await buildProgram());

/** The `## Commands` section of CLI.md: its table rows (first cell, whole row) and its prose. */
function commandsSection() {
  const start = CLI_MD.indexOf("\n## Commands\n");
  assert.ok(start >= 0, "docs/CLI.md has no '## Commands' section");
  const end = CLI_MD.indexOf("\n## ", start + 1);
  const lines = CLI_MD.slice(start, end < 0 ? undefined : end).split("\n");
  const rows = lines
    .filter((l) => l.startsWith("| `"))
    .map((l) => ({ first: l.split(/(?<!\\) \| /)[0]!.slice(2), row: l }));
  const prose = lines.filter((l) => !l.startsWith("|")).join("\n");
  return { rows, prose };
}
const section = commandsSection();

/**
 * Whether `text` names the command `path` in code: alone (`keys rotate NAME`), in a group
 * (`keys disable|enable NAME V`, escaped `\|` inside tables) or as `keys *`.
 */
function names(text: string, path: string): boolean {
  const words = path.split(" ");
  const last = words.pop()!;
  const before = words.map((w) => `${w} `).join("");
  const alt = "(?:[\\w-]+\\\\?\\|)*";
  const group = new RegExp(`\`${before}${alt}${last}(?:\\\\?\\|[\\w-]+)*[\` ]`);
  const wildcard = words.length > 0 && new RegExp(`\`${before}\\*\``).test(text);
  return group.test(text) || wildcard;
}

const flagIn = (text: string, flag: string | undefined) =>
  flag !== undefined && new RegExp(`(?<![\\w-])${flag}(?![\\w-])`).test(text);

test("the command tree is what this test walks (sanity)", () => {
  const paths = commands.map((c) => c.path);
  for (const p of ["seal", "open", "rewrap", "service keys rotate", "audit verify", "exec"]) {
    assert.ok(paths.includes(p), p);
  }
  assert.ok(section.rows.length >= 30, `only ${section.rows.length} command rows in docs/CLI.md`);
});

test("every command's --help has examples", () => {
  const missing = commands.filter((c) => !/\nExamples?:\n/.test(helpOf(c.cmd))).map((c) => c.path);
  assert.deepEqual(missing, [], `commands whose --help shows no "Example:" section`);
});

/** The `tensorseal ...` command lines of a help text's examples, as argument vectors. */
function exampleCommands(help: string): string[][] {
  const at = help.search(/\nExamples?:\n/);
  const out: string[][] = [];
  for (const line of help.slice(at).split("\n").slice(2)) {
    if (!line.startsWith("  ")) break; // the examples end with their indentation
    const words = shellWords(line.replace(/(^|\s)#.*$/, ""));
    // Each command of a pipeline or a list (`a && b`, `a | b`) that is tensorseal.
    let current: string[] = [];
    for (const w of [...words, "&&"]) {
      if (["&&", "||", "|", ";", ">", ">>", "<"].includes(w)) {
        while (current.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(current[0]!)) current.shift();
        if (current[0] === "tensorseal") out.push(current.slice(1));
        current = w === ">" || w === ">>" || w === "<" ? ["(redirect target)"] : [];
      } else current.push(w);
    }
  }
  return out;
}

/** Splits a shell line into words: quotes and $(...) kept as one word, operators apart. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  const re =
    /\s*("(?:[^"\\]|\\.)*"|'[^']*'|\$\((?:[^()]|\([^()]*\))*\)|&&|\|\||>>|[|;<>]|[^\s|;<>&'"]+)/gy;
  for (let m = re.exec(line); m !== null && m[1] !== undefined; m = re.exec(line)) {
    words.push(m[1].replace(/^(["'])(.*)\1$/s, "$2"));
  }
  return words;
}

test("every --help example parses as the command it shows (flags, arguments, required options)", async () => {
  const problems: string[] = [];
  let checked = 0;
  for (const { path, cmd } of commands) {
    for (const argv of exampleCommands(helpOf(cmd))) {
      // A fresh tree whose actions do nothing: commander checks the line, nothing runs.
      const program = await buildProgram();
      const quiet = (c: Command) => {
        c.configureOutput({ writeOut: () => {}, writeErr: () => {} });
        if (c.commands.length === 0) c.action(() => {});
        for (const sub of c.commands) quiet(sub);
      };
      quiet(program);
      program.hook("preAction", () => {}); // no key service client for --server
      try {
        await program.parseAsync(argv, { from: "user" });
        checked++;
      } catch (e) {
        problems.push(`${path}: tensorseal ${argv.join(" ")}: ${(e as Error).message}`);
      }
    }
  }
  assert.deepEqual(problems, [], "help examples that do not parse");
  assert.ok(checked >= commands.length, `only ${checked} example lines checked`);
});

test("docs/CLI.md's command tables name every command", () => {
  const missing = commands
    .map((c) => c.path)
    .filter((path) => !section.rows.some((r) => names(r.first, path)));
  assert.deepEqual(missing, [], "commands no table row of docs/CLI.md names in its first cell");
});

test("docs/CLI.md names every flag in its command's rows (or the section's prose naming the command)", () => {
  const missing: string[] = [];
  for (const { path, cmd } of commands) {
    const rows = section.rows.filter((r) => names(r.first, path)).map((r) => r.row);
    const prose = section.prose
      .split(/\n\s*\n/)
      .filter((p) => names(p, path) || names(p, path.split(" ")[0]!));
    for (const o of cmd.options) {
      if (["--help", "--version", "--json"].includes(o.long ?? "")) continue; // --json: below
      const text = [...rows, ...prose].join("\n");
      if (!flagIn(text, o.long) && !flagIn(text, o.short)) missing.push(`${path} ${o.flags}`);
    }
  }
  assert.deepEqual(missing, [], "flags docs/CLI.md does not document with their command");
});

test("docs/CLI.md's --json paragraph names every command that takes --json", () => {
  const start = CLI_MD.indexOf("**`--json`**");
  assert.ok(start >= 0, "docs/CLI.md has no **`--json`** paragraph");
  const paragraph = CLI_MD.slice(start, CLI_MD.indexOf("\n\n", start));
  const missing = commands
    .filter((c) => c.cmd.options.some((o) => o.long === "--json"))
    .map((c) => c.path)
    .filter((path) => !names(paragraph, path));
  assert.deepEqual(missing, [], "commands with --json that the --json paragraph leaves out");
});

test("every TENSORSEAL_* variable the code reads is documented (docs/CLI.md or README.md)", () => {
  const docs = CLI_MD + readFileSync(new URL("README.md", REPO), "utf8");
  const read = new Set<string>();
  const walk = (dir: URL) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(new URL(`${e.name}/`, dir));
      else if (e.name.endsWith(".ts")) {
        const text = readFileSync(join(dir.pathname, e.name), "utf8");
        for (const m of text.matchAll(/process\.env(?:\.|\[")(TENSORSEAL_[A-Z0-9_]+)/g)) {
          read.add(m[1]!);
        }
      }
    }
  };
  walk(new URL("src/", REPO));
  assert.ok(read.size >= 15, `only ${read.size} variables found`);
  const missing = [...read].filter((v) => !new RegExp(`\\b${v}\\b`).test(docs)).sort();
  assert.deepEqual(missing, [], "variables the code reads and the docs do not name");
});
