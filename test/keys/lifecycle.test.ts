import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { isTensorSealError } from "../../src/format/errors.js";
import { openMessage, readHeader, sealMessage } from "../../src/format/message.js";
import { unlockFileKey } from "../../src/format/unlock.js";
import { parseKekStanza } from "../../src/keys/kek.js";
import { Keystore } from "../../src/keys/keystore.js";
import {
  generateX25519Identity,
  parseX25519Identity,
  parseX25519Recipient,
} from "../../src/keys/x25519.js";

const PW = { passphrase: "pw", workFactor: 10 };
const DAY = 86400_000;
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function home(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "tseal-lc-"));
  dirs.push(d);
  return join(d, "home");
}
const code = (c: string, re?: RegExp) => (e: unknown) =>
  isTensorSealError(e) && e.code === c && (!re || re.test(e.message));

class Clock {
  t = Date.parse("2030-01-01T00:00:00Z");
  now = () => new Date(this.t);
  advance(ms: number) {
    this.t += ms;
  }
}

async function sealUnder(ks: Keystore, names: string[], extra = [] as const) {
  const fileKey = randomBytes(32);
  const stanzas = [];
  for (const n of names) stanzas.push(await ks.recipient(n).wrap(fileKey));
  for (const r of extra) stanzas.push(r);
  const plain = randomBytes(100);
  return { file: sealMessage(plain, fileKey, stanzas), plain };
}

async function openWith(ks: Keystore, file: Buffer): Promise<Buffer> {
  const header = readHeader(file);
  const fk = await unlockFileKey(header, [ks.identity()]);
  return openMessage(file, header, fk);
}

