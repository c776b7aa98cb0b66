/**
 * exec: open sealed models into a private RAM directory, run a command on them, wipe them.
 * `{model}` / `{NAME}` in the command's arguments become plaintext paths, and so do the env
 * variables TENSORSEAL_MODEL / TENSORSEAL_MODEL_<NAME>. SIGINT, SIGTERM and SIGHUP are
 * forwarded to the child; the plaintext is wiped when the child exits, and the result is the
 * child's exit code (128 + signal number when a signal killed it).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { constants } from "node:os";
import { basename, join } from "node:path";
import { openFile } from "../engine/index.js";
import { fail } from "../format/errors.js";
import type { Identity } from "../format/stanza.js";
import { isSealedModelDir, manifestPath, openModelDir } from "./model-dir/index.js";
import { createRamDir, DEFAULT_RAM_BASE, wipeDirSync } from "./ram-dir.js";

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
/** Secrets that unlock keys never reach the child. */
const SCRUBBED_ENV = [
  "TENSORSEAL_ROOT_KEY_FILE",
  "TENSORSEAL_KEYSTORE_PASSPHRASE",
  "TENSORSEAL_PASSPHRASE",
];

export interface SealedModel {
  /** A sealed file (.tseal) or a sealed model directory (from sealModelDir). */
  readonly path: string;
  readonly name?: string;
}

export interface ExecOptions {
  readonly models: readonly SealedModel[];
  /** The program and its arguments. */
  readonly command: readonly string[];
  /** RAM-backed base directory; default /dev/shm. Must be tmpfs or ramfs. */
  readonly tmpfs?: string;
  /** Keys for one sealed file (the manifest, for a directory). */
  readonly identitiesFor: (sealedFile: string) => Promise<readonly Identity[]>;
  /** After a forwarded signal, SIGKILL the child if it has not exited in this time. */
  readonly graceMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** "path" or "path:NAME" (NAME: letters, digits, underscore). */
export function parseModelSpec(spec: string): SealedModel {
  const colon = spec.lastIndexOf(":");
  const name = colon > 0 ? spec.slice(colon + 1) : "";
  if (colon > 0 && NAME_PATTERN.test(name)) return { path: spec.slice(0, colon), name };
  if (spec.length === 0) fail("E_USAGE", "--model needs a sealed file or directory");
  return { path: spec };
}

/** Replaces `{model}` and `{NAME}` tokens; other braces are left alone. */
export function substitute(args: readonly string[], paths: ReadonlyMap<string, string>): string[] {
  return args.map((a) => a.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, k) => paths.get(k) ?? m));
}

export async function execWithSealedModels(opts: ExecOptions): Promise<number> {
  checkOptions(opts);
  const run = new ExecRun(opts);
  try {
    return await run.start();
  } finally {
    run.cleanup();
  }
}

function checkOptions(opts: ExecOptions): void {
  if (opts.command.length === 0) fail("E_USAGE", "no command given: put it after --");
  if (opts.models.length === 0) fail("E_USAGE", "no --model given");
  const names = opts.models.flatMap((m) => (m.name ? [m.name] : []));
  if (names.includes("model")) fail("E_USAGE", "NAME `model` is reserved for the first --model");
  if (new Set(names).size !== names.length) fail("E_USAGE", "a --model NAME is used twice");
}

class ExecRun {
  private dir: string | null = null;
  private child: ChildProcess | null = null;
  private pending: NodeJS.Signals | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private readonly onSignal = (sig: NodeJS.Signals) => this.signal(sig);
  private readonly onExit = () => this.cleanup();

  constructor(private readonly opts: ExecOptions) {
    for (const s of FORWARDED) process.on(s, this.onSignal);
    process.on("exit", this.onExit);
  }

  async start(): Promise<number> {
    this.dir = await createRamDir(this.opts.tmpfs ?? DEFAULT_RAM_BASE);
    const paths = new Map<string, string>();
    for (const [i, m] of this.opts.models.entries()) {
      const plain = await this.openModel(m, join(this.dir, m.name ?? `m${i}`));
      if (this.pending) return 128 + constants.signals[this.pending];
      if (i === 0) paths.set("model", plain);
      if (m.name) paths.set(m.name, plain);
    }
    return this.spawnChild(paths);
  }

  private async openModel(m: SealedModel, slot: string): Promise<string> {
    await mkdir(slot, { mode: 0o700 });
    const plain = join(slot, basename(m.path).replace(/\.tseal$/, "") || "model");
    if (isSealedModelDir(m.path)) {
      const identities = await this.opts.identitiesFor(manifestPath(m.path));
      await openModelDir(m.path, plain, { identities });
    } else {
      if (!existsSync(m.path)) fail("E_USAGE", `${m.path}: no such sealed file or directory`);
      await openFile(m.path, plain, { identities: await this.opts.identitiesFor(m.path) });
    }
    return plain;
  }

  private spawnChild(paths: Map<string, string>): Promise<number> {
    const env: NodeJS.ProcessEnv = { ...(this.opts.env ?? process.env) };
    for (const k of SCRUBBED_ENV) delete env[k];
    for (const [k, p] of paths) {
      env[k === "model" ? "TENSORSEAL_MODEL" : `TENSORSEAL_MODEL_${k.toUpperCase()}`] = p;
    }
    const [program, ...args] = substitute(this.opts.command, paths);
    return new Promise((resolve, reject) => {
      const child = spawn(program!, args, { stdio: "inherit", env });
      this.child = child;
      child.once("error", (e: NodeJS.ErrnoException) =>
        reject(fail("E_USAGE", `cannot run ${program}: ${e.code ?? e.message}`, e)),
      );
      child.once("exit", (code, signal) => {
        this.child = null;
        resolve(signal ? 128 + constants.signals[signal] : (code ?? 1));
      });
    });
  }

  private signal(sig: NodeJS.Signals): void {
    if (!this.child) {
      this.pending ??= sig; // still opening: stop before spawning; cleanup wipes what exists
      return;
    }
    this.child.kill(sig);
    this.killTimer ??= setTimeout(() => this.child?.kill("SIGKILL"), this.opts.graceMs ?? 10_000);
  }

  /** Idempotent; also runs from process "exit" if anything escaped the normal path. */
  cleanup(): void {
    for (const s of FORWARDED) process.off(s, this.onSignal);
    process.off("exit", this.onExit);
    if (this.killTimer) clearTimeout(this.killTimer);
    if (!this.dir) return;
    const left = wipeDirSync(this.dir);
    this.dir = null;
    if (left.length > 0) {
      process.stderr.write(`tensorseal: warning: could not wipe ${left.join(", ")}\n`);
    }
  }
}
