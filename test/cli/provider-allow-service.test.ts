/**
 * A `service` stanza cannot choose whom TensorSeal contacts: the key service is only ever the one
 * the user configured (--server / TENSORSEAL_SERVER), and a stanza of any other server id, even
 * one spelled as a URL, is "not mine": sent nowhere (docs/PROVIDERS.md, "Allowed keys"). Real
 * key service on loopback; the URL the attacker's stanza names is a loopback listener that
 * counts connections.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { sealFile } from "../../src/engine/index.js";
import type { Recipient } from "../../src/format/stanza.js";
import { SERVICE_STANZA } from "../../src/keys/service/stanza.js";
import { bearer, type CliService, cliService, token } from "../service/helpers.js";
import { type Sandbox, sandbox } from "./helpers.js";

let sb: Sandbox;
let svc: CliService;
let env: NodeJS.ProcessEnv;
const trap = { connections: 0, url: "" };
const trapServer = createServer((s) => {
  trap.connections++;
  s.destroy();
});

/** How many unwraps the configured service was asked for (its audit log). */
async function unwraps(): Promise<number> {
  const rows = await svc.db.db.selectFrom("audit").select("entry").execute();
  return rows.filter((r) => JSON.parse(r.entry).action.startsWith("datakeys.unwrap")).length;
}

/** A recipient that writes the stanza an attacker chooses: server id and key name. */
function forgedService(serverId: string, name: string): Recipient {
  const version = Buffer.alloc(4);
  version.writeUInt32BE(1);
  return {
    id: `forged:${serverId}`,
    wrap: async () => ({
      type: SERVICE_STANZA,
      fields: [Buffer.from(serverId), Buffer.from(name), version, randomBytes(12), randomBytes(48)],
    }),
    matches: () => false,
  };
}

before(async () => {
  sb = sandbox();
  svc = await cliService(sb);
  const admin = await token(svc.db, "admin,wrap,unwrap");
  const k = await svc.app.inject({
    method: "POST",
    url: "/v1/keys",
    headers: bearer(admin),
    payload: { name: "weights" },
  });
  assert.equal(k.statusCode, 200, k.body);
  env = { ...svc.env, TENSORSEAL_SERVER_TOKEN: admin };
  await new Promise<void>((r) => trapServer.listen(0, "127.0.0.1", r));
  trap.url = `http://127.0.0.1:${(trapServer.address() as { port: number }).port}/`;
});

after(async () => {
  trapServer.close();
  await svc?.close();
  sb?.cleanup();
});

test("a stanza naming another server, even as a URL, is sent nowhere: not there, not to ours", async () => {
  const input = join(sb.dir, "w.bin");
  writeFileSync(input, randomBytes(50_000));
  await sealFile(input, join(sb.dir, "forged.tseal"), {
    recipients: [forgedService(trap.url, "weights"), forgedService("ts-elsewhere", "weights")],
    workers: 0,
  });
  const before = await unwraps();
  const r = await sb.runAsync(["open", "forged.tseal", "-o", "forged.out"], env);
  assert.equal(r.status, 4, r.stderr);
  assert.match(r.stderr, /none of the 2 recipient stanzas \(service\) matches the keys given/);
  assert.equal(trap.connections, 0, "the URL in the stanza was never contacted");
  assert.equal(await unwraps(), before, "the configured service was not asked to unwrap");
  // Without a configured service, nothing at all is contacted.
  const r2 = await sb.runAsync(["open", "forged.tseal", "-o", "forged.out"], {});
  assert.equal(r2.status, 4, r2.stderr);
  assert.equal(trap.connections, 0);
});
