/**
 * The HTTP/1.1 response reader of streamed whole-file reads (src/integrations/objstore/http1.ts)
 * against real loopback sockets: well-formed answers are read exactly (split anywhere across
 * reads), every malformed one is refused with E_IO (never guessed at, never retried into
 * success), and over TLS the server is verified as node:https does (CA store, SNI, name).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { closeWorkers, openSource, sealFile } from "../../src/engine/index.js";
import { isTensorSealError } from "../../src/format/errors.js";
import { HEAD_MAX, type RawResponse, rawGet } from "../../src/integrations/objstore/http1.js";
import { openHttpSource } from "../../src/integrations/objstore/index.js";
import { parseIdentityFile, parseRecipient } from "../../src/keys/recipients.js";
import { generateX25519Identity } from "../../src/keys/x25519.js";
import { ensureDevTls } from "../../src/service/index.js";
import { sandbox } from "../cli/helpers.js";
import { type RangeServer, rangeServer } from "./range-server.js";

after(() => closeWorkers());

const here = dirname(fileURLToPath(import.meta.url));
const http1Module = pathToFileURL(join(here, "../../src/integrations/objstore/http1.js")).href;
const opts = { timeoutMs: 5_000 };

/** A server that answers every connection with `pieces`, written one by one, then closes. */
async function canned(pieces: (string | Buffer)[]): Promise<{ url: URL; close(): void }> {
  const srv: Server = createServer((s) => {
    s.once("data", async () => {
      for (const p of pieces) {
        if (s.destroyed) return;
        s.write(p);
        await sleep(3);
      }
      s.end();
    });
    s.on("error", () => {});
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  return { url: new URL(`http://127.0.0.1:${port}/x`), close: () => srv.close() };
}

/** The whole body as the streamed read consumes it: whether it ended, and any error. */
function collect(res: RawResponse): Promise<{ body: Buffer; ended: boolean; error: unknown }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let ended = false;
    let error: unknown = null;
    res.on("data", (c: Buffer) => parts.push(Buffer.from(c)));
    res.on("end", () => {
      ended = true;
    });
    res.on("error", (e) => {
      error = e;
    });
    res.on("close", () => resolve({ body: Buffer.concat(parts), ended, error }));
    res.resume();
  });
}

async function answer(pieces: (string | Buffer)[]) {
  const srv = await canned(pieces);
  try {
    const res = await rawGet(srv.url, { range: "bytes=0-9" }, opts);
    return { res, ...(await collect(res)) };
  } finally {
    srv.close();
  }
}

const malformed = (pattern: RegExp) => (e: unknown) => {
  assert.ok(isTensorSealError(e), `expected a TensorSealError, got ${String(e)}`);
  assert.equal(e.code, "E_IO");
  assert.match(e.message, /malformed HTTP\/1\.1/);
  assert.match(e.message, pattern);
  return true;
};

