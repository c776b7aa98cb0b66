/** What the PKCS#11 tests need from the machine: pkcs11js, the SoftHSM2 module and its tool. */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
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

/**
 * A SoftHSM2 configuration with an empty token directory under `dir`, and the environment that
 * points SoftHSM2 and TensorSeal at it with `pin` (for a child process, or for this one before
 * pkcs11js first loads the module: SoftHSM2 reads its configuration in C_Initialize).
 */
export function softHsmEnv(dir: string, pin: string): NodeJS.ProcessEnv {
  const tokens = join(dir, "tokens");
  mkdirSync(tokens);
  const conf = join(dir, "softhsm2.conf");
  writeFileSync(
    conf,
    `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  return {
    SOFTHSM2_CONF: conf,
    TENSORSEAL_PKCS11_MODULE: SOFTHSM_MODULE,
    TENSORSEAL_PKCS11_PIN: pin,
  };
}

/** Initialises a fresh token `label` in the SoftHSM2 that `env` (softHsmEnv's) points at. */
export function initToken(env: NodeJS.ProcessEnv, label: string, pin: string, soPin: string): void {
  const r = spawnSync(
    "softhsm2-util",
    ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", soPin],
    { env: { ...process.env, ...env }, encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`softhsm2-util --init-token failed: ${r.stderr}`);
}

/** A fresh SoftHSM2 token `label` under `dir`, with this process's environment pointing at it. */
export function initSoftHsmToken(dir: string, label: string, pin: string, soPin: string): void {
  const env = softHsmEnv(dir, pin);
  Object.assign(process.env, env);
  initToken(env, label, pin, soPin);
}
