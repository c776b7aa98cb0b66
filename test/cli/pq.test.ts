/**
 * The post-quantum recipient from the command line: keygen --pq, seal -r tseal1pq1..., inspect,
 * open -i; another pq identity, an x25519 identity and a tampered stanza are refused with
 * nothing written; rewrap moves a file from x25519 to pq.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { readHeader } from "../../src/format/message.js";
import { type Sandbox, sandbox } from "./helpers.js";

describe("tensorseal keygen --pq / tseal1pq1... recipients", () => {
  const s: Sandbox = sandbox();
  after(() => s.cleanup());
  const data = randomBytes(70_000);
  const plain = join(s.dir, "plain.bin");
  writeFileSync(plain, data);
  const keygen = (file: string, pq = true) => {
    const r = s.run(["keygen", ...(pq ? ["--pq"] : []), "-o", join(s.dir, file), "--json"]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.toString()).recipient as string;
  };

  test("seal to a pq recipient, inspect it, open it with its identity file only", () => {
    const recipient = keygen("pq1.txt");
    assert.match(recipient, /^tseal1pq1[02-9ac-hj-np-z]{1900,}$/);
    const idText = readFileSync(join(s.dir, "pq1.txt"), "utf8");
    assert.match(
      idText,
      /^# created: .*\n# recipient: tseal1pq1\S+\nTSEAL-SECRET-KEY-PQ-1[A-Z0-9]+\n$/,
    );
    const sealed = join(s.dir, "pq.tseal");
    let r = s.run(["seal", plain, "-o", sealed, "-r", recipient]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      readHeader(readFileSync(sealed)).stanzas.map((x) => [x.type, x.fields.map((f) => f.length)]),
      [["mlkem768x25519", [16, 1120, 48]]],
    );
    r = s.run(["inspect", sealed]);
    assert.match(r.stdout.toString(), /mlkem768x25519 post-quantum recipient \(tag [0-9a-f]{16}\)/);
    r = s.run(["open", sealed, "-o", join(s.dir, "pq.out"), "-i", join(s.dir, "pq1.txt")]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(join(s.dir, "pq.out")).equals(data));
  });

  test("another pq identity or an x25519 identity: exit 4, no output, no secret in stderr", () => {
    const recipient = keygen("pq2.txt");
    keygen("pq3.txt");
    keygen("x.txt", false);
    const sealed = join(s.dir, "pq2.tseal");
    assert.equal(s.run(["seal", plain, "-o", sealed, "-r", recipient]).status, 0);
    for (const id of ["pq3.txt", "x.txt"]) {
      const out = join(s.dir, `${id}.out`);
      const r = s.run(["open", sealed, "-o", out, "-i", join(s.dir, id)]);
      assert.equal(r.status, 4, r.stderr);
      assert.ok(!existsSync(out));
      assert.ok(!/SECRET-KEY/i.test(r.stderr), r.stderr);
    }
  });

  test("a flipped bit in the pq stanza's enc (checksum fixed) is refused, nothing written", () => {
    const recipient = keygen("pq4.txt");
    const sealed = join(s.dir, "pq4.tseal");
    assert.equal(s.run(["seal", plain, "-o", sealed, "-r", recipient]).status, 0);
    const file = readFileSync(sealed);
    // Flip inside enc without fixing the slot checksum: the damaged slot is refused.
    const at = file.indexOf(Buffer.from("mlkem768x25519")) + 14 + 1 + 2 + 16 + 2 + 500;
    file[at]! ^= 0x10;
    writeFileSync(sealed, file);
    const out = join(s.dir, "pq4.out");
    const r = s.run(["open", sealed, "-o", out, "-i", join(s.dir, "pq4.txt")]);
    assert.notEqual(r.status, 0);
    assert.ok(!existsSync(out));
  });

  test("a pq secret key given as -r is refused without echoing it; a truncated pq key too", () => {
    keygen("pq5.txt");
    const secret = readFileSync(join(s.dir, "pq5.txt"), "utf8").trim().split("\n").at(-1)!;
    let r = s.run(["seal", plain, "-o", join(s.dir, "bad.tseal"), "-r", secret]);
    assert.equal(r.status, 2);
    assert.ok(!r.stderr.includes(secret.slice(21, 60)), r.stderr);
    const recipient = keygen("pq6.txt");
    r = s.run(["seal", plain, "-o", join(s.dir, "bad2.tseal"), "-r", recipient.slice(0, -5)]);
    assert.notEqual(r.status, 0);
    assert.ok(!existsSync(join(s.dir, "bad2.tseal")));
  });

  test("rewrap -a tseal1pq1... -d tseal1...: the file moves to the pq recipient", () => {
    const x = keygen("x7.txt", false);
    const pq = keygen("pq7.txt");
    const sealed = join(s.dir, "mv.tseal");
    assert.equal(s.run(["seal", plain, "-o", sealed, "-r", x]).status, 0);
    let r = s.run(["rewrap", sealed, "-a", pq, "-d", x, "-i", join(s.dir, "x7.txt")]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      readHeader(readFileSync(sealed)).stanzas.map((st) => st.type),
      ["mlkem768x25519"],
    );
    r = s.run(["open", sealed, "-o", join(s.dir, "mv.out"), "-i", join(s.dir, "pq7.txt")]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      s.run(["open", sealed, "-o", join(s.dir, "mv2.out"), "-i", join(s.dir, "x7.txt")]).status,
      4,
    );
  });
});
