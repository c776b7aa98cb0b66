/**
 * `tensorseal inventory` over real sealed files made by the CLI: keys and their versions with
 * the number of files on each, a rotated key and its rotation due date, a file that is not
 * sealed skipped whatever its name, a sealed file found whatever its name, the JSON shape, the
 * CycloneDX 1.6 CBOM validated by the CycloneDX library's own strict validator, and no secret
 * (key material, passphrase, identity) anywhere in any output.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, sep } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Spec, Validation } from "@cyclonedx/cyclonedx-library";
import type { Inventory } from "../../src/inventory/index.js";
import { type Sandbox, sandbox } from "./helpers.js";

const START = Date.now();
const plusDays = (d: number) => new Date(START + d * 86400_000).toISOString();
const at = (iso: string) => ({ TENSORSEAL_NOW: iso });
const PASSPHRASE = "correct horse inventory staple";

interface CbomComponent {
  type: string;
  name: string;
  version?: string;
  "bom-ref": string;
  properties?: { name: string; value: string }[];
  cryptoProperties?: {
    assetType: string;
    algorithmProperties?: Record<string, unknown>;
    relatedCryptoMaterialProperties?: Record<string, unknown>;
  };
}
interface Cbom {
  specVersion: string;
  components: CbomComponent[];
  dependencies: { ref: string; dependsOn?: string[] }[];
}

describe("tensorseal inventory", () => {
  let s: Sandbox;
  let dir: string;
  let identitySecret: string;
  let pqSecret: string;
  const files: Record<string, string> = {};

  const seal = (name: string, out: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
    const plain = join(dir, `${name}.bin`);
    writeFileSync(plain, randomBytes(1000 + name.length));
    const r = s.run(["seal", plain, "-o", out, ...args], { env: { ...at(plusDays(0)), ...env } });
    assert.equal(r.status, 0, r.stderr);
    files[name] = out;
  };

  before(() => {
    s = sandbox();
    dir = join(s.dir, "models");
    mkdirSync(join(dir, "sub"), { recursive: true });
    const t0 = { env: at(plusDays(0)) };
    assert.equal(s.run(["init"], t0).status, 0);
    assert.equal(s.run(["keys", "create", "models"], t0).status, 0);
    assert.equal(s.run(["keys", "set", "models", "--rotation-period", "1d"], t0).status, 0);
    // models v1: one file, named like a plain data file (found by its magic bytes).
    seal("old", join(dir, "sub", "weights.data"), [
      "-k",
      "models",
      "-l",
      "team=ml",
      "-c",
      "tenant=acme",
    ]);
    assert.equal(s.run(["keys", "rotate", "models"], t0).status, 0);
    // models v2: two files.
    seal("new1", join(dir, "new1.tseal"), ["-k", "models"]);
    seal("new2", join(dir, "new2.tseal"), ["-k", "models"]);
    // default v1 with a public-key, a post-quantum and a passphrase recipient too.
    assert.equal(s.run(["keygen", "-o", join(s.dir, "id.txt")]).status, 0);
    assert.equal(s.run(["keygen", "--pq", "-o", join(s.dir, "pq.txt")]).status, 0);
    identitySecret = readFileSync(join(s.dir, "id.txt"), "utf8");
    pqSecret = readFileSync(join(s.dir, "pq.txt"), "utf8");
    const recipient = (f: string) => /^# recipient: (\S+)$/m.exec(readFileSync(f, "utf8"))?.[1];
    const x = recipient(join(s.dir, "id.txt"));
    const pq = recipient(join(s.dir, "pq.txt"));
    if (!x?.startsWith("tseal1") || !pq?.startsWith("tseal1pq1")) throw new Error("no recipient");
    seal(
      "shared",
      join(dir, "shared.tseal"),
      ["-k", "default", "-r", x, "-r", pq, "--passphrase"],
      {
        TENSORSEAL_PASSPHRASE: PASSPHRASE,
      },
    );
    // Not sealed: a text file, and the plaintexts left next to the sealed files.
    writeFileSync(join(dir, "README.md"), "not sealed\n");
  });
  after(() => s.cleanup());

  const inventory = (args: string[], days = 2) => {
    const r = s.run(["inventory", ...args], { env: at(plusDays(days)) });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.toString("utf8");
  };

  test("JSON: keys with files per version, rotation due, artifacts, skipped files", () => {
    const inv = JSON.parse(inventory(["--json", dir])) as Inventory;
    const key = (provider: string, name: string) =>
      inv.keys.find((k) => k.provider === provider && k.name === name);
    const models = key("keystore", "models");
    assert.ok(models);
    assert.equal(models.primaryVersion, 2);
    assert.deepEqual(
      models.versions.map((v) => [v.version, v.state, v.files]),
      [
        [1, "enabled", 1],
        [2, "enabled", 2],
      ],
    );
    assert.equal(models.files, 3);
    // Its own period of one day, from the primary (v2) version's creation; two days on: overdue.
    const v2 = models.versions.find((v) => v.version === 2)!;
    assert.equal(models.rotationPeriod, 86400);
    assert.equal(models.rotationDueFrom, "key");
    assert.equal(Date.parse(models.rotationDue!), Date.parse(v2.created!) + 86400_000);
    assert.equal(models.rotationOverdue, true);
    const def = key("keystore", "default");
    assert.ok(def);
    assert.deepEqual(
      def.versions.map((v) => [v.version, v.files]),
      [[1, 1]],
    );
    assert.equal(def.rotationDueFrom, "default");
    assert.equal(def.rotationOverdue, false);
    assert.equal(
      Date.parse(def.rotationDue!),
      Date.parse(def.versions[0]!.created!) + 365 * 86400_000,
    );
    // The public-key recipients are keys the files name (the keystore does not list them).
    for (const provider of ["x25519", "mlkem768x25519"]) {
      const k = inv.keys.find((x) => x.provider === provider);
      assert.ok(k, provider);
      assert.equal(k.listed, false);
      assert.equal(k.files, 1);
    }

    assert.deepEqual(inv.artifacts.map((a) => a.file).sort(), Object.values(files).sort());
    const old = inv.artifacts.find((a) => a.file === files.old)!;
    assert.deepEqual(old.protectors, [{ kind: "kek", key: "models", version: 1 }]);
    assert.deepEqual(old.recipients, ["kek models version 1"]);
    assert.deepEqual(old.labels, { team: "ml" });
    assert.deepEqual(old.context, { tenant: "acme" });
    assert.equal(old.plaintextLength, 1003);
    assert.match(old.headerDigest!, /^sha256:[0-9a-f]{64}$/);
    assert.equal(old.lastRelease, undefined, "no server: no release asked");
    const shared = inv.artifacts.find((a) => a.file === files.shared)!;
    assert.deepEqual(
      shared.protectors.map((p) => p.kind),
      ["kek", "x25519", "mlkem768x25519", "passphrase"],
    );
    assert.match(shared.recipients[1]!, /^x25519 recipient \(tag [0-9a-f]{16}\)$/);
    assert.match(shared.recipients[3]!, /^passphrase \(scrypt work factor 2\^\d+\)$/);
    // Each header digest is its own file's.
    assert.equal(new Set(inv.artifacts.map((a) => a.headerDigest)).size, 4);

    const skipped = inv.skipped.map((x) => x.file.slice(dir.length + 1)).sort();
    assert.deepEqual(skipped, ["README.md", "new1.bin", "new2.bin", "old.bin", "shared.bin"]);
    assert.ok(inv.skipped.every((x) => x.reason.startsWith("not sealed")));
    assert.equal(inv.keystore?.verified, true);
    assert.deepEqual(inv.notes, []);
  });

  test("a rewrap to the latest version moves the counts", () => {
    const copy = join(s.dir, "copy");
    mkdirSync(copy);
    writeFileSync(join(copy, "w.data"), readFileSync(files.old!));
    const before = JSON.parse(inventory(["--json", copy])) as Inventory;
    const versions = (inv: Inventory) =>
      inv.keys.find((k) => k.name === "models")!.versions.map((v) => [v.version, v.files]);
    assert.deepEqual(versions(before), [
      [1, 1],
      [2, 0],
    ]);
    const r = s.run(["rewrap", "--to-latest", join(copy, "w.data")], { env: at(plusDays(2)) });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(versions(JSON.parse(inventory(["--json", copy])) as Inventory), [
      [1, 0],
      [2, 1],
    ]);
  });

  test("table: a row per key version, a row per artifact, the skipped files", () => {
    const out = inventory([dir]);
    const rows = out
      .trimEnd()
      .split("\n")
      .map((l) => l.split("\t"));
    assert.deepEqual(rows[0], [
      "KEY",
      "PROVIDER",
      "VERSION",
      "STATE",
      "CREATED",
      "FILES",
      "ROTATION DUE",
      "TIER",
      "OWNER",
      "PURPOSE",
    ]);
    const v2 = rows.find((r) => r[0] === "models" && r[2] === "v2 (primary)");
    assert.ok(v2, out);
    assert.equal(v2[5], "2");
    assert.match(v2[6]!, /OVERDUE$/);
    const old = rows.find((r) => r[0] === files.old);
    assert.ok(old, out);
    assert.equal(old[1], "kek:models@v1");
    assert.match(old[6]!, /^sha256:[0-9a-f]{64}$/);
    assert.ok(rows.some((r) => r[0] === join(dir, "README.md") && /^not sealed/.test(r[1]!)));
  });

  test("CycloneDX 1.6 CBOM: valid, algorithms, keys, artifacts and their dependencies", async () => {
    const text = inventory(["--format", "cyclonedx", dir]);
    const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot6);
    assert.equal(await validator.validate(text), null);
    const bom = JSON.parse(text) as Cbom;
    assert.equal(bom.specVersion, "1.6");
    const byRef = new Map(bom.components.map((c) => [c["bom-ref"], c]));
    const algorithms = bom.components
      .filter((c) => c.cryptoProperties?.assetType === "algorithm")
      .map((c) => c.name)
      .sort();
    assert.deepEqual(algorithms, [
      "AES-256-GCM",
      "HKDF-SHA-256",
      "HKDF-SHA-512",
      "HPKE DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM",
      "HPKE X-Wing (ML-KEM-768 + X25519), HKDF-SHA256, AES-256-GCM",
      "scrypt",
    ]);
    const aes = bom.components.find((c) => c.name === "AES-256-GCM")!;
    assert.deepEqual(
      [
        aes.cryptoProperties?.algorithmProperties?.primitive,
        aes.cryptoProperties?.algorithmProperties?.mode,
      ],
      ["ae", "gcm"],
    );
    const keys = bom.components.filter(
      (c) => c.cryptoProperties?.assetType === "related-crypto-material",
    );
    const v1 = keys.find((c) => c.name === "models" && c.version === "1")!;
    assert.deepEqual(v1.cryptoProperties?.relatedCryptoMaterialProperties?.type, "secret-key");
    assert.equal(v1.cryptoProperties?.relatedCryptoMaterialProperties?.state, "active");
    const prop = (c: CbomComponent, n: string) => c.properties?.find((p) => p.name === n)?.value;
    assert.equal(prop(v1, "tensorseal:provider"), "keystore");
    assert.equal(prop(v1, "tensorseal:files"), "1");
    const v2 = keys.find((c) => c.name === "models" && c.version === "2")!;
    assert.equal(prop(v2, "tensorseal:rotation-overdue"), "true");
    assert.equal(
      keys.find((c) => c.name === "passphrase")?.cryptoProperties?.relatedCryptoMaterialProperties
        ?.type,
      "password",
    );
    // The artifacts depend on their keys and on the payload algorithms.
    const deps = new Map(bom.dependencies.map((d) => [d.ref, d.dependsOn ?? []]));
    const fileRef = (f: string) =>
      bom.components.find((c) => c.type === "file" && c.name === f)!["bom-ref"];
    const names = (ref: string) =>
      deps
        .get(ref)!
        .map((r) => {
          const c = byRef.get(r)!;
          return c.version ? `${c.name}@${c.version}` : c.name;
        })
        .sort();
    assert.deepEqual(names(fileRef(files.old!)), ["AES-256-GCM", "HKDF-SHA-512", "models@1"]);
    assert.equal(names(fileRef(files.new1!)).includes("models@2"), true);
    const shared = names(fileRef(files.shared!));
    assert.ok(shared.includes("default@1") && shared.includes("passphrase"), shared.join());
    assert.equal(shared.length, 6, shared.join());
    // The post-quantum recipient's key depends on X-Wing.
    const pqKey = keys.find((c) => prop(c, "tensorseal:provider") === "mlkem768x25519")!;
    assert.deepEqual(names(pqKey["bom-ref"]), [
      "HPKE X-Wing (ML-KEM-768 + X25519), HKDF-SHA256, AES-256-GCM",
    ]);
    const old = bom.components.find((c) => c.name === files.old)!;
    assert.equal(prop(old, "tensorseal:label:team"), "ml");
    assert.match(prop(old, "tensorseal:header-digest")!, /^sha256:[0-9a-f]{64}$/);
    // The validator does reject a CBOM whose crypto properties break the 1.6 schema.
    aes.cryptoProperties!.assetType = "spell";
    assert.notEqual(await validator.validate(JSON.stringify(bom)), null);
  });

  test("no secret in any output: no key material, passphrase or identity", () => {
    const rootKey = readFileSync(s.env.TENSORSEAL_ROOT_KEY_FILE!, "utf8").trim();
    const secrets = [
      PASSPHRASE,
      rootKey,
      Buffer.from(rootKey, "hex").toString("base64"),
      ...identitySecret.split("\n").filter((l) => /^TSEAL-SECRET-KEY/.test(l)),
      ...pqSecret.split("\n").filter((l) => /^TSEAL-SECRET-KEY/.test(l)),
    ];
    assert.equal(secrets.length, 5);
    for (const args of [[], ["--json"], ["--format", "cyclonedx"]]) {
      const out = inventory([...args, dir]).toUpperCase();
      for (const secret of secrets) assert.ok(!out.includes(secret.toUpperCase()), args.join());
      assert.ok(!out.includes("TSEAL-SECRET-KEY"));
    }
  });

  test("a damaged sealed file is skipped with why; an unreachable server is exit 8", () => {
    const odd = join(s.dir, "odd");
    mkdirSync(odd);
    // The magic bytes, then a prefix that cannot be read.
    writeFileSync(
      join(odd, "broken.bin"),
      Buffer.from("\x89TSEAL\r\n\x01\0\0\0garbage!", "latin1"),
    );
    writeFileSync(join(odd, "ok.tseal"), readFileSync(files.new1!));
    const inv = JSON.parse(inventory(["--json", odd])) as Inventory;
    assert.deepEqual(
      inv.artifacts.map((a) => a.file),
      [join(odd, "ok.tseal")],
    );
    assert.equal(inv.skipped.length, 1);
    assert.equal(inv.skipped[0]!.file, join(odd, "broken.bin"));
    assert.match(inv.skipped[0]!.reason, /^unreadable header \(E_MALFORMED: /);
    const r = s.run(["inventory", "--server", "https://127.0.0.1:9", odd]);
    assert.equal(r.status, 8, r.stderr);
    assert.match(r.stderr, /unreachable/);
    assert.equal(r.stdout.length, 0);
  });

  test("usage errors: unknown format, --json with cyclonedx, a missing path", () => {
    const bad = (args: string[], re: RegExp) => {
      const r = s.run(["inventory", ...args]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, re);
      assert.equal(r.stdout.length, 0);
    };
    bad(["--format", "xml", dir], /--format must be table, json or cyclonedx/);
    bad(["--json", "--format", "cyclonedx", dir], /contradictory/);
    const missing = s.run(["inventory", join(s.dir, "nowhere")]);
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /no such file or directory/);
  });
});

test("the registration loads no inventory module; the action does, the CycloneDX library only for the CBOM", () => {
  const here = dirname(fileURLToPath(import.meta.url));
  const src = join(here, "..", "..", "src");
  const loadedFrom = (entry: string) =>
    JSON.parse(
      execFileSync(process.execPath, [join(here, "..", "package", "loaded-modules.js"), entry], {
        encoding: "utf8",
      }),
    ) as string[];
  const inventoryDir = `${join(src, "inventory")}${sep}`;
  const registration = loadedFrom(join(src, "cli", "commands", "inventory.js"));
  assert.deepEqual(
    registration.filter(
      (m) =>
        m.startsWith(inventoryDir) ||
        m === join(src, "cli", "actions", "inventory.js") ||
        m.includes("cyclonedx"),
    ),
    [],
  );
  // The action's module loads the inventory (the hook sees what it imports), not the library.
  const action = loadedFrom(join(src, "cli", "actions", "inventory.js"));
  assert.ok(action.includes(join(src, "inventory", "run.js")));
  assert.deepEqual(
    action.filter((m) => m.includes("cyclonedx") || m === join(src, "inventory", "cbom.js")),
    [],
  );
});