describe("keystore lifecycle: operations", () => {
  it("version 1 files are read and migrated to version 2 by the next write", async () => {
    const h = await home();
    const ks = await Keystore.init(h, PW);
    await ks.createKey("k");
    const { file, plain } = await sealUnder(ks, ["k"]);
    await ks.flush();
    // Rewrite the file as version 1 would have: same material, v1 fields, MAC over them.
    const { canonicalJson } = await import("../../src/keys/canonical-json.js");
    const { keystoreMacKey } = await import("../../src/keys/root-key.js");
    const { createHmac } = await import("node:crypto");
    const doc = JSON.parse(await readFile(join(h, "keystore.json"), "utf8"));
    const v1 = {
      format: doc.format,
      version: 1,
      root: doc.root,
      keys: doc.keys.map((k: Record<string, unknown>) => ({
        name: k.name,
        created: k.created,
        primary: k.primary,
        versions: (k.versions as Record<string, unknown>[]).map((v) => ({
          version: v.version,
          created: v.created,
          nonce: v.nonce,
          material: v.material,
        })),
      })),
    };
    // The root key is only reachable through the passphrase: recover it for the MAC.
    const { openRootWithPassphrase } = await import("../../src/keys/root-key.js");
    const root = (await openRootWithPassphrase(
      {
        logN: doc.root.logN,
        r: doc.root.r,
        p: doc.root.p,
        salt: Buffer.from(doc.root.salt, "base64"),
        nonce: Buffer.from(doc.root.nonce, "base64"),
        sealed: Buffer.from(doc.root.sealed, "base64"),
      },
      "pw",
    ))!;
    const mk = keystoreMacKey(root);
    const mac = createHmac("sha256", mk).update(canonicalJson(v1)).digest("base64");
    await writeFile(join(h, "keystore.json"), JSON.stringify({ ...v1, mac }));
    const old = await Keystore.open(h, PW);
    assert.equal(old.showKey("k").versions[0]!.state, "enabled");
    assert.ok((await openWith(old, file)).equals(plain));
    await old.rotateKey("k");
    const written = JSON.parse(await readFile(join(h, "keystore.json"), "utf8"));
    assert.equal(written.version, 2);
    assert.equal(written.keys[0].versions[1].state, "enabled");
    assert.ok((await openWith(await Keystore.open(h, PW), file)).equals(plain));
  });

  it("refusals name key, version and the fix; a usable later stanza still opens", async () => {
    const clock = new Clock();
    const ks = await Keystore.init(await home(), PW, { now: clock.now });
    await ks.createKey("a");
    await ks.createKey("b");
    const onlyA = await sealUnder(ks, ["a"]);
    const aThenB = await sealUnder(ks, ["a", "b"]);
    await ks.rotateKey("a");
    await ks.setKey("a", { minDecryptionVersion: 2 });
    await assert.rejects(
      openWith(ks, onlyA.file),
      code(
        "E_KEY_STATE",
        /version 1 of key a is below its min_decryption_version 2: rewrap it: `tensorseal rewrap --to-latest FILE`/,
      ),
    );
    // The a stanza comes first and is refused; the b stanza opens the file.
    assert.ok((await openWith(ks, aThenB.file)).equals(aThenB.plain));
    // The rewrap purpose may use a version below the minimum (never a disabled one).
    const header = readHeader(onlyA.file);
    const fk = await unlockFileKey(header, [ks.identity({ purpose: "rewrap" })]);
    assert.equal(fk.length, 32);
    await ks.setKey("a", { minDecryptionVersion: 1 });
    await ks.disableVersion("a", 1);
    await assert.rejects(
      openWith(ks, onlyA.file),
      code("E_KEY_STATE", /version 1 of key a is disabled: enable it/),
    );
    await assert.rejects(
      unlockFileKey(header, [ks.identity({ purpose: "rewrap" })]),
      code("E_KEY_STATE"),
    );
    await ks.scheduleDestroy("a", 1);
    await assert.rejects(
      openWith(ks, onlyA.file),
      code("E_KEY_STATE", /scheduled for destruction/),
    );
    clock.advance(7 * DAY + 1);
    assert.deepEqual(await ks.purge(), [{ name: "a", version: 1 }]);
    await assert.rejects(
      openWith(ks, onlyA.file),
      code(
        "E_KEY_STATE",
        /version 1 of key a was destroyed on 2030-01-08T00:00:00.001Z: files wrapped only under it can never be opened again/,
      ),
    );
    assert.ok((await openWith(ks, aThenB.file)).equals(aThenB.plain));
  });

  it("a real unwrap failure still stops the search (no trying past a bad stanza)", async () => {
    const ks = await Keystore.init(await home(), PW);
    await ks.createKey("a");
    const other = await Keystore.init(await home(), PW);
    await other.createKey("a");
    await other.createKey("b");
    // other's a-stanza first (does not open with ks's a v1), then b which ks does not hold.
    const f = await sealUnder(other, ["a", "b"]);
    await assert.rejects(openWith(ks, f.file), code("E_DECRYPT"));
  });

  it("state-machine guards: the primary cannot be disabled or destroyed; cancel leaves it disabled", async () => {
    const clock = new Clock();
    const ks = await Keystore.init(await home(), PW, { now: clock.now });
    await ks.createKey("k");
    await assert.rejects(
      ks.disableVersion("k", 1),
      code("E_USAGE", /primary version; rotate first/),
    );
    await assert.rejects(ks.scheduleDestroy("k", 1), code("E_USAGE", /primary/));
    await ks.rotateKey("k");
    await ks.scheduleDestroy("k", 1, 3);
    assert.equal(ks.showKey("k").versions[0]!.destroyAfter, "2030-01-04T00:00:00.000Z");
    await assert.rejects(ks.enableVersion("k", 1), code("E_USAGE", /cancel a scheduled destroy/));
    await ks.cancelDestroy("k", 1);
    assert.equal(ks.showKey("k").versions[0]!.state, "disabled");
    await ks.enableVersion("k", 1);
    await assert.rejects(ks.scheduleDestroy("k", 1, 0), code("E_USAGE", /1\.\.365/));
    await assert.rejects(ks.setKey("k", { minDecryptionVersion: 3 }), code("E_USAGE", /1\.\.2/));
  });

  it("rotate-due rotates keys whose period elapsed, and only those", async () => {
    const clock = new Clock();
    const ks = await Keystore.init(await home(), PW, { now: clock.now });
    await ks.createKey("fast");
    await ks.createKey("never");
    await ks.setKey("fast", { rotationPeriod: 90 * 86400 });
    assert.deepEqual(await ks.rotateDue(), []);
    clock.advance(90 * DAY);
    assert.deepEqual(await ks.rotateDue(), ["fast"]);
    assert.equal(ks.primaryVersion("fast"), 2);
    assert.equal(ks.primaryVersion("never"), 1);
    assert.deepEqual(await ks.rotateDue(), []);
  });

  it("wrap counters: batched writes, nothing lost, forced rotation at the limit", async () => {
    const h = await home();
    const ks = await Keystore.init(h, PW, { wrapLimit: 100 });
    await ks.createKey("k");
    const before = await readFile(join(h, "keystore.json"));
    let writes = 0;
    let last = before;
    for (let i = 0; i < 60; i++) {
      await ks.recipient("k").wrap(randomBytes(32));
      const now = await readFile(join(h, "keystore.json"));
      if (!now.equals(last)) writes++;
      last = now;
      // Reserved before release: the file never counts fewer wraps than were handed out.
      const onDisk = JSON.parse(now.toString()).keys[0].versions[0].wraps;
      assert.ok(onDisk >= i + 1, `on disk ${onDisk} < ${i + 1}`);
    }
    assert.ok(writes <= 7, `${writes} writes for 60 wraps`);
    await ks.flush();
    assert.equal(ks.showKey("k").versions[0]!.wraps, 60);
    // 40 more reach the limit; the 101st wrap rotates first.
    for (let i = 0; i < 41; i++) await ks.recipient("k").wrap(randomBytes(32));
    await ks.flush();
    const k = (await Keystore.open(h, PW)).showKey("k");
    assert.equal(k.primaryVersion, 2);
    assert.deepEqual(
      k.versions.map((v) => v.wraps),
      [100, 1],
    );
  });
});