describe("HTTP/1.1 response reader (loopback sockets)", () => {
  test("a Content-Length body split across reads, the head sharing a read with its start", async () => {
    const body = randomBytes(300_000);
    const r = await answer([
      Buffer.concat([
        Buffer.from('HTTP/1.1 206 Partial Content\r\nETag: "a"\r\nContent-Length: 300000\r\n'),
        Buffer.from("X-Multi: 1\r\nx-multi: 2\r\n\r\n"),
        body.subarray(0, 7),
      ]),
      body.subarray(7, 200_000),
      body.subarray(200_000),
    ]);
    assert.equal(r.res.statusCode, 206);
    assert.equal(r.res.headers.etag, '"a"');
    assert.equal(r.res.headers["x-multi"], "1, 2");
    assert.ok(r.ended, String(r.error));
    assert.ok(r.body.equals(body));
  });

  test("a chunked body with extensions and trailers, its CRLFs split across reads; a 103 first", async () => {
    const r = await answer([
      "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n",
      "HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r",
      "\nhello\r\n",
      "6\r\n wor",
      "ld\r\n0",
      "\r\nx-trailer: y\r\n\r\n",
    ]);
    assert.equal(r.res.statusCode, 206);
    assert.ok(r.ended, String(r.error));
    assert.equal(r.body.toString(), "hello world");
  });

  test("without a length the body ends with the connection (the caller counts it)", async () => {
    const r = await answer(["HTTP/1.1 206 Partial Content\r\n\r\nabc", "def"]);
    assert.ok(r.ended);
    assert.equal(r.body.toString(), "abcdef");
  });

  test("a body cut short closes without 'end'", async () => {
    const r = await answer(["HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\n\r\nabc"]);
    assert.equal(r.ended, false);
    assert.equal(r.body.toString(), "abc");
  });

  const badHeads: [string, string, RegExp][] = [
    [
      "conflicting Content-Length fields",
      "HTTP/1.1 206 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
      /conflicting content-length/,
    ],
    [
      "a list in Content-Length",
      "HTTP/1.1 206 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
      /Content-Length/,
    ],
    [
      "a negative Content-Length",
      "HTTP/1.1 206 OK\r\nContent-Length: -1\r\n\r\n",
      /Content-Length/,
    ],
    [
      "both Content-Length and Transfer-Encoding",
      "HTTP/1.1 206 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      /both Content-Length and Transfer-Encoding/,
    ],
    [
      "another transfer coding",
      "HTTP/1.1 206 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      /unsupported Transfer-Encoding/,
    ],
    ["a folded header line", 'HTTP/1.1 206 OK\r\nETag: "a"\r\n  "b"\r\n\r\n', /header field/],
    ["a space before the colon", 'HTTP/1.1 206 OK\r\nETag : "a"\r\n\r\n', /header field/],
    ["a NUL in a value", 'HTTP/1.1 206 OK\r\nETag: "a\0"\r\n\r\n', /header field/],
    ["a bare LF", "HTTP/1.1 206 OK\nContent-Length: 0\r\n\r\n", /status line/],
    ["not HTTP/1.x", "HTTP/2 206 OK\r\n\r\n", /status line/],
    ["a protocol switch", "HTTP/1.1 101 Switching Protocols\r\n\r\n", /protocol switch/],
  ];
  for (const [what, head, pattern] of badHeads) {
    test(`refused: ${what}`, async () => {
      const srv = await canned([head]);
      try {
        await assert.rejects(rawGet(srv.url, {}, opts), malformed(pattern));
      } finally {
        srv.close();
      }
    });
  }

  test("refused: header fields over HEAD_MAX bytes, even arriving in small reads", async () => {
    const field = `X-Pad: ${"a".repeat(1000)}\r\n`;
    const srv = await canned([
      "HTTP/1.1 206 OK\r\n",
      ...Array.from({ length: Math.ceil(HEAD_MAX / field.length) + 1 }, () => field),
      "\r\n",
    ]);
    try {
      await assert.rejects(rawGet(srv.url, {}, opts), malformed(/over 16384 bytes/));
    } finally {
      srv.close();
    }
  });

  const badBodies: [string, string[], RegExp][] = [
    ["a chunk size that is not hex", ["5\r\nhello\r\nzz\r\n"], /chunk size/],
    ["a negative chunk size", ["-5\r\nhello\r\n"], /chunk size/],
    ["a chunk size over 12 hex digits", ["1000000000000\r\n"], /chunk size/],
    ["a chunk longer than its size", ["3\r\nhello\r\n0\r\n\r\n"], /longer than its size/],
    ["a chunk-size line over 4 KiB", [`5;${"x".repeat(5000)}`], /over 4 KiB/],
    ["a malformed trailer", ["0\r\nno colon\r\n\r\n"], /trailer/],
  ];
  for (const [what, rest, pattern] of badBodies) {
    test(`refused: ${what}`, async () => {
      const r = await answer(["HTTP/1.1 206 OK\r\nTransfer-Encoding: chunked\r\n\r\n", ...rest]);
      assert.equal(r.ended, false);
      malformed(pattern)(r.error);
    });
  }

  test("refused: bytes past the end of a Content-Length body", async () => {
    const r = await answer(["HTTP/1.1 206 OK\r\nContent-Length: 3\r\n\r\n", "abcdef"]);
    assert.equal(r.ended, false);
    malformed(/more bytes than its Content-Length/)(r.error);
  });
});

describe("streamed whole-file reads through the reader (loopback Range server)", () => {
  const sb = sandbox();
  const key = generateX25519Identity();
  const identities = parseIdentityFile(key.identity);
  const idFile = join(sb.dir, "id.txt");
  const plain = randomBytes(3 * 1024 * 1024 + 777);
  let sealed: Buffer;
  let server: RangeServer;

  before(async () => {
    writeFileSync(idFile, `${key.identity}\n`, { mode: 0o600 });
    writeFileSync(join(sb.dir, "m.bin"), plain);
    await sealFile(join(sb.dir, "m.bin"), join(sb.dir, "m.bin.tseal"), {
      recipients: [parseRecipient(key.recipient)],
    });
    sealed = readFileSync(join(sb.dir, "m.bin.tseal"));
    server = await rangeServer();
    server.put("/m.tseal", sealed);
  });
  after(async () => {
    await server?.close();
    sb.cleanup();
  });

  const frames: [string, (body: Buffer, cr: string, etag: string) => Buffer, RegExp][] = [
    [
      "conflicting Content-Length",
      (b, cr, etag) =>
        Buffer.concat([
          Buffer.from(
            `HTTP/1.1 206 Partial Content\r\nETag: ${etag}\r\nContent-Range: ${cr}\r\nContent-Length: ${b.length}\r\nContent-Length: ${b.length + 1}\r\n\r\n`,
          ),
          b,
        ]),
      /conflicting content-length/,
    ],
    [
      "a bad chunk size",
      (b, cr, etag) =>
        Buffer.concat([
          Buffer.from(
            `HTTP/1.1 206 Partial Content\r\nETag: ${etag}\r\nContent-Range: ${cr}\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n`,
          ),
          b.subarray(0, 0x1000),
          Buffer.from("\r\nq\r\n"),
        ]),
      /chunk size/,
    ],
  ];
  for (const [what, raw, pattern] of frames) {
    test(`a malformed answer (${what}) fails at once with E_IO, not retried`, async () => {
      server.reset();
      server.mode.raw = raw;
      const src = await openHttpSource(`${server.base}/m.tseal`, { backoffMs: 1 });
      try {
        await assert.rejects(openSource(src, join(sb.dir, "out.bin"), { identities }), (e) =>
          malformed(pattern)(e),
        );
      } finally {
        await src.close();
      }
      const streamed = server.requests.filter((r) => !r.range?.startsWith("bytes=0-"));
      assert.equal(streamed.length, 1, "one streamed GET, no retry");
    });
  }

  test("a chunked answer of the right bytes opens to the plaintext", async () => {
    server.reset();
    server.mode.raw = (b, cr, etag) => {
      const parts: Buffer[] = [
        Buffer.from(
          `HTTP/1.1 206 Partial Content\r\nETag: ${etag}\r\nContent-Range: ${cr}\r\nTransfer-Encoding: chunked\r\n\r\n`,
        ),
      ];
      for (let at = 0; at < b.length; at += 100_003) {
        const c = b.subarray(at, at + 100_003);
        parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from("\r\n"));
      }
      parts.push(Buffer.from("0\r\n\r\n"));
      return Buffer.concat(parts);
    };
    const src = await openHttpSource(`${server.base}/m.tseal`);
    try {
      await openSource(src, join(sb.dir, "chunked.bin"), { identities });
    } finally {
      await src.close();
    }
    assert.ok(readFileSync(join(sb.dir, "chunked.bin")).equals(plain));
  });
});

