/**
 * Weak scrypt work factors: the keystore's passphrase root (keystore.weak-kdf) and passphrase
 * stanzas of sealed files (file.weak-passphrase), below the default 2^18 that new ones get.
 * Files and keystores made with the test-only TENSORSEAL_SCRYPT_WORK_FACTOR lower value, or by
 * an older tool, are what this finds.
 */
import type { ParsedHeader } from "../format/header.js";
import { DEFAULT_WORK_FACTOR, PASSPHRASE_STANZA } from "../keys/index.js";
import type { RootDoc } from "../keys/keystore-doc.js";
import type { Finding } from "./findings.js";

export function checkKeystoreKdf(root: RootDoc, keystoreFile: string): Finding[] {
  if (root.kind !== "passphrase" || root.logN >= DEFAULT_WORK_FACTOR) return [];
  return [
    {
      id: "keystore.weak-kdf",
      severity: "warning",
      message: `the keystore passphrase is stretched with scrypt 2^${root.logN}, below the default 2^${DEFAULT_WORK_FACTOR}`,
      evidence: `root.kind passphrase, logN ${root.logN}, r ${root.r}, p ${root.p}`,
      fix: "tensorseal root rotate (with TENSORSEAL_SCRYPT_WORK_FACTOR unset): the new root's passphrase gets the default work factor",
      file: keystoreFile,
    },
  ];
}

export function checkPassphraseStanzas(h: ParsedHeader, file: string): Finding[] {
  const out: Finding[] = [];
  for (const s of h.stanzas) {
    if (s.type !== PASSPHRASE_STANZA) continue;
    const logN = s.fields[1]?.[0];
    if (logN === undefined || logN >= DEFAULT_WORK_FACTOR) continue;
    out.push({
      id: "file.weak-passphrase",
      severity: "warning",
      message: `a passphrase stanza is stretched with scrypt 2^${logN}, below the default 2^${DEFAULT_WORK_FACTOR}`,
      evidence: `passphrase stanza, logN ${logN}`,
      fix: "reseal the file with a passphrase at the default work factor (tensorseal open, then tensorseal seal --passphrase), or replace the passphrase recipient with a key (tensorseal rewrap)",
      file,
    });
  }
  return out;
}