describe("keystore lifecycle: crypto-shredding", () => {
  it("after destroy, the material is gone from keystore.json and nothing opens v1-only files", async () => {
    const clock = new Clock();
    const h = await home();
    const ks = await Keystore.init(h, PW, { now: clock.now });
    await ks.createKey("k");
    const id = generateX25519Identity();
    const onlyV1 = await sealUnder(ks, ["k"]);
    const fk = randomBytes(32);
    const both = sealMessage(Buffer.from("both"), fk, [
      await ks.recipient("k").wrap(fk),
      await parseX25519Recipient(id.recipient).wrap(fk),
    ]);
    await ks.flush();
    const v1 = JSON.parse(await readFile(join(h, "keystore.json"), "utf8")).keys[0].versions[0];
    await ks.rotateKey("k");
    await ks.scheduleDestroy("k", 1, 7);
    const backup = await readFile(join(h, "keystore.json"), "utf8");
    clock.advance(7 * DAY);
    await ks.purge();
    const text = await readFile(join(h, "keystore.json"), "utf8");
    assert.ok(!text.includes(v1.material) && !text.includes(v1.nonce));
    assert.ok(backup.includes(v1.material), "a backup from before the destroy still holds it");
    const shown = JSON.parse(text).keys[0].versions[0];
    assert.deepEqual(Object.keys(shown).sort(), [
      "created",
      "destroyed",
      "state",
      "version",
      "wraps",
    ]);
    // Every way in: this keystore, a fresh open, the rewrap purpose.
    for (const k of [ks, await Keystore.open(h, PW, { now: clock.now })]) {
      await assert.rejects(openWith(k, onlyV1.file), code("E_KEY_STATE", /destroyed/));
      await assert.rejects(
        unlockFileKey(readHeader(onlyV1.file), [k.identity({ purpose: "rewrap" })]),
        code("E_KEY_STATE", /can never be opened again/),
      );
    }
    // A file that also has another usable stanza still opens.
    const header = readHeader(both);
    const key = await unlockFileKey(header, [ks.identity(), parseX25519Identity(id.identity)]);
    assert.equal(openMessage(both, header, key).toString(), "both");
    assert.equal(parseKekStanza(header.stanzas[0]!).version, 1);
  });
});

// ---------------------------------------------------------------- property test

