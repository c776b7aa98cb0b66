/**
 * Untrusted strings never reach the terminal raw: a crafted file's header (content type, labels,
 * context, stanza names and key references), hostile file names, a hostile key service's answers
 * and a policy sample's names carry ESC/CSI sequences, an OSC 52 clipboard write, 8-bit CSI,
 * bidi overrides and isolates, zero-width characters, CR, BEL, DEL and U+2028. Every byte each
 * command prints is checked, on stdout and stderr, human and --json.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { jsonText, printable, printableText } from "../../src/format/printable.js";
import {
  formatIdentityFile,
  generateX25519Identity,
  parseX25519Recipient,
  type Recipient,
  sealFile,
} from "../../src/index.js";
import { type Sandbox, sandbox } from "./helpers.js";

const ATTACKS = [
  "\x1b[2J\x1b[31mred", // clear screen, colour
  "\x1b]52;c;cm0gLXJmIH4K\x07", // OSC 52: write the clipboard
  "\x9b31m", // 8-bit CSI
  "abc\u202egpj.exe", // right-to-left override
  "\u2066iso\u2069", // isolates
  "zero\u200bwidth\ufeff", // zero-width space, BOM
  "over\rwrite", // carriage return
  "ding\x07", // BEL
  "del\x7f",
  "line\u2028sep",
];
const HOSTILE = ATTACKS.join("|");

/** Any character a terminal acts on, other than newline and tab. */
const RAW = /[\0-\x08\x0b-\x1f\x7f-\x9f\p{Cf}\u2028\u2029]/u;

function assertClean(text: string, what: string): void {
  const m = RAW.exec(text);
  if (m === null) return;
  const around = JSON.stringify(text.slice(Math.max(0, m.index - 40), m.index + 40));
  assert.fail(`${what}: raw U+${m[0].codePointAt(0)?.toString(16)} near ${around}`);
}

function clean(r: { stdout: Buffer | string; stderr: string }, what: string): string {
  const out = r.stdout.toString();
  assertClean(out, `${what} stdout`);
  assertClean(r.stderr, `${what} stderr`);
  return out;
}

describe("printable()", () => {
  test("escapes controls, C1, bidi and zero-width characters; keeps ordinary text", () => {
    assert.equal(printable("a\x1b[2Jb"), "a\\x1b[2Jb");
    assert.equal(printable("\x9b\x7f\x00"), "\\x9b\\x7f\\x00");
    assert.equal(printable("\t\n\r"), "\\t\\n\\r");
    assert.equal(printable("x\u202ey\u2066\u200b\u2028"), "x\\u202ey\\u2066\\u200b\\u2028");
    assert.equal(printable("tag\u{e0041}"), "tag\\U000e0041");
    assert.equal(printable("lone\ud800"), "lone\\ud800");
    const ordinary = "naïve café — 中文 Ελληνικά 🙂 model-7b_v1.0";
    assert.equal(printable(ordinary), ordinary);
    for (const a of ATTACKS) {
      assertClean(printable(a), a);
      assert.equal(printable(printable(a)), printable(a), "escaping twice changes nothing");
    }
  });

  test("printableText keeps newlines and tabs only", () => {
    assert.equal(printableText("a\tb\nc\rd\x1b"), "a\tb\nc\\rd\\x1b");
  });

  test("jsonText: the same value once parsed, nothing raw", () => {
    const value = { [HOSTILE]: [HOSTILE, "tag\u{e0041}", "ok é 🙂"] };
    const text = jsonText(value, 2);
    assertClean(text.replaceAll("\n", ""), "jsonText");
    assert.deepEqual(JSON.parse(text), value);
    assert.match(jsonText("é 🙂"), /é 🙂/); // ordinary text stays readable
  });
});

