/**
 * A clean shutdown of `serve` (SIGTERM, SIGINT) signs a final checkpoint over the head, so the
 * log it leaves verifies with `--max-unsigned 0`: no entry is protected by the chain alone.
 * Time-based checkpoints are off here, and the log is far shorter than 64 entries, so without
 * the final checkpoint every entry would be unsigned.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import Sqlite from "better-sqlite3";
import { sandbox } from "../cli/helpers.js";
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
