/** A recipient that draws the file key itself (KMS GenerateDataKey) sets the key for all. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { inspectFile, openFile, sealFile } from "../../src/engine/index.js";
import type { Recipient, Stanza } from "../../src/format/stanza.js";
import { kekIdentity, kekRecipient, unwrapKek } from "../../src/keys/kek.js";

function generating(fileKey: Buffer | null): Recipient & { calls: number } {
  const stanza: Stanza = { type: "test-gen", fields: [Buffer.from("drawn")] };
  const r = {
    id: "test-gen",
    calls: 0,
    wrap: async () => assert.fail("a generating recipient is not asked to wrap its own key"),
    matches: (s: Stanza) => s.type === "test-gen",
    generate: async () => {
      r.calls++;
      return fileKey ? { fileKey: Buffer.from(fileKey), stanza } : null;
    },
  };
  return r;
}

test("the first recipient that draws the file key sets it; the others wrap that key", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tseal-gen-"));
  try {
    const input = join(dir, "in.bin");
    const data = randomBytes(70_000);
    writeFileSync(input, data);
    const drawnKey = randomBytes(32);
    const kek = randomBytes(32);
    const gen = generating(drawnKey);
    await sealFile(input, join(dir, "a.tseal"), {
      recipients: [kekRecipient({ name: "k", version: 1 }, kek), gen],
      workers: 0,
    });
    const header = await inspectFile(join(dir, "a.tseal"));
    assert.equal(gen.calls, 1);
    assert.deepEqual(
      header.stanzas.map((s) => s.type),
      ["kek", "test-gen"],
    );
    assert.ok(unwrapKek(header.stanzas[0]!, kek).equals(drawnKey), "kek wraps the drawn key");
    await openFile(join(dir, "a.tseal"), join(dir, "a.out"), {
      identities: [kekIdentity("k", () => kek)],
      workers: 0,
    });
    assert.ok(readFileSync(join(dir, "a.out")).equals(data));

    // A recipient that cannot draw (null) leaves the writer to draw the key as usual.
    const none = generating(null);
    await sealFile(input, join(dir, "b.tseal"), {
      recipients: [
        kekRecipient({ name: "k", version: 1 }, kek),
        { ...none, wrap: async () => ({ type: "test-gen", fields: [] }) },
      ],
      workers: 0,
    });
    const b = await inspectFile(join(dir, "b.tseal"));
    assert.ok(!unwrapKek(b.stanzas[0]!, kek).equals(drawnKey));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
