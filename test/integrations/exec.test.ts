import assert from "node:assert/strict";
import { closeSync, existsSync, openSync, readSync, statSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseModelSpec, substitute } from "../../src/integrations/exec.js";
import { checkRamFs, createRamDir, wipeDirSync } from "../../src/integrations/ram-dir.js";
import { errorOf, tempDir } from "./helpers.js";

const hasShm = existsSync("/dev/shm");
/** In CI (TENSORSEAL_REQUIRE_ALL=1) a missing precondition fails instead of skipping. */
const requireAll = process.env.TENSORSEAL_REQUIRE_ALL === "1";

describe("exec building blocks", () => {
  test("parseModelSpec splits an optional :NAME", () => {
    assert.deepEqual(parseModelSpec("a/b.tseal"), { path: "a/b.tseal" });
    assert.deepEqual(parseModelSpec("a/b.tseal:llm"), { path: "a/b.tseal", name: "llm" });
    assert.deepEqual(parseModelSpec("c:/x.tseal"), { path: "c:/x.tseal" });
    assert.deepEqual(parseModelSpec("x:bad-name"), { path: "x:bad-name" });
  });

  test("substitute replaces known tokens only", () => {
    const paths = new Map([
      ["model", "/shm/a"],
      ["llm", "/shm/b"],
    ]);
    assert.deepEqual(
      substitute(["-m", "{model}", "--x={llm},{model}", "{other}", '{"k":1}'], paths),
      ["-m", "/shm/a", "--x=/shm/b,/shm/a", "{other}", '{"k":1}'],
    );
  });

  test("a disk directory is refused as a plaintext location; nothing is created", async (t) => {
    const dir = tempDir(t); // os.tmpdir(): on a disk in CI and here; skip if it is tmpfs
    if (
      await checkRamFs(dir).then(
        () => true,
        () => false,
      )
    ) {
      assert.ok(
        !requireAll,
        "TENSORSEAL_REQUIRE_ALL=1 but os.tmpdir() is a tmpfs: no disk dir to refuse",
      );
      t.skip("os.tmpdir() is itself a tmpfs here");
      return;
    }
    const e = await errorOf(createRamDir(dir));
    assert.equal(e.code, "E_UNSUPPORTED");
    assert.match(e.message, /not a tmpfs/);
    assert.match(e.message, /--tmpfs/);
    const missing = await errorOf(createRamDir(join(dir, "nope")));
    assert.equal(missing.code, "E_IO");
  });

  test("createRamDir makes a 0700 directory on tmpfs; wipe zeroes files before unlinking", {
    skip: !hasShm && !requireAll,
  }, async () => {
    const dir = await createRamDir();
    try {
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      await mkdir(join(dir, "sub"));
      const file = join(dir, "sub", "w.bin");
      writeFileSync(file, Buffer.alloc(3 << 20, 0xab), { mode: 0o600 });
      const fd = openSync(file, "r"); // another reader holding the inode open
      try {
        assert.deepEqual(wipeDirSync(dir), []);
        assert.equal(existsSync(dir), false);
        const seen = Buffer.alloc(3 << 20);
        readSync(fd, seen, 0, seen.length, 0);
        assert.equal(seen.indexOf(0xab), -1, "the open inode must hold only zeros");
      } finally {
        closeSync(fd);
      }
    } finally {
      wipeDirSync(dir);
    }
  });
});
