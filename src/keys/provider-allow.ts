/**
 * Which provider keys may be used to unwrap (docs/PROVIDERS.md, "Allowed keys").
 *
 * A `kms` stanza names its provider key, and a sealed file can come from anyone. Without a list,
 * opening a stranger's file would make TensorSeal call whatever KMS key the file names with the
 * user's credentials (a Decrypt logged in someone else's CloudTrail, a confused deputy, an
 * oracle) or log in to whatever token it names. So a provider identity contacts its provider
 * only for keys the caller allowed; any other stanza is refused before anything is loaded or
 * contacted, as a disabled key version is (E_KEY_STATE): skipped, reported only when no stanza
 * of the file opens.
 *
 *   aws-kms: key ARNs; key ARN patterns (`*` within the region or the key id, never in the
 *            partition or account); aliases (`alias/NAME` or an alias ARN) and key ids, which
 *            allow the key they name now (resolved with DescribeKey, once per process)
 *   pkcs11:  TOKEN (every key of that token) or TOKEN/KEYLABEL (that key)
 */
import { fail, TensorSealError } from "../format/errors.js";

export interface ProviderAllowList {
  /** Key ARNs, key ARN patterns, aliases, alias ARNs and key ids. */
  readonly awsKms?: readonly string[];
  /** Token labels, or TOKEN/KEYLABEL for one key. */
  readonly pkcs11?: readonly string[];
}

/** The key ARN an alias or key id names now (DescribeKey); asked only about allowed entries. */
export type KeyArnResolver = (ref: string) => Promise<string>;

const KEY_ARN = /^arn:[a-z0-9-]+:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;
const KEY_ARN_PATTERN = /^arn:([a-z0-9-]+):kms:([a-z0-9*-]+):(\d{12}):key\/([A-Za-z0-9*-]+)$/;
const ALIAS = /^(arn:[a-z0-9-]+:kms:[a-z0-9-]+:\d{12}:)?alias\/[A-Za-z0-9/_-]+$/;
const KEY_ID = /^[A-Za-z0-9-]+$/;

/** Why an aws-kms entry is not one; null when it is. */
function awsKmsEntryProblem(e: string): string | null {
  if (KEY_ARN_PATTERN.test(e) || ALIAS.test(e) || KEY_ID.test(e)) return null;
  if (e.includes("*")) {
    return "a wildcard may stand only in the region or the key id of a key ARN, never in the account (arn:aws:kms:*:ACCOUNT:key/*)";
  }
  return "expected a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), alias/NAME, an alias ARN or a key id";
}

/** Why a pkcs11 entry is not one; null when it is. */
function pkcs11EntryProblem(e: string): string | null {
  const slash = e.indexOf("/");
  const token = slash < 0 ? e : e.slice(0, slash);
  if (token.length === 0 || slash === e.length - 1) return "expected TOKEN or TOKEN/KEYLABEL";
  if (Buffer.byteLength(token, "utf8") > 32) return "a token label has at most 32 bytes";
  return null;
}

/** Checks one entry of a list (for the messages of config files and flags). */
export function allowEntryProblem(provider: "aws-kms" | "pkcs11", entry: string): string | null {
  return provider === "aws-kms" ? awsKmsEntryProblem(entry) : pkcs11EntryProblem(entry);
}

/** The union of several lists, duplicates dropped. */
export function mergeAllowLists(...lists: ProviderAllowList[]): ProviderAllowList {
  const union = (pick: (l: ProviderAllowList) => readonly string[] | undefined) => [
    ...new Set(lists.flatMap((l) => pick(l) ?? [])),
  ];
  return { awsKms: union((l) => l.awsKms), pkcs11: union((l) => l.pkcs11) };
}

/** TENSORSEAL_KMS_KEYS and TENSORSEAL_PKCS11_TOKENS: comma-separated entries. */
export function providerAllowListFromEnv(env: NodeJS.ProcessEnv = process.env): ProviderAllowList {
  const split = (name: string) => {
    const out = (env[name] ?? "")
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x.length > 0);
    return out;
  };
  const list = { awsKms: split("TENSORSEAL_KMS_KEYS"), pkcs11: split("TENSORSEAL_PKCS11_TOKENS") };
  for (const [provider, name, entries] of [
    ["aws-kms", "TENSORSEAL_KMS_KEYS", list.awsKms],
    ["pkcs11", "TENSORSEAL_PKCS11_TOKENS", list.pkcs11],
  ] as const) {
    for (const e of entries) {
      const why = allowEntryProblem(provider, e);
      if (why) fail("E_USAGE", `${name}: entry ${shown(e)}: ${why}`);
    }
  }
  return list;
}

