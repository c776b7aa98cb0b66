/**
 * Schemathesis (PyPI `schemathesis`, pinned in scripts/setup-test-deps.sh, in .venv-schemathesis)
 * against the real service: `serve --dev` on loopback, its own /openapi.json, a token holding
 * every role, all checks, a fixed seed and a bounded number of examples per operation. Zero
 * failures: the document says what the service does (bodies, maxima, methods, statuses).
 * Skipped when the venv is missing, except under TENSORSEAL_REQUIRE_ALL=1 (CI), where it fails.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { sandbox } from "../cli/helpers.js";
import { startServe } from "./serve-process.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const BIN = join(ROOT, ".venv-schemathesis", "bin", "schemathesis");
const CONFIG = join(ROOT, "test", "service", "schemathesis.toml");
const missing = existsSync(BIN)
  ? false
  : `${BIN} not found: run scripts/setup-test-deps.sh (installs Schemathesis)`;
if (missing && process.env.TENSORSEAL_REQUIRE_ALL === "1")
  throw new Error(`TENSORSEAL_REQUIRE_ALL=1 but ${missing}`);

test("Schemathesis finds no failure against /openapi.json (all checks)", {
  skip: missing,
  timeout: 600_000,
}, async () => {
  const sb = sandbox();
  try {
    const s = await startServe(sb, []);
    const t = sb.run([
      "service",
      "token",
      "create",
      "--scope",
      "admin,wrap,unwrap,rewrap,audit,reader",
    ]);
    assert.equal(t.status, 0, t.stderr);
    const run = await new Promise<{ code: number | null; out: string }>((done, fail) => {
      const c = spawn(
        BIN,
        [
          "--config-file",
          CONFIG,
          "run",
          `${s.url}/openapi.json`,
          "--tls-verify",
          s.caPath,
          "--checks",
          "all",
          "--max-examples",
          "30",
          "--seed",
          "20261204",
          "--workers",
          "1",
        ],
        {
          env: {
            PATH: process.env.PATH,
            HOME: sb.dir,
            TENSORSEAL_SCHEMATHESIS_TOKEN: t.stdout.toString().trim(),
          },
          cwd: sb.dir,
        },
      );
      let out = "";
      c.stdout.on("data", (d: Buffer) => {
        out += d.toString();
      });
      c.stderr.on("data", (d: Buffer) => {
        out += d.toString();
      });
      c.on("error", fail);
      c.on("close", (code) => done({ code, out }));
    });
    // The service survived the run and shuts down cleanly.
    assert.equal(await s.stop("SIGTERM"), 0, s.stderr());
    assert.equal(run.code, 0, run.out.slice(-20_000));
    // Every operation of the document was tested (not a hard-coded count: routes get added).
    const ops = /Selected: (\d+)\/(\d+)[\s\S]*?Tested: (\d+)/.exec(run.out);
    assert.ok(ops && Number(ops[2]) >= 40, run.out.slice(-3000));
    assert.equal(ops[3], ops[2], "every operation was tested");
    const cases = /Test cases:\s+(\d+) generated, (\d+) passed/.exec(run.out);
    assert.ok(cases && Number(cases[1]) > 500, run.out.slice(-3000));
    assert.equal(cases[2], cases[1], "every generated case passed");
    assert.doesNotMatch(run.out, /unique failures|^Failures:/m);
  } finally {
    sb.cleanup();
  }
});
