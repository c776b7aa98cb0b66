// Writes the V8 code cache of each one-command bundle (dist/cli/NAME.cjs -> NAME.cjs.v8cache, and
// NAME.cjs.VARIANT.v8cache for a kind of run that compiles other code: a seal to a recipient, an
// open with an identity; read by src/cli/code-cache.ts), issue #11. Each cache is made by running `tensorseal` on a
// representative command in a child process (a throwaway keystore, a 1 KiB file) and saving
// what V8 compiled by the end, the lazily compiled functions included. A cache holds only for
// the Node build and the exact file that made it (code-cache.ts checks both), so `npm run
// build` makes them for the building Node and the package's install script again for the
// user's. Run with --install: never fails (prints one line and leaves no cache instead; the
// CLI is then correct, only slower to start).
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cli = join(root, "dist", "cli");
const install = process.argv.includes("--install");

/**
 * Each cache: its bundle (src/cli/fast-commands.ts), the kind of run it is for (fast-commands.ts
 * cacheVariant; none: the default), and the command line whose run makes it. RECIPIENT is
 * replaced by the recipient of id.key. The variants run first: a run without its variant's cache
 * reads the default one, and would save that one's functions into its own too.
 */
const RUNS = [
  ["seal", "recipient", ["seal", "small.bin", "-r", "RECIPIENT", "-o", "xr.tseal"]],
  ["open", "identity", ["open", "r.tseal", "-i", "id.key", "-o", "yr.bin"]],
  ["version", undefined, ["--version"]],
  ["inspect", undefined, ["inspect", "small.tseal"]],
  ["seal", undefined, ["seal", "small.bin", "-o", "x.tseal"]],
  ["open", undefined, ["open", "small.tseal", "-o", "y.bin"]],
  ["verify", undefined, ["verify", "small.tseal"]],
];
const cacheName = (name, variant) =>
  variant ? `${name}.cjs.${variant}.v8cache` : `${name}.cjs.v8cache`;

function main() {
  if (!existsSync(join(cli, "tensorseal.cjs"))) {
    if (install) return; // a source checkout before its first build
    throw new Error("dist/cli is not built: run scripts/build-cli.mjs first");
  }
  const dir = mkdtempSync(join(tmpdir(), "tseal-code-cache-"));
  try {
    const rootKey = join(dir, "root.key");
    writeFileSync(rootKey, randomBytes(32).toString("hex"), { mode: 0o600 });
    writeFileSync(join(dir, "small.bin"), randomBytes(1024));
    const env = {
      PATH: process.env.PATH,
      HOME: dir,
      TENSORSEAL_HOME: join(dir, "home"),
      TENSORSEAL_ROOT_KEY_FILE: rootKey,
    };
    const run = (args, extra = {}) => {
      const r = spawnSync(process.execPath, [join(cli, "tensorseal.cjs"), ...args], {
        cwd: dir,
        env: { ...env, ...extra },
        encoding: "utf8",
      });
      if (r.status !== 0) throw new Error(`tensorseal ${args.join(" ")}: ${r.stderr}`);
    };
    run(["init"]);
    run(["seal", "small.bin", "-o", "small.tseal"]);
    run(["keygen", "-o", "id.key"]);
    const recipient = /^# recipient: (\S+)$/m.exec(readFileSync(join(dir, "id.key"), "utf8"))[1];
    run(["seal", "small.bin", "-r", recipient, "-o", "r.tseal"]);
    for (const [name, variant] of RUNS)
      rmSync(join(cli, cacheName(name, variant)), { force: true });
    for (const [name, variant, args] of RUNS) {
      const file = cacheName(name, variant);
      const cache = join(cli, file);
      const tmp = join(dir, file);
      const line = args.map((a) => (a === "RECIPIENT" ? recipient : a));
      run(line, { TENSORSEAL_CODE_CACHE_OUT: tmp });
      // dist/cli and tmpdir may be different file systems: copy in beside it, then rename.
      // 0644 whatever the umask: code-cache.ts ignores a cache its group could write.
      rmSync(`${cache}.tmp`, { force: true });
      writeFileSync(`${cache}.tmp`, readFileSync(tmp), { mode: 0o644 });
      renameSync(`${cache}.tmp`, cache);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  main();
} catch (e) {
  if (!install) throw e;
  console.log(
    `tensorseal: no start-up code cache (${e.message.split("\n")[0]}); the CLI works without`,
  );
}
