/**
 * Run as a child process: `node loaded-modules.js SPECIFIER` imports SPECIFIER and prints, as
 * JSON, every module file the import loaded: ES modules as a resolve hook sees them, CommonJS
 * modules and native addons from the require cache (a CommonJS `require` of another CommonJS
 * module does not pass through ESM hooks on Node 20).
 */
import { createRequire, register } from "node:module";
import { fileURLToPath } from "node:url";
import { MessageChannel } from "node:worker_threads";

const HOOKS = `let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  port.postMessage(r.url);
  return r;
}`;
const SENTINEL = "data:text/javascript,export default 'tensorseal-loaded-modules-sentinel'";

const specifier = process.argv[2];
if (!specifier) throw new Error("usage: loaded-modules.js SPECIFIER");
const { port1, port2 } = new MessageChannel();
const urls: string[] = [];
// Messages arrive in order; the sentinel, imported last, says every earlier one has arrived.
const drained = new Promise<void>((resolve) => {
  port1.on("message", (url: string) => {
    if (url === SENTINEL) resolve();
    else urls.push(url);
  });
});
register(`data:text/javascript,${encodeURIComponent(HOOKS)}`, {
  data: { port: port2 },
  transferList: [port2],
});
await import(specifier);
await import(SENTINEL);
await drained;
port1.close();
const esm = urls.filter((u) => u.startsWith("file:")).map((u) => fileURLToPath(u));
const cjs = Object.keys(createRequire(import.meta.url).cache);
process.stdout.write(JSON.stringify([...new Set([...esm, ...cjs])].sort()));
