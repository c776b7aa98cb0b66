/**
 * exec: open sealed models into a private RAM directory, run a command on them, wipe them.
 * `{model}` / `{NAME}` in the command's arguments become plaintext paths, and so do the env
 * variables TENSORSEAL_MODEL / TENSORSEAL_MODEL_<NAME>. SIGINT, SIGTERM and SIGHUP are
 * forwarded to the command; the plaintext is wiped when it exits, and the result is its exit
 * code (128 + signal number when a signal killed it). A signal that arrives while the models
 * are still being opened wipes them and ends exec at once, dying of that signal.
 *
 * Edges (docs/INTEGRATIONS.md, exec): the command is found before anything is decrypted (127 /
 * 126 otherwise); it gets an allow-listed environment without key secrets (exec-env.ts); a
 * guardian process (exec-guardian.ts) starts it in its own process group and, should this
 * process die even by SIGKILL, kills that group and wipes the directory; RAM directories left
 * by dead execs are removed by the next one (ram-dir-sweep.ts).
 *
 * With `outputs` (--seal-outputs) the command also gets a RAM directory for what it writes
 * (TENSORSEAL_OUTPUT_DIR); when it ends, however it ends, the models' plaintext is wiped first,
 * then its outputs are sealed into the target directory and wiped (exec-outputs.ts). Signals
 * that arrive while sealing are held off by the forwarding handlers; a SIGKILL loses the outputs.
 */

import { type ChildProcess, spawn } from "node:child_process";
import type { KeyObject } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { exitBySignal, inspectFile, openFile } from "../engine/index.js";
import { fail, namingFile } from "../format/errors.js";
import { printable } from "../format/printable.js";
import { refuseUnencrypted } from "../format/public.js";
import type { Identity } from "../format/stanza.js";
import { commandError, ExecError, resolveCommand } from "./exec-command.js";
import { childEnv } from "./exec-env.js";
import type { GuardianReport, GuardianRequest } from "./exec-guardian.js";
import {
  checkOutputsTarget,
  OUTPUT_DIR_ENV,
  type SealOutputsOptions,
  sealOutputs,
} from "./exec-outputs.js";
import { isSealedModelDir, manifestPath, openModelDir } from "./model-dir/index.js";
import { checkOpenedFile, verifySealedFile } from "./provenance/file.js";
import {
  checkRamFs,
  createRamDir,
  DEFAULT_RAM_BASE,
  modelLabel,
  plaintextName,
  wipeDirSync,
} from "./ram-dir.js";
import { sweepStaleRamDirs } from "./ram-dir-sweep.js";

export { ExecError } from "./exec-command.js";

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
/**
 * A terminal sends Ctrl-C and hang-up to its whole foreground job, which the command's process
 * group no longer is (it has its own session): those go to the group, as before. SIGTERM goes
 * to the command alone, as `docker stop` and service managers send it, so that a runtime shuts
 * its workers down in order.
 */
const TO_GROUP: ReadonlySet<NodeJS.Signals> = new Set(["SIGINT", "SIGHUP"]);
const GUARDIAN = fileURLToPath(new URL("./exec-guardian.js", import.meta.url));

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
  /** After a forwarded signal, SIGKILL the command if it has not exited in this time. */
  readonly graceMs?: number;
  /** The environment the command's is filtered from; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** More variables the command inherits: names, or patterns such as `HF_*` (exec-env.ts). */
  readonly envAllow?: readonly string[];
  /** One-line notices and warnings (default: stderr, prefixed `tensorseal: `). */
  readonly notify?: (line: string) => void;
  /**
   * Progress while the models are opened: bytes done of one model (a file, or a directory's
   * files) and the file at hand; `done` after each model, so before the command starts.
   */
  readonly progress?: {
    update(done: number, total: number, path: string): void;
    done(): void;
  };
  /** --seal-outputs: a RAM directory for the command's outputs, sealed into `dir` at the end. */
  readonly outputs?: SealOutputsOptions;
  /** Refuse a model unless it is signed by this key (seal-dir/seal --sign; provenance/). */
  readonly requireSigner?: KeyObject;
  /**
   * Refuse a sealed file model that is public (integrity only, spec/FORMAT.md §2.5), before its
   * key is asked for. A directory's files are always held to what its manifest records.
   */
  readonly requireEncrypted?: boolean;
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

/**
 * Runs the command on the opened models and resolves to its exit code. Throws ExecError (exit
 * 127 / 126 / 1, one line) when the command cannot be started or its guardian died.
 */
export async function execWithSealedModels(opts: ExecOptions): Promise<number> {
  checkOptions(opts);
  const run = new ExecRun(opts);
  try {
    let code: number;
    try {
      code = await run.start();
    } catch (e) {
      await run.finishOutputs(); // the command may have written before its guardian died
      throw e;
    }
    const problem = await run.finishOutputs();
    // The command's status stays; a success whose outputs were not all sealed is not one.
    if (problem) throw new ExecError(code === 0 ? 1 : code, problem);
    return code;
  } finally {
    run.cleanup();
    await run.stopGuardian();
  }
}

