/**
 * The public tier (spec/FORMAT.md §2.5) through every reader and writer of the engine: sealed
 * integrity-only (the plaintext stands in the file), opened with no identity by the parallel file
 * reader, the in-memory reader, the stream reader and random access; refused where encryption is
 * required (E_NOT_ENCRYPTED); stanza rules enforced on write and on read; no rewrap.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, describe, test } from "node:test";
import {
  addRecipients,
  closeWorkers,
  fileSource,
  openFile,
  openSource,
  openStream,
  openToMemory,
  resealFile,
  rewrapFile,
  SealedFile,
  sealFile,
  sealStream,
  verifyFile,
  verifySource,
} from "../../src/engine/index.js";
import { encodeDescriptor } from "../../src/format/descriptor.js";
import { isTensorSealError } from "../../src/format/errors.js";
import { computeHeaderMac } from "../../src/format/filekey.js";
import {
  encodeHeader,
  encodePrefix,
  encodeSlotBody,
  parseHeader,
} from "../../src/format/header.js";
import { makeDescriptor } from "../../src/format/message.js";
import { publicRecipient, SUITE_PUBLIC } from "../../src/format/public.js";
import { kekIdentity, kekRecipient } from "../../src/keys/kek.js";

const dir = mkdtempSync(join(tmpdir(), "tseal-public-"));
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await closeWorkers();
});

const PUBLIC = { tier: { "tensorseal:tier": "public" } };
const KEK = Buffer.alloc(32, 7);
const REF = { name: "k", version: 1 };
const kek = () => kekRecipient(REF, KEK);
const kekId = () => kekIdentity("kek:k", (r) => (r.name === "k" ? KEK : null));
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const code = (c: string) => (e: unknown) => isTensorSealError(e) && e.code === c;

async function sealPublic(name: string, data: Buffer): Promise<string> {
  const src = join(dir, `${name}.plain`);
  writeFileSync(src, data);
  const out = join(dir, `${name}.tseal`);
  await sealFile(src, out, {
    recipients: [publicRecipient()],
    suite: SUITE_PUBLIC,
    labels: PUBLIC.tier,
    chunkSize: 1 << 16,
  });
  return out;
}

describe("public (integrity-only) files through the engine", () => {
  // Over the parallel threshold (4 MiB), so the fast path would be chosen for an encrypted file.
  const data = randomBytes(5 * 1024 * 1024 + 333);

  test("sealed with the plaintext in the file; every reader opens it with no identity", async () => {
    const sealed = await sealPublic("big", data);
    const file = readFileSync(sealed);
    const h = parseHeader(file);
    assert.equal(h.descriptor.suite, 2);
    assert.deepEqual(
      file.subarray(h.headerLength + 56, h.headerLength + 56 + 1000),
      data.subarray(0, 1000),
    );
    const out = join(dir, "big.out");
    const r = await openFile(sealed, out, { identities: [] });
    assert.equal(r.encrypted, false);
    assert.equal(sha(readFileSync(out)), sha(data));
    await verifyFile(sealed, { identities: [kekId()] }); // identities given are not asked
    const mem = await openToMemory(sealed, { identities: [] });
    assert.equal(sha(Buffer.from(mem.buffer)), sha(data));
    const sink = new PassThrough();
    const parts: Buffer[] = [];
    sink.on("data", (c: Buffer) => parts.push(c));
    await openStream(createReadStream(sealed), sink, { identities: [] });
    assert.equal(sha(Buffer.concat(parts)), sha(data));
    // A ranged source (what S3 and HTTP objects are read through) takes the same path.
    const src = await fileSource(sealed);
    try {
      const remoteOut = join(dir, "big.remote");
      await openSource(src, remoteOut, { identities: [] });
      assert.equal(sha(readFileSync(remoteOut)), sha(data));
      await verifySource(src, { identities: [] });
      await assert.rejects(
        verifySource(src, { identities: [], requireEncrypted: true }),
        code("E_NOT_ENCRYPTED"),
      );
    } finally {
      await src.close();
    }
    const ra = await SealedFile.open(sealed, []);
    try {
      assert.deepEqual(await ra.readRange(3_000_000, 70_000), data.subarray(3_000_000, 3_070_000));
    } finally {
      await ra.close();
    }
  });

  test("a stream sealed public opens the same", async () => {
    const src = new PassThrough();
    const sealed = new PassThrough();
    const parts: Buffer[] = [];
    sealed.on("data", (c: Buffer) => parts.push(c));
    const done = sealStream(src, sealed, {
      recipients: [publicRecipient()],
      suite: SUITE_PUBLIC,
      labels: PUBLIC.tier,
    });
    src.end(data.subarray(0, 300_000));
    await done;
    const path = join(dir, "stream.tseal");
    writeFileSync(path, Buffer.concat(parts));
    const out = join(dir, "stream.out");
    await openFile(path, out, { identities: [] });
    assert.deepEqual(readFileSync(out), data.subarray(0, 300_000));
  });

  test("a reader that requires encryption refuses it before writing anything", async () => {
    const sealed = await sealPublic("small", data.subarray(0, 1000));
    const out = join(dir, "refused.out");
    await assert.rejects(
      openFile(sealed, out, { identities: [kekId()], requireEncrypted: true }),
      code("E_NOT_ENCRYPTED"),
    );
    assert.throws(() => readFileSync(out), /ENOENT/);
    await assert.rejects(
      openToMemory(sealed, { identities: [], requireEncrypted: true }),
      code("E_NOT_ENCRYPTED"),
    );
    // An encrypted file passes the same requirement.
    const src = join(dir, "enc.plain");
    writeFileSync(src, "secret");
    await sealFile(src, join(dir, "enc.tseal"), { recipients: [kek()] });
    const r = await openFile(join(dir, "enc.tseal"), join(dir, "enc.out"), {
      identities: [kekId()],
      requireEncrypted: true,
    });
    assert.equal(r.encrypted, true);
  });

  test("a flipped byte, a moved chunk or a cut anywhere is refused; the output never appears", async () => {
    const sealed = await sealPublic("tamper", data.subarray(0, 200_000));
    const file = readFileSync(sealed);
    const h = parseHeader(file);
    const c0 = h.headerLength + 56;
    const S = (1 << 16) + 16;
    const flipped = Buffer.from(file);
    flipped.writeUInt8(flipped.readUInt8(c0 + S + 5) ^ 0x40, c0 + S + 5);
    const moved = Buffer.from(file);
    file.copy(moved, c0, c0 + S, c0 + 2 * S);
    for (const [name, bytes, err] of [
      ["flip", flipped, "E_DECRYPT"],
      ["move", moved, "E_DECRYPT"],
      ["cut", file.subarray(0, file.length - 100), "E_TRUNCATED"],
    ] as const) {
      const p = join(dir, `${name}.tseal`);
      writeFileSync(p, bytes);
      await assert.rejects(openFile(p, join(dir, `${name}.out`), { identities: [] }), code(err));
      assert.throws(() => readFileSync(join(dir, `${name}.out`)), /ENOENT/, name);
    }
  });

  test("writers refuse a published key next to a recipient, and a public file without one", () => {
    const fk = Buffer.alloc(32, 1);
    const pub = { type: "public", fields: [fk] };
    const kekStanza = {
      type: "kek",
      fields: [Buffer.from("k"), Buffer.alloc(4), Buffer.alloc(12), Buffer.alloc(48)],
    };
    const d1 = encodeDescriptor(makeDescriptor({}, 0));
    const d2 = encodeDescriptor(makeDescriptor({ suite: 2, labels: PUBLIC.tier }, 0));
    assert.throws(() => encodeHeader(fk, d1, [kekStanza, pub]), code("E_USAGE"));
    assert.throws(() => encodeHeader(fk, d2, [kekStanza]), code("E_USAGE"));
    assert.throws(() => encodeHeader(fk, d2, [pub, kekStanza]), code("E_USAGE"));
    assert.throws(
      () =>
        encodeDescriptor(
          makeDescriptor({ suite: 2, labels: { "tensorseal:tier": "internal" } }, 0),
        ),
      code("E_MALFORMED"),
    );
  });

  test("readers reject a published key in an encrypted file's header (even with a valid MAC)", () => {
    // Hand-built, as an attacker holding the file key would: the MAC and checksum are right.
    const fk = Buffer.alloc(32, 2);
    const d = encodeDescriptor(makeDescriptor({}, 0));
    const prefix = encodePrefix(d.length, 4096);
    const body = encodeSlotBody({ generation: 1, stanzas: [{ type: "public", fields: [fk] }] });
    const slot = Buffer.alloc(4096);
    slot.writeUInt32BE(body.length, 0);
    body.copy(slot, 4);
    computeHeaderMac(fk, [prefix, d, body]).copy(slot, 4 + body.length);
    createHash("sha256")
      .update(slot.subarray(0, 36 + body.length))
      .digest()
      .copy(slot, 36 + body.length);
    const header = Buffer.concat([prefix, d, slot, Buffer.alloc(4096)]);
    assert.throws(() => parseHeader(header), code("E_MALFORMED"));
  });

  test("rewrap and reseal refuse a public file and leave it unchanged", async () => {
    const sealed = await sealPublic("rewrap", data.subarray(0, 5000));
    const before = readFileSync(sealed);
    await assert.rejects(
      rewrapFile(sealed, { identities: [], edit: addRecipients([kek()]) }),
      code("E_USAGE"),
    );
    await assert.rejects(
      resealFile(sealed, { identities: [], recipients: async () => [kek()] }),
      code("E_USAGE"),
    );
    assert.deepEqual(readFileSync(sealed), before);
  });
});
