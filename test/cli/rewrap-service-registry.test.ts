/**
 * `rewrap --to-latest --registry` against a real key service on loopback (`serve --dev`): the
 * campaign takes the registered artifacts on old versions from the service's inventory,
 * rewraps their files (only the registered key's stanza moves), moves each registration to the
 * new stanza (the inventory then shows the new version, and unwraps of the new stanza are
 * decided with the artifact), and reports the artifacts it could not reach. An interrupted run
 * (file rewritten, registration not moved) is finished from the journal; without a journal such
 * a file is reported, not guessed.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseHeader } from "../../src/format/header.js";
import { parseServiceStanza, stanzaToWire } from "../../src/keys/service/stanza.js";
import { cliToken, type ServeProcess, servedKeystore } from "../service/serve-process.js";
import { type Sandbox, sandbox } from "./helpers.js";

let sb: Sandbox;
let srv: ServeProcess;
let env: NodeJS.ProcessEnv;
const plain = randomBytes(40_000);
/** Artifact id by file name. */
const ids = new Map<string, string>();

const serviceStanzas = (name: string) =>
  parseHeader(readFileSync(join(sb.dir, name))).stanzas.filter((s) => s.type === "service");
const versions = (name: string) => serviceStanzas(name).map((s) => parseServiceStanza(s).version);

function inventory(): Map<string, number> {
  const r = sb.run(["service", "artifacts", "list", "--json"], { env });
  assert.equal(r.status, 0, r.stderr);
  const all = JSON.parse(r.stdout.toString()) as { id: string; version: number }[];
  return new Map(all.map((a) => [a.id, a.version]));
}

function campaign(extra: string[] = []) {
  const r = sb.run(["rewrap", "--to-latest", "--registry", "--json", ...extra], { env });
  return {
    status: r.status,
    stderr: r.stderr,
    j: r.stdout.length ? JSON.parse(r.stdout.toString()) : null,
  };
}

const token = (scopes: string) => cliToken(sb, scopes);

before(async () => {
  sb = sandbox();
  ({ srv, env } = await servedKeystore(sb, "admin,wrap,unwrap,rewrap"));
  for (const k of ["weights", "other"])
    assert.equal(sb.run(["service", "keys", "create", k], { env }).status, 0);
  writeFileSync(join(sb.dir, "m.bin"), plain);
  for (const [name, args] of [
    ["a.tseal", ["-r", "service:weights"]],
    ["b.tseal", ["-r", "service:weights", "-k", "default"]],
    ["gone.tseal", ["-r", "service:weights"]],
    ["o.tseal", ["-r", "service:other"]],
  ] as const) {
    const s = sb.run(["seal", "m.bin", "-o", name, ...args, "--register", "--json"], { env });
    assert.equal(s.status, 0, s.stderr);
    ids.set(name, JSON.parse(s.stdout.toString()).artifacts[0]);
  }
  rmSync(join(sb.dir, "gone.tseal"));
});

after(async () => {
  await srv?.stop();
  sb?.cleanup();
});

