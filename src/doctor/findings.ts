/**
 * What `tensorseal doctor` reports: findings, each under a stable rule id (docs/DECISIONS.md,
 * "doctor check ids") with a severity, the evidence that shows it and the fix. The ids never
 * change meaning: CI baselines and SARIF code-scanning alerts are keyed on them.
 */

/** Lowest to highest; the order is the exit-code order (exit-codes below). */
export const SEVERITIES = ["note", "warning", "error", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface Finding {
  readonly id: RuleId;
  readonly severity: Severity;
  /** One line: what is wrong, naming the key, version or file. */
  readonly message: string;
  /** What was observed (dates, states, modes, work factors): enough to check the claim. */
  readonly evidence: string;
  /** The command or edit that clears it. */
  readonly fix: string;
  /** The file concerned, absolute, when there is one. */
  readonly file?: string;
}

export interface Rule {
  readonly title: string;
  /** The severity most findings of this rule carry (some raise or lower it; each says why). */
  readonly severity: Severity;
  readonly help: string;
}

export const RULES = {
  "key.rotation-overdue": {
    title: "Key version overdue for rotation",
    severity: "warning",
    help: "The key's primary version is older than its rotation period (its own, or the doctor.rotation_period default of .tensorseal.yaml for keys without one: then a note).",
  },
  "keystore.weak-kdf": {
    title: "Keystore passphrase with a weak scrypt work factor",
    severity: "warning",
    help: "The keystore's root key is sealed under a passphrase stretched with a scrypt work factor below the default: a stolen keystore is cheaper to brute-force.",
  },
  "keystore.unverified": {
    title: "Keystore read without checking its MAC",
    severity: "note",
    help: "No root key file or keystore passphrase was in the environment, so the keystore's metadata was read without authenticating it: the key checks trust an unverified file.",
  },
  "file.version-destroyed": {
    title: "Sealed file wrapped under a destroyed key version",
    severity: "critical",
    help: "A kek stanza of the file is under a destroyed version: that stanza can never open it again (critical when no other stanza can).",
  },
  "file.version-retired": {
    title: "Sealed file wrapped under a disabled or scheduled-for-destruction key version",
    severity: "error",
    help: "A kek stanza is under a version that refuses to decrypt; once the version is destroyed the stanza is lost.",
  },
  "file.version-below-minimum": {
    title: "Sealed file wrapped under a version below min_decryption_version",
    severity: "error",
    help: "open refuses the stanza (exit 9) until the file is rewrapped to the latest version.",
  },
  "file.version-not-latest": {
    title: "Sealed file not yet moved to the key's primary version",
    severity: "note",
    help: "A rotation campaign (rewrap --to-latest) has not reached this file.",
  },
  "file.leftover-slot": {
    title: "Sealed file with a leftover header slot",
    severity: "warning",
    help: "The inactive header slot still holds the recipient list of an interrupted rewrap (verify exits 10): anyone able to edit the file can make it active again.",
  },
  "file.weak-passphrase": {
    title: "Passphrase stanza with a weak scrypt work factor",
    severity: "warning",
    help: "The file key is wrapped under a passphrase stretched with a scrypt work factor below the default.",
  },
  "file.tier-violation": {
    title: "Sealed file wrapped for a recipient kind its tier does not allow",
    severity: "error",
    help: "The file's authenticated header names a sensitivity tier whose allowed recipient kinds (.tensorseal.yaml tiers, or the built-ins) exclude one of its stanzas, e.g. a passphrase on a restricted file: it was sealed before the tier was tightened, or by another tool.",
  },
  "file.tier-rotation": {
    title: "Sealed file on a key version older than its tier's rotation period",
    severity: "warning",
    help: "A kek stanza of the file is under a local key version created longer ago than the rotation period of the file's tier.",
  },
  "file.tier-unknown": {
    title: "Sealed file naming a tier the configuration does not define",
    severity: "warning",
    help: "The file's header names a tier that neither .tensorseal.yaml nor the built-ins define, so nothing about it can be checked.",
  },
  "file.unreadable-header": {
    title: "File named or marked as sealed whose header cannot be read",
    severity: "error",
    help: "The file starts with the .tseal magic bytes or is named *.tseal, but its header is malformed, unsupported or unreadable.",
  },
  "perm.root-key-readable": {
    title: "Root key file readable by group or others",
    severity: "critical",
    help: "The root key unlocks every key of the keystore.",
  },
  "perm.identity-readable": {
    title: "Identity file readable by group or others",
    severity: "critical",
    help: "A TSEAL-SECRET-KEY-1 identity opens every file sealed to its recipient.",
  },
  "perm.share-readable": {
    title: "Root key share readable by group or others",
    severity: "error",
    help: "A threshold of shares rebuilds the root key; each share must stay private.",
  },
  "perm.keystore-readable": {
    title: "Keystore or its directory readable by group or others",
    severity: "warning",
    help: "The keystore's key material is sealed under the root key, but its metadata is not secret-free and a readable file can be copied for offline attack.",
  },
  "plaintext.sealed-copy": {
    title: "Plaintext copy of a sealed model file",
    severity: "error",
    help: "A file whose size and SHA-256 match a file of a sealed model directory's manifest: the weights were sealed, but their plaintext is still there.",
  },
  "service.key-rotation-overdue": {
    title: "Key service key past its rotation period",
    severity: "warning",
    help: "The key's primary version on the key service is older than its rotation period (a note when only the default period applies): `service keys rotate-due` has not run.",
  },
  "service.keys-unchecked": {
    title: "Key service keys not checked",
    severity: "note",
    help: "Listing the service's keys (for service.key-rotation-overdue) needs an admin token; none was given or it was refused.",
  },
  "service.plaintext-http": {
    title: "Key service reached over plain HTTP",
    severity: "error",
    help: "Bearer tokens and unwrapped file keys would cross the network unencrypted.",
  },
  "service.tls-cert-expiring": {
    title: "Key service TLS certificate expiring or expired",
    severity: "warning",
    help: "The certificate the service presents expires within the warning window (error once expired).",
  },
  "service.token-no-expiry": {
    title: "Key service bootstrap token without expiry, long in use",
    severity: "warning",
    help: "A live bootstrap bearer token (they never expire) older than the limit; an error when it holds the admin scope.",
  },
  "service.dual-control-off": {
    title: "Key service runs destroy or export without dual control",
    severity: "warning",
    help: "The key service needs fewer than 2 approvals for destroy or export (serve --approvals): one stolen admin credential destroys a key version or exports key material. Reported by the service itself (GET /v1/overview, findings).",
  },
  "drill.none": {
    title: "No breach drill recorded",
    severity: "warning",
    help: "doctor was asked to check drills (--drill-days) but the drill history holds no drill: run `tensorseal drill run --all`.",
  },
  "drill.stale": {
    title: "No breach drill in the last N days",
    severity: "warning",
    help: "The newest drill in the drill history is older than the limit (--drill-days, default 90): the defences have not been exercised recently.",
  },
  "drill.failed": {
    title: "The latest drill of a scenario failed",
    severity: "error",
    help: "The most recent run of a drill scenario reported that its defence did not hold (or the drill broke): see `tensorseal drill history` and rerun it after the fix.",
  },
  "service.unreachable": {
    title: "Key service could not be checked",
    severity: "error",
    help: "The TLS handshake with the service failed, so its certificate could not be checked.",
  },
  "service.policy-overbroad": {
    title: "Over-broad Cedar permit policy",
    severity: "error",
    help: 'A permit with no when/unless condition whose scope is any principal, any action and any resource (error); or, a warning, any principal on a key-release action (unwrap, keys:export) or any action on any key. Judged on Cedar\'s own JSON form of the policy (docs/DECISIONS.md, "doctor: over-broad Cedar policies").',
  },
  "service.policies-unchecked": {
    title: "Key service policies not checked",
    severity: "note",
    help: "Reading the service's active Cedar policy set (GET /v1/policies, policies:read) needs an admin token; none was given or it was refused.",
  },
  "root.shares-untested": {
    title: "Root key shares never test-recovered, or not within the limit",
    severity: "warning",
    help: "A split of the root key (keystore or service root) never test-recovered (`root shares verify`, `service root shares verify`), last test-recovered longer ago than --share-days (default 180; the service's own limit is 180), or whose last test recovery failed: nothing shows its custodians can still rebuild the root. For a share file of another root under PATHS, which no local record can name, the file's age is the evidence.",
  },
  "service.audit-chain-broken": {
    title: "Key service audit chain does not verify",
    severity: "critical",
    help: "The service's hash-chained, Ed25519-checkpointed audit log (read from --db, or over the API with a token holding the audit scope) fails verification: an entry edited, deleted or reordered, a checkpoint missing or badly signed, or a rollback (tensorseal audit verify lists every problem).",
  },
  "service.audit-checkpoint-stale": {
    title: "Key service audit entries left unsigned too long",
    severity: "warning",
    help: "Entries after the newest signed checkpoint have waited longer than --checkpoint-days (default 1) for one: the unsigned tail can be rewritten undetected. Checkpoints are signed every N entries, on time (serve --checkpoint-interval) and at a clean shutdown.",
  },
  "service.tls-untrusted": {
    title: "Key service TLS certificate not trusted by its clients",
    severity: "error",
    help: "The certificate chain the service presents does not verify against the trust store the clients use (TENSORSEAL_SERVER_CA when set, else the system's): self-signed, an unknown CA, or a host name it does not cover. A certificate pinned through TENSORSEAL_SERVER_CA verifies and is not reported.",
  },
  "service.audit-anchor-missing": {
    title: "Key service audit checkpoints not anchored outside its database",
    severity: "warning",
    help: "The service signs checkpoints of its audit chain but publishes them nowhere else (serve --checkpoint-anchor / --checkpoint-anchor-url): whoever can write its database can roll the log back to an earlier signed checkpoint undetected. Judged by the service itself (GET /v1/overview findings; doctor --server relays it).",
  },
  "runtime.end-of-life": {
    title: "tensorseal runs on a Node.js line past its end of life",
    severity: "warning",
    help: "All of tensorseal's cryptography is the OpenSSL inside the Node.js that runs it; a line past its end of life (Node.js 20 since 2026-04-30) gets no more security fixes, for that OpenSSL either.",
  },
} as const satisfies Record<string, Rule>;

export type RuleId = keyof typeof RULES;

export function rank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

export function isSeverity(s: string): s is Severity {
  return (SEVERITIES as readonly string[]).includes(s);
}

/** The worst severity of `findings`, or null when there are none. */
export function worst(findings: readonly Finding[]): Severity | null {
  let w: Severity | null = null;
  for (const f of findings) if (w === null || rank(f.severity) > rank(w)) w = f.severity;
  return w;
}

/**
 * Exit codes (docs/CLI.md, "Exit codes"): 0 when no finding reaches --fail-on; otherwise
 * 20 + the worst severity's rank (20 note, 21 warning, 22 error, 23 critical), so a script can
 * tell how bad it is without parsing, and the codes stay clear of the error codes 1-10.
 */
export const DOCTOR_EXIT_BASE = 20;

export function exitCodeFor(findings: readonly Finding[], failOn: Severity | "none"): number {
  const w = worst(findings);
  if (w === null || failOn === "none" || rank(w) < rank(failOn)) return 0;
  return DOCTOR_EXIT_BASE + rank(w);
}
