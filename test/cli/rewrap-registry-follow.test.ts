/**
 * A plain `rewrap` keeps the key service's registry current, against `serve --dev` on loopback:
 * `rewrap --to-latest FILE` of a registered file moves its registration to the new stanza
 * (POST /v1/artifacts/restanza, found by the registered stanza; the inventory shows the new
 * version); a refused move restores the old header (the file byte for byte as before, the
 * registry as it was); `--no-registry` and a file without a service stanza send no request; a
 * rewrap interrupted between the new slot and the move is finished by the next rewrap, from
 * the old slot it left.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseHeader, slotOffset } from "../../src/format/header.js";
import { parseServiceStanza } from "../../src/keys/service/stanza.js";
import { cliToken, type ServeProcess, servedKeystore } from "../service/serve-process.js";
import { type Sandbox, sandbox } from "./helpers.js";

let sb: Sandbox;
let srv: ServeProcess;
let env: NodeJS.ProcessEnv;
const plain = randomBytes(30_000);

const token = (scopes: string) => cliToken(sb, scopes);

const versions = (name: string) =>
  parseHeader(readFileSync(join(sb.dir, name)))
    .stanzas.filter((s) => s.type === "service")
    .map((s) => parseServiceStanza(s).version);

function registered(id: string): number {
  const r = sb.run(["service", "artifacts", "list", "--json"], { env });
  assert.equal(r.status, 0, r.stderr);
  const all = JSON.parse(r.stdout.toString()) as { id: string; version: number }[];
  return all.find((a) => a.id === id)!.version;
}

/** How many artifacts.restanza requests the service audited (allowed or refused). */
function moves(): number {
  const q = sb.run(["audit", "query", "--action", "artifacts.restanza", "--json"], { env });
  assert.equal(q.status, 0, q.stderr);
  return q.stdout.toString().split('"artifacts.restanza"').length - 1;
}

function seal(name: string, args: string[]): string {
  const s = sb.run(["seal", "m.bin", "-o", name, ...args, "--register", "--json"], { env });
  assert.equal(s.status, 0, s.stderr);
  return JSON.parse(s.stdout.toString()).artifacts[0] as string;
}

before(async () => {
  sb = sandbox();
  ({ srv, env } = await servedKeystore(sb, "admin,wrap,unwrap,rewrap"));
  assert.equal(sb.run(["service", "keys", "create", "weights"], { env }).status, 0);
  writeFileSync(join(sb.dir, "m.bin"), plain);
});

after(async () => {
  await srv?.stop();
  sb?.cleanup();
});

test("rewrap --to-latest of a registered file moves its registration to the new version", () => {
  const id = seal("a.tseal", ["-r", "service:weights", "-k", "default"]);
  assert.equal(sb.run(["service", "keys", "rotate", "weights"], { env }).status, 0);
  const before = moves();
  const r = sb.run(["rewrap", "--to-latest", "a.tseal", "--json"], { env });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(versions("a.tseal"), [2]);
  assert.equal(registered(id), 2, "the registry follows the file");
  assert.equal(moves(), before + 1);
  const o = sb.run(["open", "a.tseal", "-o", "-"], { env });
  assert.equal(o.status, 0, o.stderr);
  assert.ok(o.stdout.equals(plain));
  // Already current: nothing moves, no request.
  const again = sb.run(["rewrap", "--to-latest", "a.tseal"], { env });
  assert.equal(again.status, 0, again.stderr);
  assert.equal(moves(), before + 1);
});

test("a refused move leaves the file byte for byte and the registry as they were", () => {
  const id = seal("b.tseal", ["-r", "service:weights"]);
  assert.equal(sb.run(["service", "keys", "rotate", "weights"], { env }).status, 0);
  const old = readFileSync(join(sb.dir, "b.tseal"));
  // May re-wrap and open (rewrap, unwrap) but not register (the route needs wrap).
  const narrow = { ...env, TENSORSEAL_SERVER_TOKEN: token("unwrap,rewrap") };
  const r = sb.run(["rewrap", "--to-latest", "b.tseal"], { env: narrow });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr + r.stdout.toString(), /the file is left as it was/);
  assert.ok(readFileSync(join(sb.dir, "b.tseal")).equals(old), "the file, byte for byte");
  assert.equal(registered(id), 2, "still the version it was registered with");
  const o = sb.run(["open", "b.tseal", "-o", "-"], { env });
  assert.equal(o.status, 0, o.stderr);
  assert.ok(o.stdout.equals(plain));
});

test("--no-registry sends no request; a crash's leftover slot is reported on the rerun; a file without a service stanza sends none", () => {
  const id = seal("c.tseal", ["-r", "service:weights"]);
  assert.equal(sb.run(["service", "keys", "rotate", "weights"], { env }).status, 0);
  const before = moves();
  const old = readFileSync(join(sb.dir, "c.tseal"));
  const n = sb.run(["rewrap", "--to-latest", "c.tseal", "--no-registry"], { env });
  assert.equal(n.status, 0, n.stderr);
  assert.deepEqual(versions("c.tseal"), [4]);
  assert.equal(registered(id), 3, "left naming the old stanza, as asked");
  assert.equal(moves(), before);

  // A crash after the new slot was synced and before the move: the old slot is still there.
  // The next rewrap reports that leftover's stanza to the registry before clearing it.
  const h = parseHeader(old);
  const at = slotOffset(h, h.activeSlot);
  const crashed = readFileSync(join(sb.dir, "c.tseal"));
  old.copy(crashed, at, at, at + h.slotCapacity);
  writeFileSync(join(sb.dir, "c.tseal"), crashed);
  assert.equal(parseHeader(crashed).inactiveSlot.kind, "stale");
  // Refused on the rerun: the leftover (the record of the move) is kept, the registry as it was.
  const narrow = { ...env, TENSORSEAL_SERVER_TOKEN: token("unwrap,rewrap") };
  const refused = sb.run(["rewrap", "--to-latest", "c.tseal"], { env: narrow });
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr + refused.stdout.toString(), /left \(the old stanzas\) is kept/);
  assert.ok(readFileSync(join(sb.dir, "c.tseal")).equals(crashed), "the file, byte for byte");
  assert.equal(registered(id), 3);
  const rerun = sb.run(["rewrap", "--to-latest", "c.tseal"], { env });
  assert.equal(rerun.status, 0, rerun.stderr);
  assert.equal(registered(id), 4, "the rerun converged: the registry names the file's stanza");
  assert.equal(parseHeader(readFileSync(join(sb.dir, "c.tseal"))).inactiveSlot.kind, "empty");
  const moved = moves();
  // A kek-only file: rewrapped (another recipient added), nothing to tell the service.
  const k = sb.run(["seal", "m.bin", "-o", "k.tseal", "-k", "default"], { env });
  assert.equal(k.status, 0, k.stderr);
  const a = sb.run(["rewrap", "k.tseal", "--add-recipient", "service:weights"], { env });
  assert.equal(a.status, 0, a.stderr);
  assert.equal(moves(), moved);
});