describe("HTTPS: the server verified as node:https verifies it", () => {
  const home = mkdtempSync(join(tmpdir(), "tseal-http1-tls-"));
  const key = generateX25519Identity();
  const idFile = join(home, "id.txt");
  const plain = randomBytes(2 * 1024 * 1024 + 99);
  let caPath = "";
  let tlsServer: RangeServer;
  let otherHost: RangeServer;

  before(async () => {
    const dev = await ensureDevTls(home);
    caPath = dev.caPath;
    writeFileSync(idFile, `${key.identity}\n`, { mode: 0o600 });
    writeFileSync(join(home, "m.bin"), plain);
    await sealFile(join(home, "m.bin"), join(home, "m.bin.tseal"), {
      recipients: [parseRecipient(key.recipient)],
    });
    const sealed = readFileSync(join(home, "m.bin.tseal"));
    tlsServer = await rangeServer({ tls: dev });
    tlsServer.put("/m.tseal", sealed);
    // 127.0.0.2 is loopback too, but not a name the certificate holds.
    otherHost = await rangeServer({ tls: dev, host: "127.0.0.2" });
    otherHost.put("/m.tseal", sealed);
  });
  after(async () => {
    await tlsServer?.close();
    await otherHost?.close();
    rmSync(home, { recursive: true, force: true });
  });

  const port = (s: RangeServer) => new URL(s.base).port;

  /** A child's exit status and output (async: the servers run in this process). */
  const run = (args: string[], env: NodeJS.ProcessEnv) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      c.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
      });
      c.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      c.on("close", (status) => resolve({ status, stdout, stderr }));
    });

  /** rawGet in a child that trusts the dev CA (NODE_EXTRA_CA_CERTS is read at start-up). */
  const childGet = async (url: string, trustCa: boolean) => {
    const script = `import { rawGet } from ${JSON.stringify(http1Module)};
      rawGet(new URL(process.argv[1]), { range: "bytes=0-99" }, { timeoutMs: 5000 }).then(
        (r) => { console.log(JSON.stringify({ status: r.statusCode })); r.destroy(); },
        (e) => console.log(JSON.stringify({ code: e.code })));`;
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: trustCa ? caPath : "" };
    const r = await run(["--input-type=module", "-e", script, url], env);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { status?: number; code?: string };
  };

  test("a certificate from a CA the runtime does not trust is refused", async () => {
    const r = await childGet(`https://localhost:${port(tlsServer)}/m.tseal`, false);
    assert.equal(r.status, undefined);
    assert.match(r.code ?? "", /CERT|SIGNATURE|ISSUER/);
  });

  test("a trusted certificate for another name is refused", async () => {
    const r = await childGet(`https://127.0.0.2:${port(otherHost)}/m.tseal`, true);
    assert.equal(r.status, undefined);
    assert.equal(r.code, "ERR_TLS_CERT_ALTNAME_INVALID");
  });

  test("tensorseal open https://localhost:PORT/... streams through the reader with SNI", async () => {
    tlsServer.reset();
    const out = join(home, "out.bin");
    const r = await run(
      [
        join(here, "../../cli/tensorseal.cjs"),
        "open",
        `https://localhost:${port(tlsServer)}/m.tseal`,
        "-i",
        idFile,
        "-o",
        out,
      ],
      { ...process.env, NODE_EXTRA_CA_CERTS: caPath },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(out).equals(plain));
    assert.ok(tlsServer.requests.length >= 2, "the probe and the streamed GET");
    for (const q of tlsServer.requests) assert.equal(q.servername, "localhost");
  });
});
