/**
 * moto's KMS server mode for the provider tests: found in .venv-moto (scripts/setup-test-deps.sh),
 * started on a free 127.0.0.1 port, stopped at the end. `kmsRecorder` puts a loopback proxy in
 * front of it that records every KMS call (operation and the key it names), so a test can prove
 * which keys were, and were not, contacted.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer as createHttpServer, request } from "node:http";
import { createServer, Socket } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const MOTO_REGION = "us-east-1";

/** The fake credentials and quiet SDK settings every moto-backed test runs with, plus `extra`. */
export function motoEnv(extra: Record<string, string>): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    AWS_REGION: MOTO_REGION,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    ...extra,
  };
}

export function motoServer(): string | null {
  const candidates = [
    process.env.TENSORSEAL_MOTO_SERVER,
    join(REPO, ".venv-moto/bin/moto_server"),
  ].filter((c): c is string => Boolean(c));
  for (const c of candidates) if (existsSync(c)) return c;
  const r = spawnSync("moto_server", ["--help"]);
  return r.status === 0 ? "moto_server" : null;
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      res(ok);
    };
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
    s.connect(port, "127.0.0.1");
  });
}

export async function startMoto(moto: string, port: number): Promise<ChildProcess> {
  const child = spawn(moto, ["-H", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) assert.fail(`moto_server exited (${child.exitCode}): ${stderr}`);
    if (await canConnect(port)) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  return assert.fail(`moto_server did not listen on 127.0.0.1:${port} within 30 s: ${stderr}`);
}

export function stopMoto(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    child.once("exit", () => res());
    child.kill("SIGTERM");
  });
}

/** One KMS call as the proxy saw it: `Decrypt`, `DescribeKey`, ... and the key it named. */
export interface KmsCall {
  readonly op: string;
  readonly keyId: string | null;
}

export interface KmsRecorder {
  /** The endpoint to give TensorSeal (TENSORSEAL_KMS_ENDPOINT). */
  readonly endpoint: string;
  readonly calls: KmsCall[];
  close(): Promise<void>;
}

/** A loopback proxy to `target` (moto) that records each KMS request before forwarding it. */
export async function kmsRecorder(target: string): Promise<KmsRecorder> {
  const calls: KmsCall[] = [];
  const to = new URL(target);
  const srv = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const target = String(req.headers["x-amz-target"] ?? "");
      let keyId: string | null = null;
      try {
        const j = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
        const k = j.KeyId ?? j.SourceKeyId;
        keyId = typeof k === "string" ? k : null;
      } catch {
        keyId = null;
      }
      calls.push({ op: target.replace(/^TrentService\./, ""), keyId });
      const fwd = request(
        {
          host: to.hostname,
          port: to.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      fwd.on("error", () => {
        res.writeHead(502);
        res.end();
      });
      fwd.end(body);
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}
