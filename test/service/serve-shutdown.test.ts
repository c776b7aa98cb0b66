/**
 * A clean shutdown of `serve` (SIGTERM, SIGINT) signs a final checkpoint over the head, so the
 * log it leaves verifies with `--max-unsigned 0`: no entry is protected by the chain alone.
 * Time-based checkpoints are off here, and the log is far shorter than 64 entries, so without
 * the final checkpoint every entry would be unsigned.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import Sqlite from "better-sqlite3";
import { CLI, sandbox } from "../cli/helpers.js";
import { httpsStatus, startServe } from "./serve-process.js";

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`${signal}: serve signs the head before it exits, and audit verify --max-unsigned 0 passes`, async () => {
    const sb = sandbox();
    try {
      const s = await startServe(sb, ["--checkpoint-interval", "0", "--no-anomaly"]);
      const t = sb.run(["service", "token", "create", "--scope", "admin"]);
      assert.equal(t.status, 0, t.stderr);
      const admin = { authorization: `Bearer ${t.stdout.toString().trim()}` };
      assert.equal(await httpsStatus(s, "POST", "/v1/keys", admin, '{"name":"m"}'), 200);
      assert.equal(await httpsStatus(s, "GET", "/v1/keys", admin), 200);
      assert.equal(await httpsStatus(s, "GET", "/v1/keys"), 401);
      assert.equal(await s.stop(signal), 0, s.stderr());

      const db = new Sqlite(`${sb.env.TENSORSEAL_HOME}/service.db`, { readonly: true });
      const head = db.prepare("select max(seq) as s from audit").get() as { s: number };
      const cp = db.prepare("select max(seq) as s from checkpoints").get() as { s: number };
      db.close();
      assert.equal(head.s, 3);
      assert.equal(cp.s, head.s, "the newest checkpoint signs the head");
      const v = sb.run(["audit", "verify", "--public-key", s.publicKey, "--max-unsigned", "0"]);
      assert.equal(v.status, 0, v.stderr);
      assert.match(v.stderr, /verified: 3 entries, 1 checkpoints, 0 unsigned after the newest/);
    } finally {
      sb.cleanup();
    }
  });
}

test("Ctrl-C from the moment serve says it listens is a clean shutdown, even mid-summary", async () => {
  // The preload stalls serve right after its "listening on" line: the SIGINT sent on seeing
  // that line arrives before the rest of the summary is printed.
  const stall = fileURLToPath(new URL("./stall-after-listening.js", import.meta.url));
  const sb = sandbox();
  try {
    const args = ["--import", stall, CLI, "serve", "--dev", "--listen", "127.0.0.1:0"];
    const proc = spawn(process.execPath, [...args, "--checkpoint-interval", "0"], {
      env: sb.env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    const exited = new Promise<[number | null, string | null]>((r) =>
      proc.once("exit", (code, signal) => r([code, signal])),
    );
    proc.stderr!.on("data", (d: Buffer) => {
      const first = !/listening on/.test(err);
      err += d.toString();
      if (first && /listening on/.test(err)) proc.kill("SIGINT");
    });
    assert.deepEqual(await exited, [0, null], err);
    assert.match(err, /development CA/, "the summary was printed to its end");
    const v = sb.run(["audit", "verify", "--max-unsigned", "0"]);
    assert.equal(v.status, 0, v.stderr);
  } finally {
    sb.cleanup();
  }
});
