/**
 * `tensorseal serve` picks up new TLS material without a restart: a CRL file that changes
 * revokes a certificate (no signal needed), a broken file is refused and the service goes on
 * with what it had, and SIGHUP reloads unchanged files (audited again).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type DevCa, devCrl, type IssuedCert, issueClientCert } from "../../src/service/index.js";
import { CLI, type Sandbox, sandbox } from "../cli/helpers.js";
import { devMtls } from "./helpers.js";

const ID = "spiffe://prod.example/ns/ml/sa/loader";

let sb: Sandbox;
let srv: ChildProcess;
let url: string;
let ca: DevCa;
let caPem: string;
let output = "";
const files = { cert: "", key: "", ca: "", crl: "", roles: "" };
let keeper: IssuedCert;
let victim: IssuedCert;

/** Replaces a file the way a rotation should: a new file renamed over the old one. */
function replace(path: string, text: string): void {
  writeFileSync(`${path}.new`, text);
  renameSync(`${path}.new`, path);
}

/** GET /v1/keys with a client certificate over a new connection; the status. */
function status(c: IssuedCert): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL("/v1/keys", url), {
      agent: false,
      ca: caPem,
      cert: c.cert,
      key: c.key,
    });
    req.on("error", reject);
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.end();
  });
}

const count = (re: RegExp) => output.split("\n").filter((l) => re.test(l)).length;

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; server output:\n${output}`);
    await sleep(100);
  }
}

before(async () => {
  sb = sandbox();
  const m = await devMtls(sb.env.TENSORSEAL_HOME!);
  const dev = m.dev;
  ({ ca, caPem } = m);
  keeper = issueClientCert(ca, { uris: [ID] });
  victim = issueClientCert(ca, { uris: [ID] });
  Object.assign(files, {
    cert: join(sb.dir, "server.pem"),
    key: join(sb.dir, "server.key"),
    ca: join(sb.dir, "clients-ca.pem"),
    crl: join(sb.dir, "clients.crl"),
    roles: join(sb.dir, "roles.json"),
  });
  writeFileSync(files.cert, dev.cert);
  writeFileSync(files.key, dev.key, { mode: 0o600 });
  writeFileSync(files.ca, caPem);
  writeFileSync(files.crl, devCrl(ca, [], 7, 1));
  writeFileSync(files.roles, JSON.stringify({ [ID]: ["admin"] }));
  writeFileSync(join(sb.dir, "service-root.key"), randomBytes(32).toString("hex"), { mode: 0o600 });
  srv = spawn(
    process.execPath,
    [
      CLI,
      "serve",
      "--listen",
      "127.0.0.1:0",
      "--tls-cert",
      files.cert,
      "--tls-key",
      files.key,
      "--client-ca",
      files.ca,
      "--client-crl",
      files.crl,
      "--mtls-roles",
      files.roles,
      "--root-key-file",
      join(sb.dir, "service-root.key"),
    ],
    { env: sb.env, stdio: ["ignore", "pipe", "pipe"] },
  );
  const onData = (d: Buffer) => {
    output += d.toString();
  };
  srv.stdout!.on("data", onData);
  srv.stderr!.on("data", onData);
  url = await new Promise<string>((resolve, reject) => {
    const poll = setInterval(() => {
      const m = /listening on (https:\/\/\S+)/.exec(output);
      if (m) {
        clearInterval(poll);
        resolve(m[1]!);
      }
    }, 50);
    srv.once("exit", (code) => {
      clearInterval(poll);
      reject(new Error(`serve exited ${code}: ${output}`));
    });
  });
});

after(() => {
  srv.kill("SIGTERM");
  sb.cleanup();
});

test("a changed CRL file revokes a certificate without a restart or a signal", async () => {
  assert.equal(await status(victim), 200);
  replace(files.crl, devCrl(ca, [victim.serial], 7, 2));
  await until("the revoked certificate to be refused", async () => (await status(victim)) === 401);
  assert.equal(await status(keeper), 200);
  assert.equal(count(/TLS material reloaded/), 1);
  assert.equal(srv.exitCode, null, "still running");
});

test("a broken file is refused and logged; the service goes on with what it had", async () => {
  const failed = count(/TLS reload failed/);
  const good = readFileSync(files.cert, "utf8");
  replace(files.cert, "not a certificate\n");
  await until("the failed reload to be logged", () => count(/TLS reload failed/) > failed);
  assert.equal(await status(keeper), 200);
  assert.equal(await status(victim), 401, "the CRL loaded before stays in force");
  assert.ok(!output.includes("PRIVATE KEY"), "no key material in the log");
  replace(files.cert, good);
  await until("the repaired files to load", () => count(/TLS material reloaded/) === 2);
});

test("SIGHUP reloads the files even when none changed", async () => {
  const reloaded = count(/TLS material reloaded/);
  srv.kill("SIGHUP");
  await until("the SIGHUP reload", () => count(/TLS material reloaded/) === reloaded + 1);
  assert.equal(srv.exitCode, null, "SIGHUP does not stop the service");
  assert.equal(await status(keeper), 200);
  assert.equal(await status(victim), 401);
});
