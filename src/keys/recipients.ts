/**
 * Recipient strings and identity files as the CLI receives them.
 *   tseal1...   an X25519 public key (x25519 stanza)
 *   tseal1pq1...   an ML-KEM-768 + X25519 (X-Wing) public key (mlkem768x25519 stanza)
 *   kek:NAME    the primary version of key NAME in the local keystore (kek stanza)
 *   pkcs11:TOKEN/KEYLABEL, aws-kms:ARN_OR_ALIAS   an HSM or KMS key (kms stanza, provider.ts)
 * Identity files follow age: `#` comments, blank lines, one TSEAL-SECRET-KEY-1... or
 * TSEAL-SECRET-KEY-PQ-1... per line.
 */
import { fail } from "../format/errors.js";
import type { Identity, Recipient } from "../format/stanza.js";
import type { Keystore } from "./keystore.js";
import { parseProviderRecipient } from "./provider.js";
import { parseX25519Identity, parseX25519Recipient, X25519_RECIPIENT_HRP } from "./x25519.js";
import { parseXWingIdentity, parseXWingRecipient, XWING_RECIPIENT_HRP } from "./xwing.js";

const SECRET_PREFIX = /^TSEAL-SECRET-KEY-(PQ-)?1/i;

export function parseRecipient(s: string, keystore?: Keystore): Recipient {
  if (s.startsWith("kek:")) {
    if (!keystore) {
      fail(
        "E_USAGE",
        `recipient ${s} needs the local keystore: run \`tensorseal init\` first, or use --key NAME`,
      );
    }
    return keystore.recipient(s.slice(4));
  }
  // tseal1pq1... first: it also starts with the X25519 prefix tseal1.
  if (s.toLowerCase().startsWith(`${XWING_RECIPIENT_HRP}1`)) return parseXWingRecipient(s);
  if (s.toLowerCase().startsWith(`${X25519_RECIPIENT_HRP}1`)) return parseX25519Recipient(s);
  const provider = parseProviderRecipient(s);
  if (provider) return provider;
  if (SECRET_PREFIX.test(s)) {
    // Never echo it: this is a secret key pasted where a public one belongs.
    fail(
      "E_USAGE",
      "a secret key was given as a recipient: pass its public tseal1... or tseal1pq1... string (`tensorseal keygen` prints it)",
    );
  }
  return fail(
    "E_USAGE",
    `unknown recipient ${JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s)}: expected tseal1..., tseal1pq1..., kek:NAME, pkcs11:TOKEN/KEY or aws-kms:KEY`,
  );
}

/** Parses an identity file; errors name the line, never its content. */
export function parseIdentityFile(text: string): Identity[] {
  const out: Identity[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) continue;
    try {
      const pq = line.toUpperCase().startsWith("TSEAL-SECRET-KEY-PQ-1");
      out.push(pq ? parseXWingIdentity(line) : parseX25519Identity(line));
    } catch {
      fail(
        "E_KEY",
        `identity file line ${i + 1} is not a TSEAL-SECRET-KEY-1... or TSEAL-SECRET-KEY-PQ-1... identity: fix or remove it`,
      );
    }
  }
  if (out.length === 0) {
    fail(
      "E_NO_IDENTITY",
      "the identity file holds no identity: create one with `tensorseal keygen`",
    );
  }
  return out;
}