type Op =
  | { op: "rotate" }
  | { op: "minDec"; n: number }
  | { op: "minEnc"; n: number }
  | { op: "disable"; v: number }
  | { op: "enable"; v: number }
  | { op: "schedule"; v: number; days: number }
  | { op: "cancel"; v: number }
  | { op: "advance"; days: number }
  | { op: "purge" }
  | { op: "seal" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.constant({ op: "rotate" as const }),
  fc.record({ op: fc.constant("minDec" as const), n: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ op: fc.constant("minEnc" as const), n: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ op: fc.constant("disable" as const), v: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ op: fc.constant("enable" as const), v: fc.integer({ min: 1, max: 6 }) }),
  fc.record({
    op: fc.constant("schedule" as const),
    v: fc.integer({ min: 1, max: 6 }),
    days: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({ op: fc.constant("cancel" as const), v: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ op: fc.constant("advance" as const), days: fc.integer({ min: 1, max: 4 }) }),
  fc.constant({ op: "purge" as const }),
  fc.constant({ op: "seal" as const }),
  fc.constant({ op: "seal" as const }),
);

interface ModelVersion {
  state: "enabled" | "disabled" | "scheduled" | "destroyed";
  destroyAt?: number;
  wraps: number;
}

/** The specification, independently: which operations are valid, and which files open. */
class Model {
  versions = new Map<number, ModelVersion>([[1, { state: "enabled", wraps: 0 }]]);
  primary = 1;
  minDec = 1;
  minEnc = 1;
  constructor(
    private readonly clock: Clock,
    private readonly limit: number,
  ) {}
  /** Effective state: a scheduled version past its date is as good as destroyed. */
  eff(v: number): ModelVersion["state"] | undefined {
    const m = this.versions.get(v);
    if (m?.state === "scheduled" && m.destroyAt! <= this.clock.t) return "destroyed";
    return m?.state;
  }
  rotate() {
    this.primary += 1;
    this.versions.set(this.primary, { state: "enabled", wraps: 0 });
  }
  /** Applies `op`; returns false when the implementation must refuse it. */
  apply(o: Op): boolean {
    const s = "v" in o ? this.eff(o.v) : undefined;
    const settable = (v: number) => s !== undefined && v !== this.primary;
    switch (o.op) {
      case "rotate":
        this.rotate();
        return true;
      case "minDec":
      case "minEnc":
        if (o.n > this.primary) return false;
        if (o.op === "minDec") this.minDec = o.n;
        else this.minEnc = o.n;
        return true;
      case "disable":
        if (!settable(o.v) || (s !== "enabled" && s !== "disabled")) return false;
        this.versions.get(o.v)!.state = "disabled";
        return true;
      case "enable":
        if (s !== "enabled" && s !== "disabled") return false;
        this.versions.get(o.v)!.state = "enabled";
        return true;
      case "schedule":
        if (!settable(o.v) || (s !== "enabled" && s !== "disabled")) return false;
        Object.assign(this.versions.get(o.v)!, {
          state: "scheduled",
          destroyAt: this.clock.t + o.days * DAY,
        });
        return true;
      case "cancel":
        if (s !== "scheduled") return false;
        this.versions.get(o.v)!.state = "disabled";
        return true;
      default:
        return true;
    }
  }
  /** A seal: rotation first at the wrap limit; the version it will use. */
  seal(): number {
    if (this.versions.get(this.primary)!.wraps >= this.limit) this.rotate();
    this.versions.get(this.primary)!.wraps++;
    return this.primary;
  }
  opens(v: number): boolean {
    return this.eff(v) === "enabled" && v >= this.minDec;
  }
}

describe("keystore lifecycle: property test over random operation sequences", () => {
  it("no sequence opens a file the state forbids, and every allowed file opens", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
        const clock = new Clock();
        const limit = 3;
        const h = await home();
        const ks = await Keystore.init(h, PW, { now: clock.now, wrapLimit: limit });
        await ks.createKey("k");
        const model = new Model(clock, limit);
        const files: { file: Buffer; plain: Buffer; version: number }[] = [];
        for (const o of ops) {
          if (o.op === "advance") {
            clock.advance(o.days * DAY);
            continue;
          }
          if (o.op === "seal") {
            const expected = model.seal();
            const { file, plain } = await sealUnder(ks, ["k"]);
            const version = parseKekStanza(readHeader(file).stanzas[0]!).version;
            assert.equal(version, expected, "sealed under the primary (rotated at the limit)");
            files.push({ file, plain, version });
          } else {
            const valid = model.apply(o);
            const run = runOp(ks, o);
            if (valid) await run;
            else await assert.rejects(run, code("E_USAGE"), JSON.stringify(o));
          }
          for (const f of files) {
            if (model.opens(f.version)) {
              assert.ok((await openWith(ks, f.file)).equals(f.plain), `v${f.version} opens`);
            } else {
              await assert.rejects(openWith(ks, f.file), code("E_KEY_STATE"), `v${f.version}`);
            }
          }
        }
        // A fresh process sees the same decisions (persisted), and counters are exact.
        await ks.flush();
        const again = await Keystore.open(h, PW, { now: clock.now });
        for (const f of files) {
          if (model.opens(f.version)) assert.ok((await openWith(again, f.file)).equals(f.plain));
          else await assert.rejects(openWith(again, f.file), code("E_KEY_STATE"));
        }
        for (const v of again.showKey("k").versions)
          assert.equal(v.wraps, model.versions.get(v.version)!.wraps, `wraps of v${v.version}`);
        // Purged material is gone from the file.
        await again.purge();
        const doc = JSON.parse(await readFile(join(h, "keystore.json"), "utf8"));
        for (const v of doc.keys[0].versions) {
          assert.equal(v.state === "destroyed", model.eff(v.version) === "destroyed");
          assert.equal("material" in v, v.state !== "destroyed");
        }
        await rm(h, { recursive: true, force: true });
      }),
      { numRuns: 60 },
    );
  });
});

function runOp(ks: Keystore, o: Op): Promise<unknown> {
  switch (o.op) {
    case "rotate":
      return ks.rotateKey("k");
    case "minDec":
      return ks.setKey("k", { minDecryptionVersion: o.n });
    case "minEnc":
      return ks.setKey("k", { minEncryptionVersion: o.n });
    case "disable":
      return ks.disableVersion("k", o.v);
    case "enable":
      return ks.enableVersion("k", o.v);
    case "schedule":
      return ks.scheduleDestroy("k", o.v, o.days);
    case "cancel":
      return ks.cancelDestroy("k", o.v);
    case "purge":
      return ks.purge();
    default:
      return Promise.resolve();
  }
}
