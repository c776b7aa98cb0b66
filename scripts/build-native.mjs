// Builds the optional native AES-GCM addon (native/tseal_gcm.cc -> build/Release/tseal_gcm.node)
// with the node-gyp that npm ships. It never fails the install: without a compiler or headers
// TensorSeal simply uses node:crypto, and this prints one line saying so.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const addon = join(root, "build", "Release", "tseal_gcm.node");

const GYP = ["node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"];

/** npm's own node-gyp (npm sets npm_config_node_gyp for lifecycle scripts), else a local one. */
function nodeGyp() {
  const found = (paths) => paths.find((p) => p && existsSync(p));
  const near = found([
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), "..", "lib", ...GYP),
  ]);
  if (near) return near;
  try {
    return createRequire(join(root, "package.json")).resolve("node-gyp/bin/node-gyp.js");
  } catch {
    // not a local dependency: ask npm where its global prefix is
  }
  const r = spawnSync("npm", ["prefix", "-g"], { encoding: "utf8", timeout: 30_000 });
  const prefix = r.status === 0 ? r.stdout.trim() : "";
  return prefix ? (found([join(prefix, "lib", ...GYP), join(prefix, ...GYP)]) ?? null) : null;
}

/** Local headers, so node-gyp never downloads them: the running node's prefix, else /usr. */
function nodeDir() {
  for (const dir of [resolve(dirname(process.execPath), ".."), "/usr"]) {
    if (existsSync(join(dir, "include", "node", "node_api.h"))) return dir;
  }
  return null;
}

function build() {
  const gyp = nodeGyp();
  if (!gyp) return "node-gyp not found";
  const env = { ...process.env };
  const dir = nodeDir();
  if (dir) env.npm_config_nodedir = dir;
  const r = spawnSync(process.execPath, [gyp, "rebuild", "--loglevel=error"], {
    cwd: root,
    env,
    encoding: "utf8",
    timeout: 300_000,
  });
  if (r.error) return `node-gyp could not run: ${r.error.message}`;
  if (r.status !== 0) {
    const log = `${r.stderr}\n${r.stdout}`;
    const why = /gyp ERR! stack Error: (.+)/.exec(log) ?? /\berror: (.+)/.exec(log);
    return `node-gyp exited with ${r.status}${why ? `: ${why[1].trim().slice(0, 160)}` : ""}`;
  }
  if (!existsSync(addon)) return "build produced no addon";
  try {
    const m = createRequire(import.meta.url)(addon);
    if (typeof m.sealBatch !== "function") return "addon lacks sealBatch";
  } catch (e) {
    return `addon does not load: ${e instanceof Error ? e.message.split("\n")[0] : e}`;
  }
  return null;
}

let reason;
try {
  reason = build();
} catch (e) {
  reason = e instanceof Error ? e.message : String(e);
}
if (reason) {
  console.log(`tensorseal: native AES-GCM unavailable (${reason}); using node:crypto`);
}
process.exit(0);