/** An untrusted key reference as it may appear in a message: no control characters, bounded. */
export function shown(ref: string): string {
  const clean = ref.replace(
    /[\p{Cc}\p{Cf}]/gu,
    (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, "0")}`,
  );
  return clean.length > 200 ? `${clean.slice(0, 200)}...` : clean;
}

/** A compiled, validated list: answers whether a stanza's key reference may be used. */
export class ProviderKeyPolicy {
  private readonly awsExact: Set<string>;
  private readonly awsPatterns: RegExp[] = [];
  /** Aliases and key ids: allowed keys whose ARN KMS tells (DescribeKey), on first need. */
  private readonly awsToResolve: string[] = [];
  private readonly resolved = new Map<string, Promise<string>>();
  private readonly pkcs11: Set<string>;

  constructor(list: ProviderAllowList) {
    if (typeof list !== "object" || list === null) {
      fail(
        "E_USAGE",
        "provider identities need the allowed keys: { awsKms: [...], pkcs11: [...] }",
      );
    }
    const aws = list.awsKms ?? [];
    const hsm = list.pkcs11 ?? [];
    for (const e of aws) {
      const why = awsKmsEntryProblem(e);
      if (why) fail("E_USAGE", `allowed aws-kms key ${shown(e)}: ${why}`);
      const m = KEY_ARN_PATTERN.exec(e);
      if (m && e.includes("*")) this.awsPatterns.push(arnPattern(m));
      else if (!m) this.awsToResolve.push(e);
    }
    for (const e of hsm) {
      const why = pkcs11EntryProblem(e);
      if (why) fail("E_USAGE", `allowed pkcs11 token ${shown(e)}: ${why}`);
    }
    this.awsExact = new Set(aws);
    this.pkcs11 = new Set(hsm);
  }

  /** Throws the refusal unless the list allows this PKCS#11 key; touches no token. */
  checkPkcs11(keyRef: string): void {
    const slash = keyRef.indexOf("/");
    const token = slash < 0 ? keyRef : keyRef.slice(0, slash);
    if (this.pkcs11.has(token) || this.pkcs11.has(keyRef)) return;
    throw new TensorSealError(
      "E_KEY_STATE",
      `pkcs11 key ${shown(keyRef)} is not allowed, so no session was opened on token ${shown(token)}: if you trust this file's source with that token, allow it with \`-i pkcs11:${shown(token)}\`, TENSORSEAL_PKCS11_TOKENS or \`providers: pkcs11: tokens:\` in .tensorseal.yaml (docs/PROVIDERS.md)`,
    );
  }

  /**
   * Throws the refusal unless the list allows this AWS KMS key. KMS is contacted only to
   * resolve the list's own aliases and key ids, never about the stanza's key.
   */
  async checkAwsKms(keyRef: string, resolve: KeyArnResolver): Promise<void> {
    if (this.awsExact.has(keyRef)) return;
    const isArn = KEY_ARN.test(keyRef);
    if (isArn && this.awsPatterns.some((p) => p.test(keyRef))) return;
    const unresolved: string[] = [];
    if (isArn) {
      for (const entry of this.awsToResolve) {
        try {
          if ((await this.resolve(entry, resolve)) === keyRef) return;
        } catch (e) {
          unresolved.push(`${shown(entry)} (${e instanceof Error ? e.message : String(e)})`);
        }
      }
    }
    const note = unresolved.length
      ? `; allowed keys that could not be resolved: ${unresolved.join(", ")}`
      : "";
    throw new TensorSealError(
      "E_KEY_STATE",
      `aws-kms key ${shown(keyRef)} is not allowed, so KMS was not asked to use it: if you trust this file's source with that key, allow it with \`-i aws-kms:${shown(keyRef)}\`, TENSORSEAL_KMS_KEYS or \`providers: aws-kms: keys:\` in .tensorseal.yaml (docs/PROVIDERS.md)${note}`,
    );
  }

  private resolve(entry: string, resolve: KeyArnResolver): Promise<string> {
    let p = this.resolved.get(entry);
    if (!p) {
      p = resolve(entry);
      this.resolved.set(entry, p);
    }
    return p;
  }
}

/** `*` matches within one ARN field: any run of the characters that field may hold. */
function arnPattern(m: RegExpExecArray): RegExp {
  const [, partition, region, account, id] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
  ];
  const glob = (s: string) => s.replaceAll("*", "[A-Za-z0-9-]*");
  return new RegExp(`^arn:${partition}:kms:${glob(region)}:${account}:key/${glob(id)}$`);
}
