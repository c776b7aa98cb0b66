/**
 * perm.*: secret files readable by group or others (mode & 0o044), and a keystore directory
 * open to them (mode & 0o077: a directory others can enter or list). Checked: the keystore in
 * $TENSORSEAL_HOME and its directory, TENSORSEAL_ROOT_KEY_FILE and
 * TENSORSEAL_SERVICE_ROOT_KEY_FILE, and every identity file, root key share and keystore found
 * by content under the PATHS given (secret-files.ts).
 */
import { stat } from "node:fs/promises";
import type { Finding, RuleId } from "./findings.js";
import type { SecretKind } from "./secret-files.js";

export type PermissionTarget = SecretKind | "root-key" | "keystore-dir";

const RULE: Record<PermissionTarget, RuleId> = {
  identity: "perm.identity-readable",
  share: "perm.share-readable",
  keystore: "perm.keystore-readable",
  "keystore-dir": "perm.keystore-readable",
  "root-key": "perm.root-key-readable",
};

const WHAT: Record<PermissionTarget, string> = {
  identity: "identity file",
  share: "root key share",
  keystore: "keystore",
  "keystore-dir": "keystore directory",
  "root-key": "root key file",
};

const SEVERITY = {
  identity: "critical",
  share: "error",
  keystore: "warning",
  "keystore-dir": "warning",
  "root-key": "critical",
} as const;

export async function checkPermissions(path: string, kind: PermissionTarget): Promise<Finding[]> {
  // A configured path may be a link (/run/secrets/...): what matters is the file it reaches.
  const st = await stat(path).catch(() => null);
  if (!st) return [];
  const dir = kind === "keystore-dir";
  if (dir ? !st.isDirectory() : !st.isFile()) return [];
  const open = st.mode & (dir ? 0o077 : 0o044);
  if (open === 0) return [];
  const mode = (st.mode & 0o777).toString(8).padStart(4, "0");
  const want = dir ? "0700" : "0600";
  const who = [open & 0o070 ? "group" : "", open & 0o007 ? "others" : ""].filter(Boolean);
  return [
    {
      id: RULE[kind],
      severity: SEVERITY[kind],
      message: `${WHAT[kind]} is ${dir ? "open" : "readable"} to ${who.join(" and ")} (mode ${mode})`,
      evidence: `mode ${mode}, owner uid ${st.uid}, group gid ${st.gid}`,
      fix: `chmod ${want.slice(1)} ${path}${kind === "keystore-dir" || kind === "keystore" ? "" : " (and consider it exposed: rotate what it protects)"}`,
      file: path,
    },
  ];
}
