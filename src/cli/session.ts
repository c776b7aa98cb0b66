/**
 * State of one CLI run that the light modules (main.ts, program.ts) share with the command
 * implementations they load on demand: the global --server URL, and what to do when the command
 * ends (keys-context.ts gives back reserved keystore wraps). Kept free of imports so that
 * `tensorseal --version` loads nothing more for it.
 */

let serverUrl: string | undefined;
const endHooks: (() => Promise<void>)[] = [];

/** `--server URL` (a global option); TENSORSEAL_SERVER otherwise. */
export function setServerUrl(url: string | undefined): void {
  serverUrl = url;
}

export function serverUrlOption(): string | undefined {
  return serverUrl;
}

/** Registers `f` to run when the command ends (only modules the command loaded register). */
export function atCommandEnd(f: () => Promise<void>): void {
  endHooks.push(f);
}

/** Runs every end-of-command hook, in order; the first failure is rethrown after the rest ran. */
export async function endCommand(): Promise<void> {
  let first: unknown = null;
  for (const f of endHooks) {
    try {
      await f();
    } catch (e) {
      first ??= e;
    }
  }
  if (first !== null) throw first;
}
