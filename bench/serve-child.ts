/**
 * A real `tensorseal serve --dev` child process (TLS on loopback, info-level JSON logs written
 * to /dev/null as in production) with a token, small HTTPS helpers and the autocannon load
 * generator: what a bench needs to drive the service from outside its process.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

export const CLI = resolve("dist/cli/main.js");

/** The part of autocannon's result used here (the package ships no types; no @types dependency added). */
export interface LoadResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
export const autocannon = createRequire(import.meta.url)("autocannon") as (
  o: object,
) => Promise<LoadResult>;

export interface ServiceChild {
  url: string;
  ca: Buffer;
  token: string;
  env: NodeJS.ProcessEnv;
  proc: ChildProcess;
}

/** `extraArgs` go to `serve`, `nodeArgs` to the server's node (e.g. `--cpu-prof`). */
export async function startService(
  db: string,
  home: string,
  extraArgs: string[] = [],
  nodeArgs: string[] = [],
): Promise<ServiceChild> {
  const env = { ...process.env, TENSORSEAL_HOME: home };
  const tok = spawnSync(
    process.execPath,
    [CLI, "service", "token", "create", "--scope", "admin,wrap,unwrap", "--db", db],
    { env },
  );
  if (tok.status !== 0) throw new Error(tok.stderr.toString());
  const proc = spawn(
    process.execPath,
    [...nodeArgs, CLI, "serve", "--dev", "--listen", "127.0.0.1:0", "--db", db, ...extraArgs],
    { env, stdio: ["ignore", "ignore", "pipe"] },
  );
  let err = "";
  const url = await new Promise<string>((ok, fail) => {
    proc.stderr!.on("data", (d: Buffer) => {
      err += d;
      const m = /listening on (https:\/\/\S+)/.exec(err);
      if (m && err.includes("development CA")) ok(m[1]!);
    });
    proc.once("exit", () => fail(new Error(err)));
  });
  return {
    url,
    ca: readFileSync(join(home, "service-dev", "ca.pem")),
    token: tok.stdout.toString().trim(),
    env,
    proc,
  };
}

export async function stopService(s: ServiceChild): Promise<void> {
  if (s.proc.exitCode !== null) return;
  s.proc.kill("SIGTERM");
  await new Promise((r) => s.proc.once("exit", r));
}

/** One HTTPS request with the service's token; the body as text. */
export function call(
  s: ServiceChild,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  return new Promise((ok, fail) => {
    const req = request(new URL(path, s.url), {
      method,
      ca: s.ca,
      timeout: 10_000,
      headers: { authorization: `Bearer ${s.token}`, "content-type": "application/json" },
    });
    req.on("response", (res) => {
      let t = "";
      res.on("data", (d) => {
        t += d;
      });
      res.on("end", () => ok({ status: res.statusCode ?? 0, text: t }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", fail);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
