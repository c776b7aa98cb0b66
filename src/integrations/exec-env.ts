/**
 * The environment `exec` hands to the command: an allow-list, never a deny-list. The command
 * inherits only the variables a runtime needs (paths, locale, GPU, threading, Python and ML
 * runtime settings) plus those the user names with `--env NAME` or `--env 'PREFIX_*'`.
 *
 * Two rules sit above the allow-list:
 * - Variables that unlock keys (TensorSeal passphrases, PINs, tokens, root key files, the
 *   service database URL; AWS credentials) never pass. Naming one exactly is refused; a pattern
 *   that matches one drops it with a warning.
 * - A pattern (default or user) does not pass a name that looks like a secret (a word such as
 *   TOKEN, SECRET, PASSWORD or KEY): `HF_*` passes HF_HOME but not HF_TOKEN. Naming it exactly
 *   (`--env HF_TOKEN`) passes it.
 */
import { fail } from "../format/errors.js";

/** What a runtime usually needs; documented in docs/INTEGRATIONS.md (exec, "Environment"). */
export const DEFAULT_ENV_ALLOW: readonly string[] = [
  ...["PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "HOSTNAME", "TZ", "TMPDIR"],
  ...["LANG", "LANGUAGE", "LC_*", "TERM", "COLORTERM", "NO_COLOR"],
  ...["LD_LIBRARY_PATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "XDG_*"],
  ...["VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHON*"],
  ...["CUDA_*", "NVIDIA_*", "NCCL_*", "CUBLAS_*", "CUDNN_*", "ROCM_*", "HIP_*", "HSA_*"],
  ...["OMP_*", "MKL_*", "OPENBLAS_*", "KMP_*"],
  ...["HF_*", "HUGGINGFACE_*", "TRANSFORMERS_*", "TOKENIZERS_*", "TORCH_*", "PYTORCH_*"],
  ...["VLLM_*", "TRITON_*", "ORT_*", "GGML_*", "LLAMA_*", "XLA_*", "JAX_*"],
];

const PATTERN = /^[A-Za-z_*][A-Za-z0-9_*]*$/;
/** `_`-separated words that mark a name as a secret. */
const SECRET_WORDS = new Set([
  ...["TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWD", "PASSPHRASE", "PIN"],
  ...["KEY", "KEYS", "APIKEY", "CREDENTIAL", "CREDENTIALS", "AUTH", "AUTHORIZATION", "COOKIE"],
  ...["PRIVATE"],
]);

export function looksSecret(name: string): boolean {
  return name
    .toUpperCase()
    .split("_")
    .some((w) => SECRET_WORDS.has(w));
}

/**
 * TensorSeal's own secrets (keystore and file passphrases, PKCS#11 PIN, service token and
 * client key, root key files, the service database URL, which can carry its password) and
 * AWS credentials, with their `_FILE` forms.
 */
export function unlocksKeys(name: string): boolean {
  const n = name.toUpperCase();
  if (n === "TENSORSEAL_SERVICE_DB") return true;
  return (n.startsWith("TENSORSEAL_") || n.startsWith("AWS_")) && looksSecret(n);
}

export interface ChildEnv {
  readonly env: Record<string, string>;
  /** User-pattern matches not passed, for one warning line (names only, never values). */
  readonly droppedKeySecrets: readonly string[];
  readonly droppedSecretLooking: readonly string[];
}

/** Checks `--env` values: a name or a `*` pattern; naming a key-unlocking variable is refused. */
export function checkEnvPatterns(patterns: readonly string[]): void {
  for (const p of patterns) {
    if (!PATTERN.test(p)) {
      fail(
        "E_USAGE",
        `--env ${JSON.stringify(p)}: expected a variable name or a pattern like HF_*`,
      );
    }
    if (!p.includes("*") && unlocksKeys(p)) {
      fail(
        "E_USAGE",
        `--env ${p}: this variable unlocks keys and is never passed to the command; give the command its own credentials`,
      );
    }
  }
}

/** The command's environment: `parent` filtered through the default and user allow-lists. */
export function childEnv(parent: NodeJS.ProcessEnv, userPatterns: readonly string[]): ChildEnv {
  checkEnvPatterns(userPatterns);
  const exact = new Set(userPatterns.filter((p) => !p.includes("*")));
  const defaults = DEFAULT_ENV_ALLOW.map(toRegExp);
  const user = userPatterns.filter((p) => p.includes("*")).map(toRegExp);
  const env: Record<string, string> = {};
  const droppedKeySecrets: string[] = [];
  const droppedSecretLooking: string[] = [];
  for (const [name, value] of Object.entries(parent)) {
    if (value === undefined) continue;
    const byUser = user.some((r) => r.test(name));
    if (unlocksKeys(name)) {
      if (byUser) droppedKeySecrets.push(name);
    } else if (exact.has(name) || DEFAULT_ENV_ALLOW.includes(name)) {
      env[name] = value;
    } else if (byUser || defaults.some((r) => r.test(name))) {
      if (!looksSecret(name)) env[name] = value;
      else if (byUser) droppedSecretLooking.push(name);
    }
  }
  return { env, droppedKeySecrets, droppedSecretLooking };
}

function toRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.replaceAll("*", "[A-Za-z0-9_]*")}$`);
}
