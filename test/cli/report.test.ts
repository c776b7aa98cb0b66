/**
 * `tensorseal report` against a real key service on loopback (HTTPS, SQLite): releases by key,
 * principal and artifact, denied attempts, approvals with who approved, rotations, the chain
 * verification; read from the database (--db) and over the API (--server) alike; rendered in a
 * real Chromium (playwright-core) and printed to PDF; a tampered log is reported and exits 5.
 * Without Chromium the browser parts fail under TENSORSEAL_REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { ReportData } from "../../src/report/model.js";
import { type CliService, cliService, token } from "../service/helpers.js";
import { CLI, type Sandbox, sandbox } from "./helpers.js";

const CHROMIUM = process.env.TENSORSEAL_CHROMIUM || "/usr/bin/chromium";
const chromiumWhy = existsSync(CHROMIUM)
  ? null
  : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
if (chromiumWhy && process.env.TENSORSEAL_REQUIRE_ALL === "1")
  test("Chromium is available (TENSORSEAL_REQUIRE_ALL=1)", () => assert.fail(chromiumWhy));

let sb: Sandbox;
let svc: CliService;
const t = { admin: "", admin2: "", worker: "", reader: "" };
const SINCE = "2000-01-01";

async function call(who: keyof typeof t, method: "GET" | "POST", url: string, payload?: object) {
  return svc.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${t[who]}` },
    ...(payload ? { payload } : {}),
  });
}

before(async () => {
  sb = sandbox();
  svc = await cliService(sb, { approvals: { required: { destroy: 2 } } });
  t.admin = await token(svc.db, "admin,audit");
  t.admin2 = await token(svc.db, "admin");
  t.worker = await token(svc.db, "wrap,unwrap");
  t.reader = await token(svc.db, "reader");
  assert.equal((await call("admin", "POST", "/v1/keys", { name: "weights" })).statusCode, 200);
  assert.equal((await call("admin", "POST", "/v1/keys/weights/rotate")).statusCode, 200);
  const g = await call("worker", "POST", "/v1/datakeys/generate", { key: "weights" });
  assert.equal(g.statusCode, 200, g.body);
  for (let i = 0; i < 3; i++) {
    const u = await call("worker", "POST", "/v1/datakeys/unwrap", { stanza: g.json().stanza });
    assert.equal(u.statusCode, 200, u.body);
  }
  // A reader may not unwrap: a denied attempt.
  const d = await call("reader", "POST", "/v1/datakeys/unwrap", { stanza: g.json().stanza });
  assert.equal(d.statusCode, 403);
  // Dual control: requested by one admin, approved by another.
  const r = await call("admin", "POST", "/v1/approvals", {
    operation: "destroy",
    key: "weights",
    version: 1,
  });
  assert.equal(r.statusCode, 202, r.body);
  const ok = await call("admin2", "POST", `/v1/approvals/${r.json().id}/approve`);
  assert.equal(ok.statusCode, 200, ok.body);
  // A drill in this home's history: the report lists it.
  const drill = await sb.runAsync(["drill", "run", "leaked-file-key"]);
  assert.equal(drill.status, 0, drill.stderr);
});
after(async () => {
  await svc.close();
  sb.cleanup();
});

function checkData(j: ReportData) {
  assert.ok(j.releases && j.denied && j.approvals && j.chain);
  assert.equal(j.releases.total, 4, "generate + three unwraps");
  assert.equal(j.releases.byPrincipal.length, 1);
  assert.equal(j.releases.byPrincipal[0]!.count, 4);
  assert.ok(j.releases.byKey.some((c) => c.name.startsWith("weights@")));
  assert.ok(j.denied.total >= 1);
  assert.ok(j.denied.shown.some((d) => d.action === "datakeys.unwrap"));
  const a = j.approvals.find((x) => x.operation === "destroy");
  assert.ok(a, JSON.stringify(j.approvals));
  assert.equal(a.state, "executed");
  assert.equal(a.approvers.length, 2);
  assert.notEqual(a.approvers[0], a.approvers[1]);
  assert.equal(j.chain.ok, true);
  assert.ok(j.chain.checkpoints >= 1);
  assert.deepEqual(
    j.drills?.map((d) => [d.scenario, d.result]),
    [["leaked-file-key", "pass"]],
  );
  const text = JSON.stringify(j);
  for (const secret of Object.values(t))
    assert.ok(!text.includes(secret), "a token leaked into the report");
}

test("report --json from the database and over the API give the same releases, denials and approvals", async () => {
  const fromDb = await sb.runAsync(["report", "--since", SINCE, "--db", svc.dbUrl, "--json"]);
  assert.equal(fromDb.status, 0, fromDb.stderr);
  checkData(JSON.parse(fromDb.stdout));
  const api = await sb.runAsync(["report", "--since", SINCE, "--json"], {
    ...svc.env,
    TENSORSEAL_SERVER_TOKEN: t.admin,
  });
  assert.equal(api.status, 0, api.stderr);
  const j = JSON.parse(api.stdout);
  checkData(j);
  assert.deepEqual(j.releases, JSON.parse(fromDb.stdout).releases);
});

test("a window that excludes the activity reports no releases; bad windows are refused", async () => {
  const r = await sb.runAsync([
    "report",
    "--since",
    "2001-01-01",
    "--until",
    "2001-02-01",
    "--db",
    svc.dbUrl,
    "--json",
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).releases.total, 0);
  assert.deepEqual(JSON.parse(r.stdout).drills, [], "the drill ran outside the window");
  const bad = await sb.runAsync([
    "report",
    "--since",
    "2026-02-01",
    "--until",
    "2026-01-01",
    "--db",
    svc.dbUrl,
  ]);
  assert.equal(bad.status, 2);
  assert.equal((await sb.runAsync(["report", "--since", "yesterday"])).status, 2);
});

test("the HTML report renders in Chromium with every section, and prints to PDF", {
  skip: chromiumWhy ?? false,
}, async () => {
  const html = join(sb.dir, "report.html");
  const pdf = join(sb.dir, "report.pdf");
  const r = await sb.runAsync(["report", "--since", SINCE, "-o", html, "--pdf", pdf], {
    ...svc.env,
    TENSORSEAL_SERVER_TOKEN: t.admin,
    TENSORSEAL_CHROMIUM: CHROMIUM,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(pdf).subarray(0, 5).toString("latin1"), "%PDF-");
  const source = readFileSync(html, "utf8");
  assert.doesNotMatch(source, /<script/i, "the report carries no script");
  for (const secret of Object.values(t)) assert.ok(!source.includes(secret));
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage();
    await page.goto(`file://${html}`);
    const section = (id: string) =>
      page
        .locator(`#${id}`)
        .textContent()
        .then((x) => x ?? "");
    assert.match(await section("summary"), /4\s*key releases/);
    assert.match(await section("releases"), /weights@\d/);
    assert.match(await section("denied"), /datakeys\.unwrap/);
    const approvals = await section("approvals");
    assert.match(approvals, /destroy/);
    assert.match(approvals, /executed/);
    assert.match(await section("rotations"), /weights/);
    assert.match(await section("chain"), /verify\./);
    assert.match(await section("findings"), /\S/);
    assert.match(await section("drills"), /leaked-file-key\s*pass/);
  } finally {
    await browser.close();
  }
});

test("a tampered audit log is reported as broken and the report exits 5", async () => {
  await svc.db.db.updateTable("audit").set({ entry: "{}" }).where("seq", "=", 3).execute();
  const r = await sb.runAsync(["report", "--since", SINCE, "--db", svc.dbUrl, "--json"]);
  assert.equal(r.status, 5, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.chain.ok, false);
  assert.ok(j.chain.problems.length > 0);
});

test("SIGINT while Chromium prints leaves no PDF, no HTML and no temporary directory", async () => {
  const tmp = join(sb.dir, "tmp-sigint");
  mkdirSync(tmp);
  const started = join(sb.dir, "chromium-started");
  // A stand-in for Chromium that says it started, then prints nothing for a while.
  const fake = join(sb.dir, "slow-chromium");
  writeFileSync(fake, `#!/bin/sh\ntouch ${started}\nsleep 5\n`, { mode: 0o755 });
  const out = join(sb.dir, "sigint.html");
  const pdf = join(sb.dir, "sigint.pdf");
  const child = spawn(
    process.execPath,
    [CLI, "report", "--since", SINCE, "-o", "-", "--pdf", pdf],
    {
      env: { ...sb.env, TMPDIR: tmp, TENSORSEAL_CHROMIUM: fake },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  const deadline = Date.now() + 60_000;
  while (!existsSync(started) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(started), "the stand-in Chromium never started");
  child.kill("SIGINT");
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
    child.once("exit", (c, s) => r([c, s])),
  );
  assert.ok(signal === "SIGINT" || code === 130, `exit ${code} ${signal}`);
  assert.deepEqual(readdirSync(tmp), [], "the temporary directory was removed");
  assert.ok(!existsSync(pdf) && !existsSync(out));
});