describe("the CLI escapes what it did not write", () => {
  let s: Sandbox;
  let idFile: string;
  let sealed: string;
  let server: Server;
  let serverUrl: string;

  before(async () => {
    s = sandbox();
    assert.equal(s.run(["init"]).status, 0);
    const id = generateX25519Identity();
    idFile = join(s.dir, "id.txt");
    writeFileSync(idFile, formatIdentityFile(id.identity), { mode: 0o600 });
    const plain = join(s.dir, "plain.bin");
    writeFileSync(plain, randomBytes(70_000));
    // A file whose every public string is hostile: the header is the writer's to choose.
    sealed = join(s.dir, `m${ATTACKS[1]}.tseal`);
    await sealFile(plain, sealed, {
      recipients: [
        parseX25519Recipient(id.recipient),
        fixed({
          type: "kek",
          fields: [Buffer.from(HOSTILE), u32(7), randomBytes(12), randomBytes(48)],
        }),
        fixed({
          type: "kms",
          fields: [Buffer.from("aws-kms"), Buffer.from(`alias/${ATTACKS[1]}`), randomBytes(60)],
        }),
      ],
      contentType: HOSTILE,
      labels: { [HOSTILE]: HOSTILE, plain: "é 🙂" },
      context: { tenant: HOSTILE },
      chunkSize: 16 * 1024,
      workers: 0,
    });
    server = createServer((req, res) => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      const url = req.url ?? "";
      if (req.method !== "GET") return reply(403, { error: "forbidden", message: HOSTILE });
      if (url.startsWith("/v1/keys")) {
        return reply(200, {
          keys: [
            {
              name: HOSTILE,
              primaryVersion: 1,
              versions: [{ version: 1, state: HOSTILE }],
              labels: { [HOSTILE]: HOSTILE },
              sensitivity: HOSTILE,
            },
          ],
        });
      }
      if (url.startsWith("/v1/artifacts")) {
        return reply(200, {
          artifacts: [
            {
              id: HOSTILE,
              key: HOSTILE,
              version: 1,
              digest: HOSTILE,
              created: HOSTILE,
              labels: { [HOSTILE]: HOSTILE },
              location: HOSTILE,
            },
          ],
        });
      }
      if (url.startsWith("/v1/principals/blocked"))
        return reply(200, { blocked: [{ principal: HOSTILE, since: HOSTILE, reason: HOSTILE }] });
      if (url.startsWith("/v1/approvals/"))
        return reply(200, { id: HOSTILE, operation: HOSTILE, parameters: { k: HOSTILE } });
      if (url.startsWith("/v1/approvals")) {
        const a = { id: HOSTILE, operation: HOSTILE, state: HOSTILE, approvers: [HOSTILE] };
        return reply(200, {
          approvals: [{ ...a, required: 2, requester: HOSTILE, expires: HOSTILE }],
        });
      }
      if (url.startsWith("/v1/policies"))
        return reply(200, {
          version: HOSTILE,
          digest: HOSTILE,
          source: HOSTILE,
          text: `permit(\n\t${HOSTILE}\n);`,
        });
      return reply(404, { error: "not_found", message: HOSTILE });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server?.close();
    s.cleanup();
  });

  test("inspect, verify and open of a crafted header", () => {
    const human = clean(s.run(["inspect", sealed]), "inspect");
    for (const marker of ["\\x1b[2J", "\\x1b]52;c;", "\\x9b31m", "\\u202e", "\\r", "\\x07"])
      assert.ok(human.includes(marker), `inspect shows ${marker} escaped:\n${human}`);
    assert.match(human, /kms aws-kms alias\/\\x1b\]52/);
    assert.match(human, /é 🙂/); // ordinary non-ASCII stays readable
    const json = clean(s.run(["inspect", sealed, "--json"]), "inspect --json");
    const info = JSON.parse(json);
    assert.equal(info.contentType, HOSTILE); // JSON keeps the exact value
    assert.deepEqual(info.context, { tenant: HOSTILE });
    assert.equal(info.labels[HOSTILE], HOSTILE);
    clean(s.run(["inspect", sealed, "--verify", "-i", idFile]), "inspect --verify");
    const v = s.run(["verify", sealed, "-i", idFile]);
    assert.equal(v.status, 0, v.stderr);
    assert.match(clean(v, "verify"), /^OK {3}.*\\x1b\]52;c;/);
    const o = s.run(["open", sealed, "-i", idFile, "-o", join(s.dir, "out.bin")]);
    assert.equal(o.status, 0, o.stderr);
    clean(o, "open");
    const ctx = s.run(["open", sealed, "-i", idFile, "-o", join(s.dir, "x"), "-c", "tenant=a"]);
    assert.equal(ctx.status, 5);
    assert.match(ctx.stderr, /m\\x1b\]52;c;cm0gLXJmIH4K\\x07\.tseal: encryption context/);
    clean(ctx, "open --expect-context");
    // The keystore is asked for the hostile kek name: the refusal quotes it, escaped.
    const ks = s.run(["open", sealed, "-o", join(s.dir, "y")], {
      env: { TENSORSEAL_PROVIDERS: "none" },
    });
    assert.notEqual(ks.status, 0);
    clean(ks, "open with the keystore");
  });

  test("errors about tampered files and hostile paths", () => {
    const bytes = readFileSync(sealed);
    bytes[bytes.length - 30]! ^= 1;
    const bad = join(s.dir, `t${ATTACKS[0]}${ATTACKS[3]}.tseal`);
    writeFileSync(bad, bytes);
    for (const args of [
      ["verify", bad, "-i", idFile],
      ["verify", sealed, bad, "-i", idFile],
      ["verify", sealed, bad, "-i", idFile, "--json"],
      ["open", bad, "-i", idFile, "-o", join(s.dir, "t.out")],
      ["open", bad, "-i", idFile, "-o", "-"],
      ["inspect", join(s.dir, `missing${HOSTILE}.tseal`)],
      ["seal", join(s.dir, `missing${HOSTILE}`)],
      ["exec", "-m", `missing${HOSTILE}.tseal`, "--", "true"],
      ["exec", "-m", sealed, "-i", idFile, "--", `nope${HOSTILE}`],
      [`--bogus${HOSTILE}`],
    ]) {
      const r = s.run(args);
      const what = JSON.stringify(args);
      assert.notEqual(r.status, 0, what);
      assert.ok(r.stderr.length > 0 || r.stdout.length > 0, what);
      // `-o -` releases authenticated chunks to stdout before the tampered one: only stderr.
      if (args.includes("-")) assertClean(r.stderr, what);
      else clean(r, what);
    }
  });

  test("seal-dir and open-dir of a model with hostile file names", () => {
    const model = join(s.dir, "model");
    mkdirSync(model);
    writeFileSync(join(model, `w${ATTACKS[0]}${ATTACKS[2]}.bin`), randomBytes(5000));
    writeFileSync(join(model, "config.json"), "{}");
    for (const [args, what] of [
      [["seal-dir", model, "-o", join(s.dir, "model.sealed")], "seal-dir"],
      [["open-dir", join(s.dir, "model.sealed"), "-o", join(s.dir, "model.out")], "open-dir"],
      [
        ["open-dir", join(s.dir, "model.sealed"), "-o", join(s.dir, "model.out2"), "--json"],
        "json",
      ],
    ] as const) {
      const r = s.run([...args]);
      assert.equal(r.status, 0, r.stderr);
      clean(r, what);
    }
  });

  test("a hostile key service: lists, policy text, refusals", async () => {
    const env = { TENSORSEAL_SERVER: serverUrl, TENSORSEAL_SERVER_TOKEN: "t" };
    const runs: [string[], number][] = [
      [["service", "keys", "list"], 0],
      [["service", "keys", "list", "--json"], 0],
      [["service", "artifacts", "list"], 0],
      [["service", "artifacts", "list", "--json"], 0],
      [["service", "principals", "blocked"], 0],
      [["service", "approvals", "list"], 0],
      [["service", "approvals", "show", "apr_1"], 0],
      [["service", "policy", "get"], 0],
      [["service", "keys", "rotate", "k"], 8],
      [["service", "keys", "rotate-due"], 8],
    ];
    for (const [args, status] of runs) {
      const r = await s.runAsync(args, env);
      assert.equal(r.status, status, `${args.join(" ")}: ${r.stderr}`);
      const out = clean(r, args.join(" "));
      if (args.includes("--json") || args.includes("show")) {
        assert.ok(JSON.stringify(JSON.parse(out)).includes(JSON.stringify(HOSTILE)));
      } else if (status === 0) {
        assert.ok(out.includes("\\x1b[2J"), `${args.join(" ")} shows the escape:\n${out}`);
      }
    }
    // Tab-separated output keeps one row per key and its columns, even with tabs in the data.
    const list = await s.runAsync(["service", "keys", "list"], env);
    assert.equal(list.stdout.trimEnd().split("\n").length, 1);
    // Policy text keeps its own newlines and tabs, nothing else.
    const policy = await s.runAsync(["service", "policy", "get"], env);
    assert.match(policy.stdout, /permit\(\n\t.*\\x1b/);
  });

  test("policy test quotes sample names escaped; --json parses", () => {
    const req = join(s.dir, "req.json");
    const sample = {
      name: HOSTILE,
      principal: { id: "jwt:x", roles: ["unwrap"] },
      action: "unwrap",
      resource: { type: "Key", name: "k" },
      expect: "deny",
    };
    writeFileSync(req, JSON.stringify([sample]));
    clean(s.run(["policy", "test", "--request", req]), "policy test");
    const r = s.run(["policy", "test", "--request", req, "--json"]);
    const doc = JSON.parse(clean(r, "policy test --json"));
    assert.equal(doc.results[0].name, HOSTILE);
  });
});

/** A recipient that writes a fixed stanza (the header's writer chooses every public byte). */
function fixed(stanza: { type: string; fields: Buffer[] }): Recipient {
  return { id: "crafted", wrap: async () => stanza, matches: () => false };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
