/**
 * Governance metadata and sensitivity tiers from the command line: `seal --tier --purpose
 * --owner` recorded in the authenticated header (inspect, inventory, tampering fails), the
 * tiers of .tensorseal.yaml (built-in and configured) enforced by seal, seal-dir, rewrap and
 * reseal with exit 2 before anything is written.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
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
    // The public tier is sealed integrity-only: a key given for it is refused (exit 2), since
    // giving keys means expecting secrecy; without one the file is public (spec §2.5).
    r = runIn(repo, ["seal", "cfg/config.json", "-k", "default"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /tier public is sealed without encryption .* takes no recipients/);
    r = runIn(repo, ["seal", "cfg/config.json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /public \(integrity only, not encrypted; readable by anyone\)/);
    const cfg = inspect(join(repo, "cfg", "config.json.tseal"));
    assert.deepEqual([cfg.tier, cfg.owner], ["public", "platform"]);
    assert.equal((cfg as unknown as { encrypted: boolean }).encrypted, false);
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

  test("public tier: readable with no key, tamper-evident, and never a downgrade of an encrypted file", () => {
    const dir = join(s.dir, "pub");
    mkdirSync(dir, { recursive: true });
    const src = join(dir, "card.md");
    writeFileSync(src, "# model card\n".repeat(5000)); // 65 KB: several 16 KiB chunks
    const sealed = join(dir, "card.md.tseal");
    let r = s.run(["seal", src, "-o", sealed, "--tier", "public", "--chunk-size", "16KiB"]);
    assert.equal(r.status, 0, r.stderr.toString());
    const bytes = readFileSync(sealed);
    assert.ok(bytes.includes(readFileSync(src).subarray(0, 16384)), "the plaintext is in the file");
    // No keystore, no identity: HOME points nowhere.
    const nokey = { ...s.env, TENSORSEAL_HOME: join(dir, "empty-home") };
    const run = (args: string[]) => {
      const p = spawnSync(process.execPath, [CLI, ...args], { env: nokey, cwd: dir });
      return { status: p.status ?? -1, stderr: p.stderr.toString(), stdout: p.stdout };
    };
    r = run(["open", sealed, "-o", join(dir, "out.md")]) as never;
    assert.equal((r as unknown as { status: number }).status, 0);
    assert.deepEqual(readFileSync(join(dir, "out.md")), readFileSync(src));
    assert.equal(run(["verify", sealed]).status, 0);
    assert.deepEqual(run(["open", sealed, "-o", "-"]).stdout, readFileSync(src));
    // --require-encrypted refuses it from the header, with the authentication exit code.
    let o = run(["open", sealed, "-o", join(dir, "x"), "--require-encrypted"]);
    assert.equal(o.status, 5);
    assert.match(o.stderr, /public \(integrity-only, not encrypted\) file/);
    assert.equal(existsSync(join(dir, "x")), false);
    // verify and exec say the same, without asking for a key; verify lists the others' verdicts.
    const v = run(["verify", "--require-encrypted", sealed]);
    assert.equal(v.status, 5);
    assert.match(v.stderr, /E_NOT_ENCRYPTED|public \(integrity-only, not encrypted\) file/);
    const enc0 = join(dir, "enc0.tseal");
    assert.equal(s.run(["seal", plain, "-o", enc0]).status, 0);
    const vj = s.run(["verify", "--require-encrypted", "--json", sealed, enc0]);
    assert.equal(vj.status, 5, vj.stderr.toString());
    assert.deepEqual(
      JSON.parse(vj.stdout.toString()).map((x: { ok: boolean; code?: string }) => [x.ok, x.code]),
      [
        [false, "E_NOT_ENCRYPTED"],
        [true, undefined],
      ],
    );
    const ran = join(dir, "ran");
    const x = run(["exec", "-m", sealed, "--require-encrypted", "--", "touch", ran]);
    assert.equal(x.status, 5, x.stderr);
    assert.match(x.stderr, /public \(integrity-only, not encrypted\) file/);
    assert.equal(existsSync(ran), false, "the command never ran");
    // Tampering: a flipped plaintext byte, a truncation, a chunk moved: refused, nothing written.
    const header = bytes.length - (65000 + 56 + 16 * 4);
    const flipped = Buffer.from(bytes);
    flipped.writeUInt8(flipped.readUInt8(header + 56 + 16400 + 3) ^ 1, header + 56 + 16400 + 3);
    const moved = Buffer.from(bytes);
    bytes.copy(moved, header + 56, header + 56 + 16400, header + 56 + 2 * 16400);
    const cases: [string, Buffer, RegExp][] = [
      ["flip", flipped, /chunk 1 failed its integrity check/],
      ["trunc", bytes.subarray(0, bytes.length - 1), /truncated|records/],
      ["move", moved, /failed its integrity check/],
    ];
    for (const [name, b, why] of cases) {
      const f = join(dir, `${name}.tseal`);
      writeFileSync(f, b);
      o = run(["open", f, "-o", join(dir, `${name}.out`)]);
      assert.equal(o.status, 5, `${name}: ${o.stderr}`);
      assert.match(o.stderr, why, name);
      assert.equal(existsSync(join(dir, `${name}.out`)), false, name);
    }
    // Downgrade: the suite of an encrypted file set to 2 is refused before any key is used.
    const enc = join(dir, "enc.tseal");
    assert.equal(s.run(["seal", plain, "-o", enc]).status, 0);
    const e = readFileSync(enc);
    e[21] = 2;
    writeFileSync(enc, e);
    o = run(["open", enc, "-o", join(dir, "enc.out")]);
    assert.equal(o.status, 3, o.stderr);
    assert.match(o.stderr, /must carry tensorseal:tier = public/);
  });

  test("seal-dir: public files by pattern; a swapped public config or a public shard is refused", () => {
    const repo = join(s.dir, "pubrepo");
    const model = join(repo, "model");
    mkdirSync(model, { recursive: true });
    writeFileSync(join(model, "config.json"), '{"model_type":"toy"}');
    writeFileSync(join(model, "weights.bin"), "w".repeat(5000));
    writeFileSync(
      join(repo, ".tensorseal.yaml"),
      "creation_rules:\n  - path_regex: '\\.json$'\n    tier: public\n",
    );
    const id = join(s.dir, "x.key");
    let r = runIn(repo, ["seal-dir", "model", "-o", "out", "-r", classic]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /1 public: integrity only, not encrypted/);
    const out = join(repo, "out");
    assert.equal(inspect(join(out, "config.json.tseal")).tier, "public");
    // The inventory tells a public file from the encrypted ones, and so does its CBOM.
    const inv = JSON.parse(runIn(repo, ["inventory", "out", "--json"]).stdout);
    assert.deepEqual(
      inv.artifacts
        .map((a: { file: string; encrypted: boolean }) => [basename(a.file), a.encrypted])
        .sort(),
      [
        ["config.json.tseal", false],
        ["tensorseal-manifest.json.tseal", true],
        ["weights.bin.tseal", true],
      ],
    );
    const bom = runIn(repo, ["inventory", "out", "--format", "cyclonedx"]).stdout;
    const cfg = JSON.parse(bom).components.find((c: { name: string }) =>
      c.name.endsWith("config.json.tseal"),
    );
    assert.ok(cfg, bom.slice(0, 300));
    assert.deepEqual(
      cfg.properties.filter((p: { name: string }) => p.name === "tensorseal:encrypted"),
      [{ name: "tensorseal:encrypted", value: "false" }],
    );
    assert.equal(
      cfg.properties.some((p: { name: string }) => p.name === "tensorseal:unknown-recipient"),
      false,
    );
    r = runIn(repo, ["open-dir", "out", "-o", "opened", "-i", id]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(repo, "opened", "config.json"), "utf8"), '{"model_type":"toy"}');
    // An attacker's public file with the right path and model (both public) in place of the
    // config: the manifest's SHA-256, sealed for the recipients, refuses it.
    const ctx = (f: string) => {
      const i = JSON.parse(s.run(["inspect", f, "--json"]).stdout.toString());
      return Object.entries(i.context as Record<string, string>).flatMap(([k, v]) => [
        "--context",
        `${k}=${v}`,
      ]);
    };
    const forged = join(repo, "forged.json");
    writeFileSync(forged, '{"model_type":"bad"}');
    const cfgCtx = ctx(join(out, "config.json.tseal"));
    r = runIn(repo, [
      "seal",
      forged,
      "-o",
      join(out, "config.json.tseal"),
      "-f",
      "--tier",
      "public",
      ...cfgCtx,
    ]);
    assert.equal(r.status, 0, r.stderr);
    r = runIn(repo, ["open-dir", "out", "-o", "opened2", "-i", id]);
    assert.equal(r.status, 5);
    assert.match(
      r.stderr,
      /config\.json\.tseal: plaintext size or SHA-256 does not match the manifest/,
    );
    assert.equal(existsSync(join(repo, "opened2")), false);
    // The manifest is the root of authenticity: a public one (anyone can write it, listing the
    // forged config's digest) is refused before any file is opened.
    const modelId = JSON.parse(
      s.run(["inspect", join(out, "weights.bin.tseal"), "--json"]).stdout.toString(),
    ).context["tensorseal.model"] as string;
    const digest = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
    const weights = readFileSync(join(model, "weights.bin"));
    const forgedManifest = join(repo, "tensorseal-manifest.json");
    writeFileSync(
      forgedManifest,
      JSON.stringify({
        version: 1,
        model: modelId,
        files: [
          {
            path: "config.json",
            size: 20,
            sha256: digest('{"model_type":"bad"}'),
            encrypted: false,
          },
          { path: "weights.bin", size: weights.length, sha256: digest(weights) },
        ],
      }),
    );
    r = runIn(repo, [
      "seal",
      forgedManifest,
      "-o",
      join(out, "tensorseal-manifest.json.tseal"),
      "-f",
      "--tier",
      "public",
      "--context",
      "tensorseal.path=tensorseal-manifest.json",
      "--context",
      `tensorseal.model=${modelId}`,
    ]);
    assert.equal(r.status, 0, r.stderr);
    r = runIn(repo, ["open-dir", "out", "-o", "opened5", "-i", id]);
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stderr, /tensorseal-manifest\.json\.tseal: a public \(integrity-only/);
    assert.equal(existsSync(join(repo, "opened5")), false);
    // Signed provenance covers public files too: the swapped config is refused by the signature
    // before anything is decrypted, and also by verify --require-signer with no key at all.
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const priv = join(repo, "producer.pem");
    const pub = join(repo, "producer.pub");
    writeFileSync(priv, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    writeFileSync(pub, publicKey.export({ type: "spki", format: "pem" }));
    r = runIn(repo, ["seal-dir", "model", "-o", "signed", "-r", classic, "--sign", priv]);
    assert.equal(r.status, 0, r.stderr);
    r = runIn(repo, ["verify", "--require-signer", pub, "signed"]);
    assert.equal(r.status, 0, r.stderr);
    const signedCtx = ctx(join(repo, "signed", "config.json.tseal"));
    r = runIn(repo, [
      "seal",
      forged,
      "-o",
      join(repo, "signed", "config.json.tseal"),
      "-f",
      "--tier",
      "public",
      ...signedCtx,
    ]);
    assert.equal(r.status, 0, r.stderr);
    r = runIn(repo, ["verify", "--require-signer", pub, "signed"]);
    assert.equal(r.status, 5);
    assert.match(r.stderr + r.stdout, /config\.json\.tseal is not the signed file/);
    r = runIn(repo, ["open-dir", "signed", "-o", "opened4", "-i", id, "--require-signer", pub]);
    assert.equal(r.status, 5);
    assert.match(r.stderr, /config\.json\.tseal is not the signed file/);
    // A public file in place of the encrypted weights: refused as not encrypted.
    r = runIn(repo, ["seal-dir", "model", "-o", "out3", "-r", classic]);
    assert.equal(r.status, 0, r.stderr);
    const wCtx = ctx(join(repo, "out3", "weights.bin.tseal"));
    r = runIn(repo, [
      "seal",
      join(model, "weights.bin"),
      "-o",
      join(repo, "out3", "weights.bin.tseal"),
      "-f",
      "--tier",
      "public",
      ...wCtx,
    ]);
    assert.equal(r.status, 0, r.stderr);
    r = runIn(repo, ["open-dir", "out3", "-o", "opened3", "-i", id]);
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stderr, /weights\.bin\.tseal: a public \(integrity-only, not encrypted\) file/);
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
