import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { isTensorSealError } from "../../src/format/errors.js";
import { parseKekStanza, wrapKek } from "../../src/keys/kek.js";
import { defaultHome, Keystore } from "../../src/keys/keystore.js";

const code = (c: string, re?: RegExp) => (e: unknown) =>
  isTensorSealError(e) && e.code === c && (!re || re.test(e.message));
const PW = { passphrase: "keystore pass", workFactor: 10 };
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "tseal-ks-"));
  dirs.push(d);
  return d;
}
/** A not-yet-existing home inside a fresh temp dir, so init creates it. */
async function home(): Promise<string> {
  return join(await tmp(), "home");
}
const file = (h: string) => join(h, "keystore.json");
// biome-ignore lint/suspicious/noExplicitAny: tests edit the raw JSON like an attacker would
type Doc = any;

async function editJson(h: string, edit: (doc: Doc) => void): Promise<void> {
  const doc = JSON.parse(await readFile(file(h), "utf8"));
  edit(doc);
  await writeFile(file(h), JSON.stringify(doc, null, 2));
}

describe("keystore: init and open", () => {
  it("init with a passphrase, then open it; modes are 0700 and 0600", async () => {
    const h = await home();
    const ks = await Keystore.init(h, PW);
    await ks.createKey("default");
    assert.equal((await stat(h)).mode & 0o777, 0o700);
    assert.equal((await stat(file(h))).mode & 0o777, 0o600);
    const again = await Keystore.open(h, { passphrase: "keystore pass" });
    assert.deepEqual(again.listKeys(), ks.listKeys());
    const doc = JSON.parse(await readFile(file(h), "utf8"));
    assert.equal(doc.format, "tensorseal-keystore");
    assert.equal(doc.version, 2);
    assert.match(doc.id, /^[0-9a-f]{32}$/);
    assert.equal(doc.root.kind, "passphrase");
    assert.equal(doc.root.logN, 10);
    // No temp or lock files are left behind.
    assert.deepEqual((await readdir(h)).sort(), ["keystore.json"]);
  });

  it("rejects a wrong passphrase with E_KEYSTORE, without echoing it", async () => {
    const h = await home();
    await Keystore.init(h, PW);
    await assert.rejects(Keystore.open(h, { passphrase: "not it" }), (e: unknown) => {
      assert.ok(isTensorSealError(e, "E_KEYSTORE"));
      assert.match(e.message, /wrong passphrase for the keystore in /);
      assert.ok(!e.message.includes("not it") && !e.message.includes("keystore pass"));
      return true;
    });
  });

  it("init and open with a root key file (raw and hex); a wrong key file is rejected", async () => {
    const d = await tmp();
    const root = randomBytes(32);
    const raw = join(d, "root.bin");
    const hexFile = join(d, "root.hex");
    await writeFile(raw, root);
    await writeFile(hexFile, `${root.toString("hex")}\n`);
    const h = join(d, "home");
    const ks = await Keystore.init(h, { rootKeyFile: raw });
    await ks.createKey("k");
    const doc = JSON.parse(await readFile(file(h), "utf8"));
    assert.deepEqual(Object.keys(doc.root).sort(), ["check", "kind"]);
    assert.ok(!(await readFile(file(h), "utf8")).includes(root.toString("base64")));
    const viaHex = await Keystore.open(h, { rootKeyFile: hexFile });
    assert.equal(viaHex.primaryVersion("k"), 1);
    const wrong = join(d, "wrong.hex");
    await writeFile(wrong, randomBytes(32).toString("hex"));
    await assert.rejects(
      Keystore.open(h, { rootKeyFile: wrong }),
      code("E_KEYSTORE", /does not match the keystore/),
    );
    await assert.rejects(Keystore.open(h, PW), code("E_KEYSTORE", /root key file/));
  });

  it("rejects malformed or missing root key files", async () => {
    const d = await tmp();
    for (const content of ["abc", `${"ab".repeat(32)}\n\n`, "zz".repeat(32), randomBytes(31)]) {
      const p = join(d, "bad.key");
      await writeFile(p, content);
      await assert.rejects(Keystore.init(join(d, "h"), { rootKeyFile: p }), code("E_KEY"));
    }
    await assert.rejects(
      Keystore.init(join(d, "h2"), { rootKeyFile: join(d, "absent") }),
      code("E_KEYSTORE"),
    );
  });

  it("a passphrase keystore refuses a root key file", async () => {
    const h = await home();
    await Keystore.init(h, PW);
    const p = join(await tmp(), "k");
    await writeFile(p, randomBytes(32));
    await assert.rejects(Keystore.open(h, { rootKeyFile: p }), code("E_KEYSTORE", /passphrase/));
  });

  it("init refuses to overwrite an existing keystore and leaves it intact", async () => {
    const h = await home();
    const ks = await Keystore.init(h, PW);
    await ks.createKey("precious");
    const before = await readFile(file(h));
    await assert.rejects(Keystore.init(h, PW), code("E_KEYSTORE", /already exists/));
    assert.deepEqual(await readFile(file(h)), before);
  });

  it("open of a missing keystore says to run init", async () => {
    const h = await home();
    await assert.rejects(
      Keystore.open(h, PW),
      code("E_KEYSTORE", /no keystore in .*: run `tensorseal init`/),
    );
  });

  it("refuses a hostile work factor before running scrypt", async () => {
    const h = await home();
    await Keystore.init(h, PW);
    await editJson(h, (d) => {
      d.root.logN = 40;
    });
    const t0 = performance.now();
    await assert.rejects(Keystore.open(h, PW), code("E_UNSUPPORTED"));
    assert.ok(performance.now() - t0 < 1000, "refusal should not run scrypt");
  });

  it("defaultHome honours TENSORSEAL_HOME", () => {
    const old = process.env.TENSORSEAL_HOME;
    try {
      process.env.TENSORSEAL_HOME = "/tmp/somewhere";
      assert.equal(defaultHome(), "/tmp/somewhere");
      delete process.env.TENSORSEAL_HOME;
      assert.match(defaultHome(), /\.tensorseal$/);
    } finally {
      if (old === undefined) delete process.env.TENSORSEAL_HOME;
      else process.env.TENSORSEAL_HOME = old;
    }
  });
});

