/**
 * `tensorseal drill` through the CLI: every scenario passes on SQLite and on PostgreSQL (a fresh
 * schema, dropped afterwards; in CI an unreachable PostgreSQL fails the test, it does not skip),
 * the history gets one record per scenario, `drill history` reads it back, an unreachable
 * database makes the drill FAIL (never a silent pass), bad arguments are usage errors, and an
 * interrupt leaves no sandbox behind.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import pg from "pg";
import { SCENARIOS } from "../../src/drill/index.js";
import { CLI, sandbox } from "../cli/helpers.js";
import { PG_URL, pgDb } from "../service/helpers.js";

const sb = sandbox();
after(() => sb.cleanup());
const names = SCENARIOS.map((s) => s.name);
const historyFile = join(sb.dir, "home", "drills", "history.jsonl");

function records(): Record<string, unknown>[] {
  return readFileSync(historyFile, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

test("drill list names every scenario", () => {
  const r = sb.run(["drill", "list", "--json"]);
  assert.equal(r.status, 0, r.stderr);
  const list = JSON.parse(r.stdout.toString()) as { name: string; summary: string }[];
  assert.deepEqual(
    list.map((s) => s.name),
    names,
  );
  assert.equal(names.length, 7);
});

test("drill run --all on SQLite: every scenario passes, timings printed, history recorded", async () => {
  const r = await sb.runAsync(["drill", "run", "--all"]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const lines = r.stdout.trim().split("\n");
  for (const n of names) {
    const line = lines.find((l) => l.split("\t")[1] === n);
    assert.ok(line, `no line for ${n}: ${r.stdout}`);
    assert.match(
      line,
      /^PASS\t[^\t]+\tdetect [\d.]+ ms\tcontain [\d.]+ ms\t(\d+)\/\1 checks\tsqlite$/,
    );
  }
  assert.match(lines.at(-1)!, /^7 drills: 7 passed, 0 failed; recorded in /);
  const recs = records();
  assert.deepEqual(
    recs.map((x) => x.scenario),
    names,
  );
  for (const x of recs) {
    assert.equal(x.format, "tensorseal-drill/1");
    assert.equal(x.result, "pass");
    assert.equal(x.database, "sqlite");
    assert.equal(x.version, "0.1.0");
    assert.equal(typeof x.detectMs, "number");
    assert.equal(typeof x.containMs, "number");
    assert.ok(Math.abs(Date.parse(String(x.time)) - Date.now()) < 10 * 60_000);
    assert.deepEqual(x.failed, []);
  }
  const h = sb.run(["drill", "history", "--json"]);
  assert.equal(h.status, 0, h.stderr);
  const hist = JSON.parse(h.stdout.toString());
  assert.equal(hist.records.length, 7);
  assert.deepEqual(Object.keys(hist.latest).sort(), [...names].sort());
  const text = sb.run(["drill", "history", "--scenario", "lost-root"]);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout.toString(), /\tPASS\tlost-root\tdetect /);
  assert.equal(text.stdout.toString().trim().split("\n").length, 1);
});

test("drill run --all on PostgreSQL: every scenario passes in a schema of its own, dropped afterwards", async (t) => {
  const probe = await pgDb(); // throws in CI (TENSORSEAL_REQUIRE_ALL=1) when unreachable
  if (typeof probe === "string") {
    t.skip(probe);
    return;
  }
  await probe.drop();
  const schemas = async () => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      const r = await c.query(
        "select count(*)::int as n from information_schema.schemata where schema_name like 'tensorseal_drill_%'",
      );
      return r.rows[0].n as number;
    } finally {
      await c.end();
    }
  };
  const before = await schemas();
  const history = join(sb.dir, "pg-history.jsonl");
  const r = await sb.runAsync([
    "drill",
    "run",
    "--all",
    "--db",
    PG_URL,
    "--history",
    history,
    "--json",
  ]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.passed, 7);
  assert.equal(out.failed, 0);
  assert.ok(out.reports.every((x: { database: string }) => x.database === "postgres"));
  assert.equal(out.history, history);
  const recs = readFileSync(history, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(recs.length, 7);
  assert.ok(recs.every((x) => x.database === "postgres" && x.result === "pass"));
  assert.equal(await schemas(), before, "every sandbox schema was dropped");
});

test("an unreachable PostgreSQL makes the drill fail (exit 1, recorded), never pass or skip", async () => {
  const history = join(sb.dir, "down-history.jsonl");
  const r = await sb.runAsync([
    "drill",
    "run",
    "lost-root",
    "--db",
    "postgres://drill:secret-pw@127.0.0.1:1/test",
    "--history",
    history,
  ]);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^FAIL\tlost-root\t/m);
  assert.match(r.stdout, /error: PostgreSQL at .*unreachable/);
  assert.doesNotMatch(r.stdout + r.stderr, /secret-pw/, "the password is not printed");
  const [rec] = readFileSync(history, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(rec.result, "fail");
  assert.match(rec.error, /unreachable/);
  assert.doesNotMatch(rec.error, /secret-pw/);
});

test("usage errors: unknown scenario, names with --all, nothing named, a --db that is not PostgreSQL", () => {
  for (const args of [
    ["drill", "run", "no-such-drill"],
    ["drill", "run", "--all", "lost-root"],
    ["drill", "run"],
    ["drill", "run", "--all", "--db", "sqlite:/tmp/x.db"],
  ]) {
    const r = sb.run(args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  assert.match(sb.run(["drill", "run", "no-such-drill"]).stderr, /one of stolen-version, /);
});

test("--no-record leaves the history alone", () => {
  const before = readFileSync(historyFile, "utf8");
  const r = sb.run(["drill", "run", "leaked-file-key", "--no-record"]);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout.toString(), /recorded in/);
  assert.equal(readFileSync(historyFile, "utf8"), before);
});

test("SIGINT during a drill removes the sandbox directory and exits 130", async () => {
  const tmp = join(sb.dir, "tmp-int");
  mkdirSync(tmp);
  const c = spawn(process.execPath, [CLI, "drill", "run", "--all", "--no-record"], {
    env: { ...sb.env, TMPDIR: tmp },
    stdio: "ignore",
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
    c.on("exit", (code, signal) => r({ code, signal })),
  );
  const deadline = Date.now() + 60_000;
  while (readdirSync(tmp).filter((n) => n.startsWith("tensorseal-drill-")).length === 0) {
    assert.ok(Date.now() < deadline, "no sandbox appeared");
    await new Promise((r) => setTimeout(r, 20));
  }
  c.kill("SIGINT");
  const { code, signal } = await exited;
  assert.ok(signal === "SIGINT" || code === 130, `exit ${code} ${signal}`);
  assert.deepEqual(
    readdirSync(tmp).filter((n) => n.startsWith("tensorseal-drill-")),
    [],
    "the sandbox was removed",
  );
});
