/**
 * `reseal` keeps the key service's registry current, against `serve --dev --tier-policy builtin`
 * on loopback: the resealed file is registered as its artifact's successor before the rename
 * (the new entry names the old in `supersedes`, the old is kept and marked superseded, the
 * inventory says so); a refused registration fails the file and leaves the old file untouched
 * and the registry as it was; `--no-registry` reseals without it. `seal --register` sends the
 * header, so a key's tier refuses recipient kinds the client did not check (no --tier given).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type ServeProcess, servedKeystore } from "../service/serve-process.js";
import { type Sandbox, sandbox } from "./helpers.js";

let sb: Sandbox;
let srv: ServeProcess;
let env: NodeJS.ProcessEnv;
const plain = randomBytes(70_000);

interface Entry {
  id: string;
  location?: string;
  supersedes?: string;
  supersededBy?: string;
  superseded?: string;
  digest: string;
}

function registry(): Map<string, Entry> {
  const r = sb.run(["service", "artifacts", "list", "--json"], { env });
  assert.equal(r.status, 0, r.stderr);
  return new Map((JSON.parse(r.stdout.toString()) as Entry[]).map((a) => [a.id, a]));
}

before(async () => {
  sb = sandbox();
  ({ srv, env } = await servedKeystore(sb, "admin,wrap,unwrap", ["--tier-policy", "builtin"]));
  assert.equal(sb.run(["service", "keys", "create", "weights"], { env }).status, 0);
  const c = sb.run(["service", "keys", "create", "conf", "--sensitivity", "confidential"], { env });
  assert.equal(c.status, 0, c.stderr);
  writeFileSync(join(sb.dir, "m.bin"), plain);
});

after(async () => {
  await srv?.stop();
  sb?.cleanup();
});

test("a reseal registers the new file as the successor; the old entry is kept, superseded", () => {
  const s = sb.run(
    ["seal", "m.bin", "-o", "a.tseal", "-r", "service:weights", "--register", "--json"],
    { env },
  );
  assert.equal(s.status, 0, s.stderr);
  const old = JSON.parse(s.stdout.toString()).artifacts[0] as string;

  const r = sb.run(["reseal", "a.tseal", "--json"], { env });
  assert.equal(r.status, 0, r.stderr);
  const file = JSON.parse(r.stdout.toString()).files[0];
  assert.equal(file.outcome, "resealed");
  assert.equal(file.registered.length, 1);
  const next = file.registered[0] as string;

  const reg = registry();
  assert.equal(reg.get(old)!.supersededBy, next, "the old entry is kept and marked superseded");
  assert.ok(reg.get(old)!.superseded);
  assert.equal(reg.get(next)!.supersedes, old);
  assert.equal(reg.get(next)!.location, join(sb.dir, "a.tseal"));
  assert.equal(reg.get(next)!.digest, reg.get(old)!.digest, "same plaintext");
  const o = sb.run(["open", "a.tseal", "-o", "-"], { env });
  assert.equal(o.status, 0, o.stderr);
  assert.ok(o.stdout.equals(plain));

  // The inventory joins the new entry with the file and names the old one as superseded.
  const inv = sb.run(["inventory", "--server", srv.url, sb.dir], { env });
  assert.equal(inv.status, 0, inv.stderr);
  assert.match(inv.stdout.toString(), new RegExp(`registry ${old} \\(superseded by ${next}\\)`));
  const j = sb.run(["inventory", "--server", srv.url, "--json", sb.dir], { env });
  assert.equal(j.status, 0, j.stderr);
  const arts = JSON.parse(j.stdout.toString()).artifacts as {
    file: string | null;
    registry: Entry[];
  }[];
  const onDisk = arts.find((a) => a.file === join(sb.dir, "a.tseal"))!;
  assert.deepEqual(
    onDisk.registry.map((e) => e.id),
    [next],
  );
});

test("a refused registration fails the file and leaves the old one and the registry as they were", () => {
  const s = sb.run(
    ["seal", "m.bin", "-o", "b.tseal", "-r", "service:weights", "--register", "--json"],
    { env },
  );
  assert.equal(s.status, 0, s.stderr);
  const id = JSON.parse(s.stdout.toString()).artifacts[0] as string;
  const before = readFileSync(join(sb.dir, "b.tseal"));
  // New recipients without a stanza of the service: the registry cannot follow the file.
  const r = sb.run(["reseal", "b.tseal", "-r", "kek:default"], { env });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr + r.stdout.toString(), /the old file is left in place/);
  assert.ok(readFileSync(join(sb.dir, "b.tseal")).equals(before), "the old file, byte for byte");
  assert.equal(registry().get(id)!.supersededBy, undefined);
  // The user may choose to leave the service: then the registry is not told.
  const n = sb.run(["reseal", "b.tseal", "-r", "kek:default", "--no-registry"], { env });
  assert.equal(n.status, 0, n.stderr);
  assert.ok(!readFileSync(join(sb.dir, "b.tseal")).equals(before));
});

test("seal --register sends the header: the key's tier refuses a passphrase recipient", () => {
  writeFileSync(join(sb.dir, "pass.txt"), "correct horse battery staple\n");
  const r = sb.run(
    [
      "seal",
      "m.bin",
      "-o",
      "c.tseal",
      "-r",
      "service:conf",
      "--passphrase-file",
      "pass.txt",
      "--register",
    ],
    { env },
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /tier confidential does not allow passphrase recipients/);
  const ok = sb.run(["seal", "m.bin", "-o", "d.tseal", "-r", "service:conf", "--register"], {
    env,
  });
  assert.equal(ok.status, 0, ok.stderr);
});