describe("keystore: keys", () => {
  it("creates, rotates, lists and shows keys (metadata only)", async () => {
    const h = await home();
    const ks = await Keystore.init(h, PW);
    const a = await ks.createKey("alpha");
    assert.equal(a.primaryVersion, 1);
    await ks.createKey("beta");
    const r = await ks.rotateKey("alpha");
    assert.equal(r.primaryVersion, 2);
    assert.deepEqual(
      r.versions.map((v) => v.version),
      [1, 2],
    );
    assert.deepEqual(
      ks.listKeys().map((k) => [k.name, k.primaryVersion]),
      [
        ["alpha", 2],
        ["beta", 1],
      ],
    );
    assert.deepEqual(Object.keys(ks.showKey("alpha")).sort(), [
      "created",
      "minDecryptionVersion",
      "minEncryptionVersion",
      "name",
      "primaryVersion",
      "rotationPeriod",
      "versions",
    ]);
    // Persisted: a fresh open sees the same state.
    const again = await Keystore.open(h, PW);
    assert.equal(again.primaryVersion("alpha"), 2);
    assert.throws(() => ks.showKey("gamma"), code("E_KEYSTORE", /no key named/));
    await assert.rejects(ks.rotateKey("gamma"), code("E_KEYSTORE"));
  });

  it("validates key names", async () => {
    const ks = await Keystore.init(await home(), PW);
    for (const bad of ["", "a b", "x/y", "ü", "a".repeat(129)]) {
      await assert.rejects(ks.createKey(bad), code("E_USAGE"));
    }
    await ks.createKey("A.b_c-1");
    await ks.createKey("a".repeat(128));
  });

  it("recipient wraps with the primary version; identity unwraps every version", async () => {
    const h = await home();
    const ks = await Keystore.init(h, PW);
    await ks.createKey("m");
    const k1 = randomBytes(32);
    const s1 = await ks.recipient("m").wrap(k1);
    assert.equal(ks.recipient("m").id, "kek:m");
    assert.deepEqual(
      { name: parseKekStanza(s1).name, v: parseKekStanza(s1).version },
      { name: "m", v: 1 },
    );
    await ks.rotateKey("m");
    const k2 = randomBytes(32);
    const s2 = await ks.recipient("m").wrap(k2);
    assert.equal(parseKekStanza(s2).version, 2);
    const reopened = await Keystore.open(h, PW);
    const id = reopened.identity();
    assert.deepEqual(await id.unwrap(s1), k1);
    assert.deepEqual(await id.unwrap(s2), k2);
    // Unknown names and versions are "not mine".
    const other = await Keystore.init(await home(), PW);
    await other.createKey("m");
    assert.equal(await other.identity().unwrap(s2), null);
    await assert.rejects(other.identity().unwrap(s1), code("E_DECRYPT")); // same name+version, other material
    assert.equal(await id.unwrap({ type: "x25519", fields: [] }), null);
  });

  it("kek names are UTF-8: a stanza with invalid UTF-8 is malformed, a lone surrogate is refused", () => {
    const kek = randomBytes(32);
    const s = wrapKek({ name: "m/é", version: 1 }, kek, randomBytes(32));
    assert.equal(parseKekStanza(s).name, "m/é");
    for (const bad of [[0xff], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
      const name = Buffer.from([0x6d, ...bad]);
      assert.throws(
        () => parseKekStanza({ type: "kek", fields: [name, ...s.fields.slice(1)] }),
        code("E_MALFORMED", /not valid UTF-8/),
      );
    }
    assert.throws(
      () => wrapKek({ name: "m\ud800", version: 1 }, kek, randomBytes(32)),
      code("E_USAGE"),
    );
  });

  it("a failed mutation leaves keystore.json byte-identical", async () => {
    const h = await home();
    const ks = await Keystore.init(h, PW);
    await ks.createKey("dup");
    const before = await readFile(file(h));
    await assert.rejects(ks.createKey("dup"), code("E_KEYSTORE", /already exists/));
    await assert.rejects(ks.createKey("bad name"), code("E_USAGE"));
    await assert.rejects(ks.rotateKey("nope"), code("E_KEYSTORE"));
    assert.deepEqual(await readFile(file(h)), before);
    assert.deepEqual((await readdir(h)).sort(), ["keystore.json"]);
  });

  it("a second instance's changes are kept (mutations reload under the lock)", async () => {
    const h = await home();
    const a = await Keystore.init(h, PW);
    const b = await Keystore.open(h, PW);
    await a.createKey("one");
    await b.createKey("two");
    const c = await Keystore.open(h, PW);
    assert.deepEqual(
      c.listKeys().map((k) => k.name),
      ["one", "two"],
    );
  });

  it("close() wipes material: the identity then finds nothing", async () => {
    const ks = await Keystore.init(await home(), PW);
    await ks.createKey("k");
    const s = await ks.recipient("k").wrap(randomBytes(32));
    const id = ks.identity();
    ks.close();
    assert.equal(await id.unwrap(s), null);
  });
});

describe("keystore: tamper evidence", () => {
  async function populated() {
    const h = await home();
    const ks = await Keystore.init(h, PW);
    await ks.createKey("k");
    await ks.rotateKey("k");
    await ks.createKey("z");
    return h;
  }
  const modified = code("E_KEYSTORE", /keystore\.json was modified outside tensorseal/);
  const edits: [string, (d: Doc) => void][] = [
    ["roll back the primary version", (d) => (d.keys[0].primary = 1)],
    ["delete a version", (d) => d.keys[0].versions.pop()],
    ["delete a key", (d) => d.keys.pop()],
    ["rename a key", (d) => (d.keys[1].name = "y")],
    ["change a created date", (d) => (d.keys[0].created = "2000-01-01T00:00:00.000Z")],
    ["add a field", (d) => (d.keys[0].note = "x")],
    [
      "swap version materials",
      (d) => {
        const v = d.keys[0].versions;
        [v[0].material, v[1].material] = [v[1].material, v[0].material];
      },
    ],
    ["set primary to a missing version", (d) => (d.keys[0].primary = 9)],
  ];
  for (const [what, edit] of edits) {
    it(`refuses an edited file: ${what}`, async () => {
      const h = await populated();
      await Keystore.open(h, PW); // sanity: opens before the edit
      await editJson(h, edit);
      await assert.rejects(Keystore.open(h, PW), modified);
    });
  }

  it("re-indenting the file is not an edit (canonical MAC input)", async () => {
    const h = await populated();
    const doc = JSON.parse(await readFile(file(h), "utf8"));
    await writeFile(file(h), JSON.stringify(doc));
    assert.equal((await Keystore.open(h, PW)).primaryVersion("k"), 2);
  });

  it("refuses a file with a removed or garbled mac, and non-JSON", async () => {
    const h = await populated();
    await editJson(h, (d) => (d.mac = Buffer.alloc(32).toString("base64")));
    await assert.rejects(Keystore.open(h, PW), modified);
    await editJson(h, (d) => delete d.mac);
    await assert.rejects(Keystore.open(h, PW), code("E_KEYSTORE"));
    await writeFile(file(h), "{not json");
    await assert.rejects(Keystore.open(h, PW), code("E_KEYSTORE", /damaged/));
  });

  it("a mutation refuses to build on a file edited since open", async () => {
    const h = await populated();
    const ks = await Keystore.open(h, PW);
    await editJson(h, (d) => (d.keys[0].primary = 1));
    const before = await readFile(file(h));
    await assert.rejects(ks.rotateKey("k"), modified);
    assert.deepEqual(await readFile(file(h)), before);
  });
});
