/** `tensorseal serve --dev` as a real process on loopback, for tests of the CLI's server. */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { CLI, type Sandbox } from "../cli/helpers.js";

export interface ServeProcess {
  readonly proc: ChildProcess;
  readonly url: string;
  /** The audit public key serve printed (pin it for `audit verify`). */
  readonly publicKey: string;
  readonly caPath: string;
  /** Everything serve wrote on stderr so far. */
  stderr(): string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startServe(sb: Sandbox, args: string[] = []): Promise<ServeProcess> {
  const proc = spawn(
    process.execPath,
    [CLI, "serve", "--dev", "--listen", "127.0.0.1:0", "--log-level", "warn", ...args],
    { env: sb.env, stdio: ["ignore", "ignore", "pipe"] },
  );
  let err = "";
  proc.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = /listening on (https:\/\/\S+)/.exec(err);
      if (m && /development CA/.test(err)) resolve(m[1]!);
    };
    proc.stderr!.on("data", check);
    void exited.then((code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  const publicKey = /audit public key[^:]*: (\S+)/.exec(err)?.[1] ?? "";
  return {
    proc,
    url,
    publicKey,
    caPath: join(sb.env.TENSORSEAL_HOME!, "service-dev", "ca.pem"),
    stderr: () => err,
    stop(signal = "SIGTERM") {
      proc.kill(signal);
      return exited;
    },
  };
}

/** One HTTPS request to the served URL; resolves with the status. */
export function httpsStatus(
  s: ServeProcess,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, s.url), {
      method,
      ca: readFileSync(s.caPath),
      headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) },
    });
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A bearer token with `scopes` ("admin,wrap") from the sandbox's service database (CLI). */
export function cliToken(sb: Sandbox, scopes: string): string {
  const r = sb.run(["service", "token", "create", "--scope", scopes]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.toString().trim();
}

/** The CLI's environment for `s`: its URL, its dev CA and a token with `scopes` (cliToken). */
export function serveEnv(sb: Sandbox, s: ServeProcess, scopes: string): NodeJS.ProcessEnv {
  return {
    TENSORSEAL_SERVER: s.url,
    TENSORSEAL_SERVER_CA: s.caPath,
    TENSORSEAL_SERVER_TOKEN: cliToken(sb, scopes),
  };
}

/**
 * A keystore (`init`) in `sb` and `serve --dev` over it (`args` added): the server, and the
 * CLI's environment for it with a token of `scopes`.
 */
export async function servedKeystore(
  sb: Sandbox,
  scopes: string,
  args: string[] = [],
): Promise<{ srv: ServeProcess; env: NodeJS.ProcessEnv }> {
  assert.equal(sb.run(["init"]).status, 0);
  const srv = await startServe(sb, args);
  return { srv, env: serveEnv(sb, srv, scopes) };
}
