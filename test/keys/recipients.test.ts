import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { isTensorSealError } from "../../src/format/errors.js";
import {
  formatIdentityFile,
  generateX25519Identity,
  Keystore,
  parseIdentityFile,
  parseRecipient,
} from "../../src/keys/index.js";

const code = (c: string) => (e: unknown) => isTensorSealError(e) && e.code === c;

describe("recipient strings", () => {
  it("parses tseal1... into an x25519 recipient that its identity opens", async () => {
    const g = generateX25519Identity();
    const r = parseRecipient(g.recipient);
    assert.equal(r.id, g.recipient);
    const fileKey = randomBytes(32);
    const s = await r.wrap(fileKey);
    assert.equal(s.type, "x25519");
    const [id] = parseIdentityFile(formatIdentityFile(g.identity));
    assert.deepEqual(await id!.unwrap(s), fileKey);
  });

  it("kek:NAME needs a keystore, then wraps under the primary version", async () => {
    assert.throws(() => parseRecipient("kek:default"), code("E_USAGE"));
    const d = await mkdtemp(join(tmpdir(), "tseal-rc-"));
    try {
      const ks = await Keystore.init(join(d, "h"), { passphrase: "p", workFactor: 10 });
      await ks.createKey("default");
      await ks.rotateKey("default");
      const r = parseRecipient("kek:default", ks);
      assert.equal(r.id, "kek:default");
      const s = await r.wrap(randomBytes(32));
      assert.equal(s.fields[1]!.readUInt32BE(), 2);
      assert.equal(r.matches(s), true);
      assert.throws(() => parseRecipient("kek:missing", ks), code("E_KEYSTORE"));
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  it("rejects unknown strings and refuses a pasted secret key without echoing it", () => {
    assert.throws(() => parseRecipient("age1abc"), code("E_USAGE"));
    assert.throws(() => parseRecipient("tseal1qqqq"), code("E_KEY"));
    const g = generateX25519Identity();
    assert.throws(
      () => parseRecipient(g.identity),
      (e: unknown) => isTensorSealError(e, "E_USAGE") && !e.message.includes(g.identity.slice(18)),
    );
  });
});

describe("identity files", () => {
  it("skips comments and blank lines (LF or CRLF), reads every identity", async () => {
    const a = generateX25519Identity();
    const b = generateX25519Identity();
    const text = `# a comment\n\n${a.identity}\r\n   \n# another\n${b.identity.toLowerCase()}\n`;
    const ids = parseIdentityFile(text);
    assert.deepEqual(
      ids.map((i) => i.id),
      [a.recipient, b.recipient],
    );
  });

  it("rejects a bad line by number, never by content", () => {
    const a = generateX25519Identity();
    const bad = `${a.identity.slice(0, -1)}${a.identity.endsWith("Q") ? "P" : "Q"}`;
    assert.throws(
      () => parseIdentityFile(`# c\n${a.identity}\n${bad}\n`),
      (e: unknown) =>
        isTensorSealError(e, "E_KEY") &&
        /line 3/.test(e.message) &&
        !e.message.includes(bad.slice(18)),
    );
    assert.throws(() => parseIdentityFile(`${a.recipient}\n`), code("E_KEY"));
  });

  it("an empty file has no identity", () => {
    assert.throws(() => parseIdentityFile("# only a comment\n\n"), code("E_NO_IDENTITY"));
  });
});