function checkOptions(opts: ExecOptions): void {
  if (opts.command.length === 0) fail("E_USAGE", "no command given: put it after --");
  if (opts.models.length === 0) fail("E_USAGE", "no --model given");
  const names = opts.models.flatMap((m) => (m.name ? [m.name] : []));
  if (names.includes("model")) fail("E_USAGE", "NAME `model` is reserved for the first --model");
  if (new Set(names).size !== names.length) fail("E_USAGE", "a --model NAME is used twice");
  if (opts.outputs) checkOutputsTarget(opts.outputs.dir, opts.outputs.force);
}

class ExecRun {
  private dir: string | null = null;
  private outDir: string | null = null;
  private guardian: ChildProcess | null = null;
  private started = false;
  private killTimer: NodeJS.Timeout | null = null;
  private readonly notify: (line: string) => void;
  private readonly onSignal = (sig: NodeJS.Signals) => this.signal(sig);
  private readonly onExit = () => this.cleanup();

  constructor(private readonly opts: ExecOptions) {
    this.notify = opts.notify ?? ((line) => process.stderr.write(`tensorseal: ${line}\n`));
    for (const s of FORWARDED) process.on(s, this.onSignal);
    process.on("exit", this.onExit);
  }

  async start(): Promise<number> {
    const env = this.environment();
    const [program, ...rest] = this.opts.command as [string, ...string[]];
    const tokens = /\{[A-Za-z_][A-Za-z0-9_]*\}/.test(program);
    // Before anything is decrypted; a program named by a {token} exists only once opened.
    const file = tokens ? null : resolveCommand(program, env.PATH);
    const base = this.opts.tmpfs ?? DEFAULT_RAM_BASE;
    await checkRamFs(base);
    for (const s of sweepStaleRamDirs(base)) {
      this.notify(
        s.left.length === 0
          ? `removed ${printable(s.path)}, the plaintext of an exec that was killed (pid ${s.pid})`
          : `warning: could not fully remove ${printable(s.path)} of a killed exec: ${printable(s.left.join(", "))}`,
      );
    }
    this.dir = await createRamDir(base, modelLabel(this.opts.models[0]!.path));
    if (this.opts.outputs) this.outDir = await createRamDir(base, "outputs");
    // From here on, our death wipes the directories.
    this.guardian = this.startGuardian([this.dir, ...(this.outDir ? [this.outDir] : [])]);
    if (this.outDir) env[OUTPUT_DIR_ENV] = this.outDir;

    const paths = new Map<string, string>();
    const slots: [SealedModel, string][] = [];
    for (const [i, m] of this.opts.models.entries()) {
      const plain = join(this.dir, m.name ?? `m${i}`, plaintextName(m.path));
      slots.push([m, plain]);
      if (i === 0) paths.set("model", plain);
      if (m.name) paths.set(m.name, plain);
    }
    for (const [m, plain] of slots) {
      try {
        await this.openModel(m, plain);
      } finally {
        this.opts.progress?.done();
      }
    }
    for (const [k, p] of paths) {
      env[k === "model" ? "TENSORSEAL_MODEL" : `TENSORSEAL_MODEL_${k.toUpperCase()}`] = p;
    }
    const [argv0, ...args] = substitute([program, ...rest], paths) as [string, ...string[]];
    return this.run({ file: file ?? argv0, argv0, args, env });
  }

  /** The allow-listed environment; warns (names only) about what a user pattern matched but lost. */
  private environment(): Record<string, string> {
    const r = childEnv(this.opts.env ?? process.env, this.opts.envAllow ?? []);
    if (r.droppedKeySecrets.length > 0) {
      this.notify(
        `warning: not passing ${r.droppedKeySecrets.join(", ")} to the command: they unlock keys`,
      );
    }
    if (r.droppedSecretLooking.length > 0) {
      this.notify(
        `warning: not passing ${r.droppedSecretLooking.join(", ")} to the command: a pattern matched, but the names look like secrets; name each with --env NAME to pass it`,
      );
    }
    return r.env;
  }

  private async openModel(m: SealedModel, plain: string): Promise<void> {
    await mkdir(dirname(plain), { mode: 0o700 });
    if (isSealedModelDir(m.path)) {
      const identities = await this.opts.identitiesFor(manifestPath(m.path));
      const progress = this.opts.progress;
      await openModelDir(m.path, plain, {
        identities,
        ...(this.opts.requireSigner && { requireSigner: this.opts.requireSigner }),
        ...(progress && { onProgress: (d, t, p) => progress.update(d, t, p) }),
      });
    } else {
      if (!existsSync(m.path)) {
        fail("E_USAGE", `${printable(m.path)}: no such sealed file or directory`);
      }
      const signed =
        this.opts.requireSigner && (await verifySealedFile(m.path, this.opts.requireSigner));
      const progress = this.opts.progress;
      if (this.opts.requireEncrypted)
        await namingFile(m.path, async () =>
          refuseUnencrypted(
            (await inspectFile(m.path)).descriptor.suite,
            "--require-encrypted asks for an encrypted one",
          ),
        );
      await openFile(m.path, plain, {
        requireEncrypted: this.opts.requireEncrypted === true,
        identities: await this.opts.identitiesFor(m.path),
        ...(progress && { onProgress: (done, total) => progress.update(done, total, m.path) }),
      });
      if (signed) await checkOpenedFile(plain, signed);
    }
  }

