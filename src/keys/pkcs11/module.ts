/**
 * Loading a PKCS#11 module through pkcs11js (an optional native dependency) and running one
 * logged-in session at a time. PKCS#11 return values become E_PROVIDER errors that say what
 * failed and what to do; the PIN never appears in a message.
 */
import { createRequire } from "node:module";
import { TensorSealError } from "../../format/errors.js";
import { PKCS11_PROVIDER, providerFail } from "../provider.js";

type Handle = Buffer;
type Template = { type: number; value?: number | boolean | string | Buffer }[];

/** The few pkcs11js calls this provider uses (typed here so the build never needs pkcs11js). */
export interface Pkcs11Api {
  load(path: string): void;
  C_Initialize(): void;
  C_Finalize(): void;
  C_GetSlotList(tokenPresent?: boolean): Handle[];
  C_GetTokenInfo(slot: Handle): { label: string };
  C_OpenSession(slot: Handle, flags: number): Handle;
  C_CloseSession(session: Handle): void;
  C_Login(session: Handle, userType: number, pin?: string): void;
  C_Logout(session: Handle): void;
  C_FindObjectsInit(session: Handle, template: Template): void;
  C_FindObjects(session: Handle, max: number): Handle[];
  C_FindObjectsFinal(session: Handle): void;
  C_GetAttributeValue(session: Handle, object: Handle, template: Template): Template;
  C_GenerateKey(session: Handle, mechanism: { mechanism: number }, template: Template): Handle;
  C_DestroyObject(session: Handle, object: Handle): void;
  C_EncryptInit(session: Handle, mechanism: unknown, key: Handle): void;
  C_Encrypt(session: Handle, data: Buffer, out: Buffer): Buffer;
  C_DecryptInit(session: Handle, mechanism: unknown, key: Handle): void;
  C_Decrypt(session: Handle, data: Buffer, out: Buffer): Buffer;
}

/** pkcs11js's module object: the PKCS11 class plus CK* constants. */
export type Pkcs11Js = { PKCS11: new () => Pkcs11Api } & Record<string, number>;

let lib: Pkcs11Js | null = null;
export function pkcs11js(): Pkcs11Js {
  if (lib) return lib;
  try {
    lib = createRequire(import.meta.url)("pkcs11js") as Pkcs11Js;
  } catch (e) {
    providerFail(
      PKCS11_PROVIDER,
      "the pkcs11js module is not installed (an optional dependency with a native build): run `npm install pkcs11js` with a C++ compiler available",
      e,
    );
  }
  return lib;
}

const modules = new Map<string, Pkcs11Api>();

