/** The key service end to end through the CLI: serve --dev over TLS, tokens, seal/open, audit. */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import Sqlite from "better-sqlite3";
import { CLI, type Sandbox, sandbox } from "./helpers.js";

let sb: Sandbox;
let srv: ChildProcess;
let env: NodeJS.ProcessEnv;
let token: string;

before(async () => {
  sb = sandbox();
  srv = spawn(
    process.execPath,
    [CLI, "serve", "--dev", "--listen", "127.0.0.1:0", "--log-level", "warn"],
    {
      env: sb.env,
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let err = "";
  const url = await new Promise<string>((resolve, reject) => {
    srv.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      const m = /listening on (https:\/\/\S+)/.exec(err);
      if (m && /development CA/.test(err)) resolve(m[1]!);
    });
    srv.once("exit", (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  const admin = sb.run(["service", "token", "create", "--scope", "admin,wrap,unwrap"]);
  assert.equal(admin.status, 0, admin.stderr);
  token = admin.stdout.toString().trim();
  env = {
    TENSORSEAL_SERVER: url,
    TENSORSEAL_SERVER_CA: join(sb.env.TENSORSEAL_HOME!, "service-dev", "ca.pem"),
    TENSORSEAL_SERVER_TOKEN: token,
  };
  const r = await fetchKey(url);
  assert.equal(r, 200);
});

async function fetchKey(url: string): Promise<number> {
  const { request } = await import("node:https");
  const ca = readFileSync(join(sb.env.TENSORSEAL_HOME!, "service-dev", "ca.pem"));
  return new Promise((resolve, reject) => {
    const req = request(new URL("/v1/keys", url), {
      method: "POST",
      ca,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end(JSON.stringify({ name: "weights" }));
  });
}

after(() => {
  srv.kill("SIGTERM");
  sb.cleanup();
});

test("seal -r service:NAME and open through the service; audit verifies and exports", () => {
  const data = randomBytes(300_000);
  writeFileSync(join(sb.dir, "m.bin"), data);
  const s = sb.run(["seal", "m.bin", "-r", "service:weights", "-o", "m.tseal"], { env });
  assert.equal(s.status, 0, s.stderr);
  const o = sb.run(["open", "m.tseal", "-o", "m.out"], { env });
  assert.equal(o.status, 0, o.stderr);
  assert.deepEqual(readFileSync(join(sb.dir, "m.out")), data);
  // --server works as well as TENSORSEAL_SERVER.
  const o2 = sb.run(["--server", env.TENSORSEAL_SERVER!, "open", "m.tseal", "-o", "-"], {
    env: { ...env, TENSORSEAL_SERVER: "" },
  });
  assert.equal(o2.status, 0, o2.stderr);
  assert.deepEqual(o2.stdout, data);
  const v = sb.run(["audit", "verify"]);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stderr, /audit log verified: \d+ entries/);
  const x = sb.run(["audit", "export"]);
  const lines = x.stdout
    .toString()
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.action === "datakeys.unwrap" && l.outcome === "allowed"));
  assert.ok(!x.stdout.toString().includes(token));
  // -o FILE: the same entries, in a file that exists once the command has exited 0.
  const f = sb.run(["audit", "export", "-o", "audit.jsonl"]);
  assert.equal(f.status, 0, f.stderr);
  const saved = readFileSync(join(sb.dir, "audit.jsonl"), "utf8").trim().split("\n");
  assert.deepEqual(
    saved.slice(0, lines.length).map((l) => JSON.parse(l)),
    lines,
  );
});

test("open without a token or with an unknown token: exit 8, denied and audited", () => {
  writeFileSync(join(sb.dir, "d.bin"), "x");
  assert.equal(
    sb.run(["seal", "d.bin", "-r", "service:weights", "-o", "d.tseal"], { env }).status,
    0,
  );
  for (const t of ["", `tsk_${"D".repeat(43)}`]) {
    const o = sb.run(["open", "d.tseal", "-o", "d.out", "-f"], {
      env: { ...env, TENSORSEAL_SERVER_TOKEN: t },
    });
    assert.equal(o.status, 8, o.stderr);
    assert.ok(!o.stderr.includes("D".repeat(43)));
  }
  const x = sb.run(["audit", "export"]).stdout.toString();
  assert.ok(x.includes('"outcome":"denied"'));
});

test("serve refuses to start without TLS material, and audit verify fails (exit 5) on an edited log", () => {
  const r = sb.run(["serve", "--listen", "127.0.0.1:0"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /needs TLS/);
  const db = new Sqlite(join(sb.env.TENSORSEAL_HOME!, "service.db"));
  db.prepare("update audit set entry = replace(entry, 'allowed', 'denied') where seq = 2").run();
  db.close();
  const v = sb.run(["audit", "verify"]);
  assert.equal(v.status, 5, v.stderr);
  assert.match(v.stderr, /entry 2 does not match its hash/);
});

test("a token that is not one line of printable characters: exit 2 naming the variable, never the token", () => {
  const file = join(sb.dir, "token-with-log");
  // What `service token create > file` gives when a wrapper also prints into the file.
  writeFileSync(file, `$ tensorseal service token create\n${token}\n[exit 0]\n`);
  const { TENSORSEAL_SERVER_TOKEN: _, ...rest } = env;
  for (const [extra, named] of [
    [{ TENSORSEAL_SERVER_TOKEN_FILE: file }, /TENSORSEAL_SERVER_TOKEN_FILE/],
    [{ TENSORSEAL_SERVER_TOKEN: `${token}\r\nX-Injected: 1` }, /TENSORSEAL_SERVER_TOKEN\b/],
  ] as const) {
    const r = sb.run(["service", "keys", "list"], { env: { ...rest, ...extra } });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, named);
    assert.match(r.stderr, /^tensorseal: error: .*bearer token/);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.ok(!r.stderr.includes(token.slice(4)), "the token is never printed");
  }
});