test("the registry campaign rewraps reachable artifacts, moves registrations, reports the rest", () => {
  assert.equal(sb.run(["service", "keys", "rotate", "weights"], { env }).status, 0);
  const { status, stderr, j } = campaign();
  assert.equal(status, 0, stderr);
  assert.equal(j.due, 3, "a, b and gone are on weights v1; other is current");
  assert.equal(j.rewrapped, 2);
  assert.equal(j.failed, 0);
  assert.deepEqual(
    j.stillOld.map((s: { artifact: string; reason: string }) => [s.artifact, s.reason]),
    [[ids.get("gone.tseal"), `no file at ${join(sb.dir, "gone.tseal")} here`]],
  );
  assert.deepEqual(versions("a.tseal"), [2]);
  assert.deepEqual(versions("b.tseal"), [2]);
  assert.deepEqual(versions("o.tseal"), [1], "another key's artifact is left alone");
  const inv = inventory();
  assert.equal(inv.get(ids.get("a.tseal")!), 2, "the registration moved with the file");
  assert.equal(inv.get(ids.get("b.tseal")!), 2);
  assert.equal(inv.get(ids.get("gone.tseal")!), 1);
  // The unwrap of the moved stanza is decided with its artifact (the audit names it).
  const unwraps = () => {
    const q = sb.run(
      [
        "audit",
        "query",
        "--artifact",
        ids.get("a.tseal")!,
        "--action",
        "datakeys.unwrap",
        "--json",
      ],
      { env },
    );
    assert.equal(q.status, 0, q.stderr);
    return q.stdout.toString().split("datakeys.unwrap").length;
  };
  const before = unwraps();
  for (const f of ["a.tseal", "b.tseal"]) {
    const o = sb.run(["open", f, "-o", "-"], { env });
    assert.equal(o.status, 0, o.stderr);
    assert.ok(o.stdout.equals(plain));
  }
  assert.ok(unwraps() > before, "the open of a.tseal's new stanza is filed under its artifact");
  // The text report names what is still old.
  const t = sb.run(["rewrap", "--to-latest", "--registry"], { env });
  assert.equal(t.status, 0, t.stderr);
  assert.match(
    t.stdout.toString() + t.stderr,
    /still on weights v1 \(primary v2\): \S+ at \S+gone\.tseal: no file at/,
  );
  assert.match(
    t.stdout.toString() + t.stderr,
    /1 registered artifact on old versions: rewrapped 0, failed 0; still on old versions: 1/,
  );
});

test("an interrupted run is finished from the journal; without one the file is reported", () => {
  assert.equal(sb.run(["service", "keys", "rotate", "weights"], { env }).status, 0);
  // Interrupted after rewriting a.tseal, before moving its registration: the journal holds the
  // registered stanza, the file is already on v3 (a plain rewrap that leaves the registry,
  // --no-registry, does that part).
  const journal = join(sb.dir, "registry.journal");
  const old = serviceStanzas("a.tseal")[0]!;
  writeFileSync(
    journal,
    `${JSON.stringify({ journal: "tensorseal-rewrap-registry", version: 1 })}\n${JSON.stringify({ artifact: ids.get("a.tseal"), from: stanzaToWire(old) })}\n`,
  );
  for (const f of ["a.tseal", "b.tseal"]) {
    const r = sb.run(["rewrap", "--to-latest", f, "--no-registry"], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(versions(f), [3]);
  }
  const { status, stderr, j } = campaign(["--journal", journal]);
  assert.equal(status, 0, stderr);
  assert.equal(j.resumed, 1, "a's registration moved from the journal");
  assert.equal(j.rewrapped, 0);
  const inv = inventory();
  assert.equal(inv.get(ids.get("a.tseal")!), 3);
  assert.equal(inv.get(ids.get("b.tseal")!), 2, "b: no journal entry, nothing proves the move");
  const b = j.stillOld.find((s: { artifact: string }) => s.artifact === ids.get("b.tseal"));
  assert.match(
    b.reason,
    /the file holds no stanza of weights v2 \(resealed or replaced\? register it again\)/,
  );
  assert.equal(
    (() => {
      try {
        readFileSync(journal);
        return "kept";
      } catch {
        return "removed";
      }
    })(),
    "removed",
    "no failures: the journal is removed",
  );
});

test("usage errors: --registry needs --to-latest, no paths, and a key service", () => {
  let r = sb.run(["rewrap", "--registry"], { env });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--registry goes with --to-latest/);
  r = sb.run(["rewrap", "--to-latest", "--registry", "a.tseal"], { env });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /pass no PATHS/);
  r = sb.run(["rewrap", "--to-latest", "--registry"], { env: { TENSORSEAL_SERVER: "" } });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /needs the key service/);
  // A token that may not list keys cannot tell old from current: refused, nothing rewritten.
  r = sb.run(["rewrap", "--to-latest", "--registry"], {
    env: { ...env, TENSORSEAL_SERVER_TOKEN: token("reader,wrap,rewrap,unwrap") },
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /needs a token that may list keys/);
});
