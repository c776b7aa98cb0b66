/**
 * The optional native addon (build/Release/tseal_gcm.node from native/*.cc, built at install
 * time by scripts/build-native.mjs), loaded once for the whole package. It calls the OpenSSL
 * inside the node binary, as node:crypto does: its batch AES-GCM, file mapping and linkFd serve
 * the engine (src/engine/native-gcm.ts), its one-shot primitives the format and the keys
 * (./primitives.ts).
 *
 * TENSORSEAL_NATIVE=0 leaves it unloaded (everything then runs on node:crypto).
 * TENSORSEAL_REQUIRE_ALL=1 (CI) makes a missing addon an error at load time, so CI never
 * silently tests only the fallback.
 */
import { fileURLToPath } from "node:url";

/** dist/src/format/native-addon.js -> <package root>/build/Release/tseal_gcm.node */
export const NATIVE_ADDON_PATH = fileURLToPath(
  new URL("../../../build/Release/tseal_gcm.node", import.meta.url),
);

function load(): Record<string, unknown> | null {
  if (process.env["TENSORSEAL_NATIVE"] === "0") return null;
  try {
    // process.dlopen, as require() does for a .node file, without require()'s resolution (which
    // reads the package's package.json first): ~0.6 ms less start-up for every seal and open
    // (issue 11). Nothing else loads this addon by path; a second dlopen would only init it again.
    const mod = { exports: {} as Record<string, unknown> };
    process.dlopen(mod, NATIVE_ADDON_PATH);
    return mod.exports;
  } catch (e) {
    return missing(e instanceof Error ? e.message.split("\n")[0]! : String(e));
  }
}

/** Null (the node:crypto paths), or under TENSORSEAL_REQUIRE_ALL=1 an error naming `why`. */
export function missing(why: string): null {
  if (process.env["TENSORSEAL_REQUIRE_ALL"] === "1") {
    throw new Error(
      `TENSORSEAL_REQUIRE_ALL=1 but the native addon did not load from ` +
        `${NATIVE_ADDON_PATH} (${why}); run \`npm run build:native\``,
    );
  }
  return null;
}

export const nativeAddon = load();