/** Loads and initialises a module once per process. */
export function loadModule(path: string): Pkcs11Api {
  const cached = modules.get(path);
  if (cached) return cached;
  const js = pkcs11js();
  const api = new js.PKCS11();
  try {
    api.load(path);
  } catch (e) {
    providerFail(
      PKCS11_PROVIDER,
      `cannot load PKCS#11 module ${path}: set TENSORSEAL_PKCS11_MODULE to your HSM's library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)`,
      e,
    );
  }
  try {
    api.C_Initialize();
  } catch (e) {
    if (ckr(e) !== js.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw mapError(e, `initialise ${path}`);
  }
  modules.set(path, api);
  return api;
}

/** Finalises every loaded module (tests, and long-lived processes that are done with HSMs). */
export function closeModules(): void {
  for (const api of modules.values()) {
    try {
      api.C_Finalize();
    } catch {
      // Finalising is best effort; the process keeps no state that depends on it.
    }
  }
  modules.clear();
}

export interface SessionTarget {
  readonly module: string;
  readonly token: string;
  /** Called only when a login is needed, so a missing PIN fails only for real work. */
  readonly pin: () => string;
}

export interface Session {
  readonly api: Pkcs11Api;
  readonly handle: Handle;
  readonly ck: Pkcs11Js;
}

/** Opens a read-write session on the token with this label, logs in, runs `fn`, cleans up. */
export function withSession<T>(t: SessionTarget, fn: (s: Session) => T): T {
  const api = loadModule(t.module);
  const ck = pkcs11js();
  const slot = findSlot(api, t.token, t.module);
  let handle: Handle;
  try {
    handle = api.C_OpenSession(slot, ck.CKF_SERIAL_SESSION! | ck.CKF_RW_SESSION!);
  } catch (e) {
    throw mapError(e, `open a session on token ${t.token}`);
  }
  try {
    login(api, handle, t);
    try {
      return fn({ api, handle, ck });
    } finally {
      try {
        api.C_Logout(handle);
      } catch {
        // Closing the session below ends the login anyway.
      }
    }
  } finally {
    api.C_CloseSession(handle);
  }
}

function login(api: Pkcs11Api, handle: Handle, t: SessionTarget): void {
  const ck = pkcs11js();
  const pin = t.pin();
  try {
    api.C_Login(handle, ck.CKU_USER!, pin);
  } catch (e) {
    if (ckr(e) === ck.CKR_USER_ALREADY_LOGGED_IN) return;
    throw mapError(e, `log in to token ${t.token}`);
  }
}

function findSlot(api: Pkcs11Api, token: string, module: string): Handle {
  let slots: Handle[];
  try {
    slots = api.C_GetSlotList(true);
  } catch (e) {
    throw mapError(e, "list slots");
  }
  const labels: string[] = [];
  for (const slot of slots) {
    const label = api.C_GetTokenInfo(slot).label.replace(/[\s\0]+$/, "");
    if (label === token) return slot;
    labels.push(label);
  }
  return providerFail(
    PKCS11_PROVIDER,
    `no token labelled ${JSON.stringify(token)} in ${module} (tokens present: ${
      labels.length ? labels.map((l) => JSON.stringify(l)).join(", ") : "none"
    }): check the token label, or SOFTHSM2_CONF for SoftHSM2`,
  );
}

/** The PKCS#11 return value of a pkcs11js error, or null. */
export function ckr(e: unknown): number | null {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : null;
}

const HINTS: Record<string, string> = {
  CKR_PIN_INCORRECT:
    "wrong PIN (set TENSORSEAL_PKCS11_PIN or TENSORSEAL_PKCS11_PIN_FILE to the user PIN)",
  CKR_PIN_LEN_RANGE: "wrong PIN (its length is outside the token's range)",
  CKR_PIN_LOCKED: "the user PIN is locked: the security officer must reset it",
  CKR_PIN_EXPIRED: "the user PIN has expired: set a new one",
  CKR_TOKEN_NOT_PRESENT: "the token is not present",
  CKR_DEVICE_REMOVED: "the token was removed",
  CKR_KEY_FUNCTION_NOT_PERMITTED:
    "the key does not permit this operation (CKA_ENCRYPT/CKA_DECRYPT)",
  CKR_MECHANISM_INVALID: "the token does not support AES-GCM (CKM_AES_GCM)",
  CKR_MECHANISM_PARAM_INVALID: "the token rejected the AES-GCM parameters",
  CKR_KEY_TYPE_INCONSISTENT: "the key is not an AES key",
};

/** An E_PROVIDER error for a failed PKCS#11 call: the CKR name plus a hint, never the PIN. */
export function mapError(e: unknown, what: string): Error {
  const js = pkcs11js();
  const code = ckr(e);
  const name =
    code === null
      ? ((e as { name?: string } | null)?.name ?? "error")
      : (Object.keys(js).find((k) => k.startsWith("CKR_") && js[k] === code) ??
        `0x${code.toString(16)}`);
  const hint = HINTS[name];
  const why = hint ? `${hint} (${name})` : name;
  return new TensorSealError("E_PROVIDER", `${PKCS11_PROVIDER}: cannot ${what}: ${why}`, {
    cause: e,
  });
}
