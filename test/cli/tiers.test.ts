/**
 * Governance metadata and sensitivity tiers from the command line: `seal --tier --purpose
 * --owner` recorded in the authenticated header (inspect, inventory, tampering fails), the
 * tiers of .tensorseal.yaml (built-in and configured) enforced by seal, seal-dir, rewrap and
 * reseal with exit 2 before anything is written.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CLI, type Sandbox, sandbox } from "./helpers.js";

describe("tensorseal seal --tier --purpose --owner and tiers (CLI)", () => {
  let s: Sandbox;
  let plain: string;
  let pq: string;
  let classic: string;
  const keygen = (file: string, pqKey: boolean) => {
    const r = s.run(["keygen", ...(pqKey ? ["--pq"] : []), "-o", join(s.dir, file), "--json"]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.toString()).recipient as string;
  };
  const inspect = (p: string) => {
    const r = s.run(["inspect", p, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.toString()) as {
      tier: string | null;
      purpose: string | null;
      owner: string | null;
      labels: Record<string, string>;
      stanzas: string[];
    };
  };
  const runIn = (cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...s.env, ...env }, cwd });
    return { status: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };

  before(() => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    plain = join(s.dir, "weights.bin");
    writeFileSync(plain, "weights ".repeat(1000));
    pq = keygen("pq.key", true);
    classic = keygen("x.key", false);
  });
  after(() => s.cleanup());

  test("tier, purpose and owner land in the header: inspect shows them, tampering fails", () => {
    const out = join(s.dir, "meta.tseal");
    const r = s.run([
      "seal",
      plain,
      "-o",
      out,
      "--tier",
      "confidential",
      "--purpose",
      "fraud model, prod",
      "--owner",
      "ml-platform@example.com",
      "-l",
      "team=ml",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const info = inspect(out);
    assert.equal(info.tier, "confidential");
    assert.equal(info.purpose, "fraud model, prod");
    assert.equal(info.owner, "ml-platform@example.com");
    assert.equal(info.labels.team, "ml");
    const text = s.run(["inspect", out]).stdout.toString();
    assert.match(text, /^tier: +confidential$/m);
    assert.match(text, /^owner: +ml-platform@example\.com$/m);
    assert.equal(s.run(["open", out, "-o", join(s.dir, "meta.out")]).status, 0);
    // An attacker lowers the tier in place (same length, still a valid tier name).
    const bytes = readFileSync(out);
    const at = bytes.indexOf(Buffer.from("confidential"));
    assert.ok(at > 0);
    Buffer.from("public-files").copy(bytes, at);
    const forged = join(s.dir, "forged.tseal");
    writeFileSync(forged, bytes);
    assert.equal(inspect(forged).tier, "public-files", "readable without a key...");
    const o = s.run(["open", forged, "-o", join(s.dir, "forged.out")]);
    assert.equal(o.status, 5, o.stderr); // ...but not authentic: E_HEADER_MAC
    assert.match(o.stderr, /header/i);
    assert.equal(existsSync(join(s.dir, "forged.out")), false);
  });

  test("bad metadata and reserved labels are usage errors; an unknown tier is refused", () => {
    const cases: [string[], RegExp][] = [
      [["--tier", "Secret"], /a tier name is/],
      [["--tier", "top-secret"], /unknown tier "top-secret" \(configured: public, internal/],
      [["--owner", "a\u0007b"], /control character/],
      [["-l", "tensorseal:tier=public"], /reserved \(use --tier/],
    ];
    for (const [flags, message] of cases) {
      const out = join(s.dir, "bad.tseal");
      const r = s.run(["seal", plain, "-o", out, ...flags]);
      assert.equal(r.status, 2, flags.join(" "));
      assert.match(r.stderr, message);
      assert.equal(existsSync(out), false);
    }
  });

  test("built-in restricted: no passphrase, no classical x25519, post-quantum accepted", () => {
    const out = join(s.dir, "r.tseal");
    let r = s.run(["seal", plain, "-o", out, "--tier", "restricted", "--passphrase-file", plain]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /tier restricted does not allow passphrase recipients/);
    r = s.run(["seal", plain, "-o", out, "--tier", "restricted", "-r", classic]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /does not allow x25519 recipients.*tseal1pq1/);
    r = s.run(["seal", plain, "-o", out, "--tier", "restricted", "-k", "default"]);
    assert.equal(r.status, 2, "a local keystore key is not an HSM/KMS/service root");
    assert.match(r.stderr, /does not allow kek recipients/);
    assert.equal(existsSync(out), false);
    r = s.run(["seal", plain, "-o", out, "--tier", "restricted", "-r", pq]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(inspect(out).tier, "restricted");
    // confidential takes the classical key but no passphrase
    r = s.run([
      "seal",
      plain,
      "-o",
      join(s.dir, "c.tseal"),
      "--tier",
      "confidential",
      "-r",
      classic,
    ]);
    assert.equal(r.status, 0, r.stderr);
  });

  test("rewrap and reseal keep a file within its tier (exit 2, file unchanged)", () => {
    const file = join(s.dir, "rw.tseal");
    assert.equal(s.run(["seal", plain, "-o", file, "--tier", "restricted", "-r", pq]).status, 0);
    const before = readFileSync(file);
    const id = join(s.dir, "pq.key");
    let r = s.run(["rewrap", file, "-i", id, "--add-recipient", classic]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /rewrapping .* breaks its tier: tier restricted does not allow x25519/);
    assert.deepEqual(readFileSync(file), before);
    r = s.run(["reseal", file, "-i", id, "-r", classic]);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout.toString() + r.stderr, /does not allow x25519/);
    assert.deepEqual(readFileSync(file), before);
    // Within the tier both work.
    const pq2 = keygen("pq2.key", true);
    r = s.run(["rewrap", file, "-i", id, "--add-recipient", pq2]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(inspect(file).stanzas.length, 2);
  });

  test(".tensorseal.yaml: configured tiers, a default tier, a creation rule's tier and rotation", () => {
    const repo = join(s.dir, "repo");
    mkdirSync(join(repo, "cfg"), { recursive: true });
    writeFileSync(
      join(repo, ".tensorseal.yaml"),
      [
        "tiers:",
        "  default: internal",
        "  internal: { allow: [kek, x25519, mlkem768x25519] }",
        "  lab: { allow: [passphrase, kek], rotation_period: 1d }",
        "creation_rules:",
        "  - path_regex: '^cfg/'",
        "    tier: public",
        "    owner: platform",
        "  - path_regex: '.*'",
        "    key: default",
        "",
      ].join("\n"),
    );
    writeFileSync(join(repo, "cfg", "config.json"), "{}");
    writeFileSync(join(repo, "w.bin"), "w");
    let r = runIn(repo, ["seal", "w.bin"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(inspect(join(repo, "w.bin.tseal")).tier, "internal", "the default tier");
    r = runIn(repo, ["seal", "cfg/config.json", "-k", "default"]);
    assert.equal(r.status, 0, r.stderr);
    const cfg = inspect(join(repo, "cfg", "config.json.tseal"));
    assert.deepEqual([cfg.tier, cfg.owner], ["public", "platform"]);
    // The configured internal tier no longer allows passphrases.
    r = runIn(repo, ["seal", "w.bin", "-o", "w2.tseal", "--passphrase-file", plain]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /tier internal does not allow passphrase/);
    // lab: keys must be rotated every day; two days on (the keystore's clock), kek:default is not.
    const later = { TENSORSEAL_NOW: new Date(Date.now() + 2 * 86400_000).toISOString() };
    r = runIn(repo, ["seal", "w.bin", "-o", "w3.tseal", "--tier", "lab", "-k", "default"], later);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /tier lab requires keys rotated every 1d: key default v1 is [12]d old/);
    assert.equal(runIn(repo, ["keys", "rotate", "default"], later).status, 0);
    r = runIn(repo, ["seal", "w.bin", "-o", "w3.tseal", "--tier", "lab", "-k", "default"], later);
    assert.equal(r.status, 0, r.stderr);
    // Strict parsing names the line.
    writeFileSync(join(repo, ".tensorseal.yaml"), "tiers:\n  lab: { allow: [floppy] }\n");
    r = runIn(repo, ["seal", "w.bin", "-o", "w4.tseal"]);
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /\.tensorseal\.yaml:2: tiers\.lab\.allow: unknown recipient kind "floppy"/,
    );
    writeFileSync(join(repo, ".tensorseal.yaml"), "tiers:\n  default: nope\n");
    assert.match(
      runIn(repo, ["seal", "w.bin", "-o", "w4.tseal"]).stderr,
      /tiers.default: no tier "nope"/,
    );
  });

  test("seal-dir: a tier per file pattern, checked for every file before anything is written", () => {
    const repo = join(s.dir, "dirrepo");
    const model = join(repo, "model");
    mkdirSync(model, { recursive: true });
    writeFileSync(join(model, "config.json"), "{}");
    writeFileSync(join(model, "weights.bin"), "w".repeat(5000));
    writeFileSync(
      join(repo, ".tensorseal.yaml"),
      [
        "creation_rules:",
        "  - path_regex: '\\.json$'",
        "    tier: public",
        "  - path_regex: '\\.bin$'",
        "    tier: restricted",
        "    purpose: weights",
        "",
      ].join("\n"),
    );
    let r = runIn(repo, ["seal-dir", "model", "-o", "out1", "-k", "default"]);
    assert.equal(r.status, 2, "restricted weights may not go to a local kek");
    assert.match(r.stderr, /model\/weights\.bin breaks its tier: tier restricted/);
    assert.equal(existsSync(join(repo, "out1")), false);
    r = runIn(repo, ["seal-dir", "model", "-o", "out2", "-r", pq]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(inspect(join(repo, "out2", "config.json.tseal")).tier, "public");
    const w = inspect(join(repo, "out2", "weights.bin.tseal"));
    assert.deepEqual([w.tier, w.purpose], ["restricted", "weights"]);
    // The inventory lists them with their tier (table and JSON).
    const inv = runIn(repo, ["inventory", "out2", "--json"]);
    assert.equal(inv.status, 0, inv.stderr);
    const artifacts = JSON.parse(inv.stdout).artifacts as { file: string; tier: string }[];
    assert.deepEqual(artifacts.map((a) => [a.file.split("/").pop(), a.tier]).sort(), [
      ["config.json.tseal", "public"],
      ["tensorseal-manifest.json.tseal", null],
      ["weights.bin.tseal", "restricted"],
    ]);
    const table = runIn(repo, ["inventory", "out2"]).stdout;
    assert.match(table, /\tTIER\tPURPOSE\tOWNER\tLAST RELEASE$/m);
    assert.match(table, /weights\.bin\.tseal\t.*\trestricted\tweights\t-\t-$/m);
  });

  test("keys set --owner --purpose --tier: stored with the key, shown, removable", () => {
    const show = () => JSON.parse(s.run(["keys", "show", "default", "--json"]).stdout.toString());
    let r = s.run([
      "keys",
      "set",
      "default",
      "--owner",
      "ml-platform",
      "--purpose",
      "prod weights",
      "--tier",
      "confidential",
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.toString(), /tier confidential\towner ml-platform\tpurpose prod weights/);
    const k = show();
    assert.deepEqual([k.owner, k.purpose, k.tier], ["ml-platform", "prod weights", "confidential"]);
    r = s.run(["keys", "set", "default", "--tier", "galactic"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown tier "galactic"/);
    r = s.run(["keys", "set", "default", "--owner", "x\u001b[31m"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /control character/);
    const inv = JSON.parse(s.run(["inventory", "--json"]).stdout.toString());
    const entry = inv.keys.find((x: { name: string }) => x.name === "default");
    assert.deepEqual(
      [entry.owner, entry.purpose, entry.tier],
      ["ml-platform", "prod weights", "confidential"],
    );
    assert.match(
      s.run(["inventory"]).stdout.toString(),
      /^default\tkeystore\t.*\tconfidential\tml-platform\tprod weights$/m,
    );
    assert.equal(s.run(["keys", "set", "default", "--owner", ""]).status, 0);
    assert.equal(show().owner, undefined);
    assert.equal(show().tier, "confidential");
    // The keystore still opens files (metadata has no effect on unwrapping).
    const out = join(s.dir, "after-set.tseal");
    assert.equal(s.run(["seal", plain, "-o", out, "-k", "default"]).status, 0);
    assert.equal(s.run(["open", out, "-o", join(s.dir, "after-set.out")]).status, 0);
  });
});
