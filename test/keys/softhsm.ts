/** What the PKCS#11 tests need from the machine: pkcs11js, the SoftHSM2 module and its tool. */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { DEFAULT_PKCS11_MODULE } from "../../src/keys/pkcs11/provider.js";

export const SOFTHSM_MODULE = process.env.TENSORSEAL_PKCS11_MODULE || DEFAULT_PKCS11_MODULE;

/** Why SoftHSM2 tests cannot run here, or null when they can. */
export function softhsmMissing(): string | null {
  try {
    createRequire(import.meta.url)("pkcs11js");
  } catch {
    return "pkcs11js is not installed (optional dependency)";
  }
  if (!existsSync(SOFTHSM_MODULE)) {
    return `no PKCS#11 module at ${SOFTHSM_MODULE} (run scripts/setup-test-deps.sh)`;
  }
  const r = spawnSync("softhsm2-util", ["--version"]);
  if (r.error || r.status !== 0)
    return "softhsm2-util is not on PATH (run scripts/setup-test-deps.sh)";
  return null;
}