  private startGuardian(dirs: readonly string[]): ChildProcess {
    const g = spawn(process.execPath, [GUARDIAN, ...dirs], {
      stdio: ["inherit", "inherit", "inherit", "ipc"],
      env: {}, // it needs nothing; the command's environment travels over the channel
      detached: true, // its own session: a terminal's signals to our group do not reach it
    });
    g.on("error", () => {}); // reported below, or as "exit" before any report
    if (g.pid === undefined) throw new ExecError(1, "cannot start the exec guardian process");
    return g;
  }

  private run(request: {
    file: string;
    argv0: string;
    args: string[];
    env: Record<string, string>;
  }): Promise<number> {
    const g = this.guardian!;
    if (!g.connected || g.exitCode !== null || g.signalCode !== null) {
      return Promise.reject(guardianDied()); // while the models were being opened
    }
    return new Promise((resolve, reject) => {
      let pid: number | null = null;
      let settled = false;
      g.on("message", (m: GuardianReport) => {
        if ("pid" in m) pid = m.pid;
        else if ("error" in m) {
          settled = true;
          reject(commandError(request.argv0, m.error));
        } else if ("exit" in m) {
          settled = true;
          resolve(m.signal ? 128 + constants.signals[m.signal] : (m.exit ?? 1));
        }
      });
      g.once("exit", () => {
        if (settled) return;
        const orphaned = () => {
          if (pid !== null) killGroup(pid); // its command is an orphan now: stop it ourselves
          reject(guardianDied());
        };
        // "exit" can come before the channel's last messages (the command's pid among them)
        // are read: those are all delivered by "disconnect".
        if (g.connected) g.once("disconnect", orphaned);
        else orphaned();
      });
      this.send({ run: request });
      this.started = true;
    });
  }

  private send(m: GuardianRequest): void {
    if (this.guardian?.connected) this.guardian.send(m);
  }

  private signal(sig: NodeJS.Signals): void {
    if (!this.started) {
      // Still decrypting, nothing to forward to: wipe and go now, not after a 100 GB model.
      // The guardian sees us die and stops too.
      this.cleanup();
      exitBySignal(sig);
    }
    this.send({ signal: sig, group: TO_GROUP.has(sig) });
    this.killTimer ??= setTimeout(() => this.send({ kill: true }), this.opts.graceMs ?? 10_000);
  }

  /**
   * After the command: wipe the models' plaintext, then seal its outputs and wipe them. Returns
   * a one-line problem (outputs refused or lost) for the caller to report, or null.
   */
  async finishOutputs(): Promise<string | null> {
    const out = this.outDir;
    const o = this.opts.outputs;
    if (!out || !o) return null;
    this.wipe(this.dir);
    this.dir = null;
    const r = await sealOutputs(out, o);
    this.outDir = null;
    this.wipe(out); // sealOutputs wiped it; this reports what it could not
    const dest = printable(o.dir);
    if (r.sealed.length > 0) {
      this.notify(`sealed ${r.sealed.length} output file(s) into ${dest}`);
    } else if (!r.failed) {
      this.notify(`the command wrote no output files: ${dest} left as it was`);
    }
    const problems: string[] = [];
    if (r.refused.length > 0) {
      const list = r.refused.map((x) => `${printable(x.path)} (${x.why})`).join(", ");
      problems.push(`outputs refused (not sealed, removed): ${list}`);
    }
    if (r.failed) {
      problems.push(
        `sealing the outputs into ${dest} failed (${r.failed.message}); these outputs were wiped, not sealed: ${r.failed.lost.length > 0 ? printable(r.failed.lost.join(", ")) : "all of them (they could not be listed)"}`,
      );
    }
    return problems.length > 0 ? problems.join("; ") : null;
  }

  /** Idempotent; also runs from process "exit" if anything escaped the normal path. */
  cleanup(): void {
    for (const s of FORWARDED) process.off(s, this.onSignal);
    process.off("exit", this.onExit);
    if (this.killTimer) clearTimeout(this.killTimer);
    this.wipe(this.dir);
    this.wipe(this.outDir);
    this.dir = null;
    this.outDir = null;
  }

  private wipe(dir: string | null): void {
    if (!dir) return;
    const left = wipeDirSync(dir);
    if (left.length > 0) this.notify(`warning: could not wipe ${printable(left.join(", "))}`);
  }

  /** Closes the channel (the guardian stops the command if still running) and waits for it. */
  async stopGuardian(): Promise<void> {
    const g = this.guardian;
    if (!g?.pid || g.exitCode !== null || g.signalCode !== null) return;
    const exited = new Promise((resolve) => g.once("exit", resolve));
    if (g.connected) g.disconnect();
    await exited;
  }
}

const guardianDied = () =>
  new ExecError(1, "the exec guardian process died; the command was stopped or not started");

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // ESRCH: nothing left
  }
}
