/**
 * The sealed files under PATHS, found by their magic bytes (keys/campaign-paths.ts, as rewrap
 * and doctor find them), each read for its public header only: no key is used or needed.
 */
import { open } from "node:fs/promises";
import { headerDigest, inspectFile } from "../engine/index.js";
import { fail, isTensorSealError } from "../format/errors.js";
import type { ParsedHeader } from "../format/header.js";
import type { Stanza } from "../format/stanza.js";
import { type FoundFiles, findSealedFiles } from "../keys/campaign-paths.js";
import { KEK_STANZA, parseKekStanza } from "../keys/kek.js";
import { parseKmsStanza } from "../keys/provider.js";
import { parseServiceStanza, SERVICE_STANZA } from "../keys/service/stanza.js";
import type { Protector, SkippedEntry } from "./model.js";

export interface SealedFileFound {
  readonly file: string;
  readonly header: ParsedHeader;
  readonly headerDigest: string;
  readonly protectors: readonly Protector[];
  readonly recipients: readonly string[];
}

export async function scanPaths(
  paths: readonly string[],
  describe: (s: Stanza) => string,
  walked?: FoundFiles,
): Promise<{ files: SealedFileFound[]; skipped: SkippedEntry[] }> {
  if (paths.length === 0) return { files: [], skipped: [] };
  const found = walked ?? (await findSealedFiles(paths));
  const skipped: SkippedEntry[] = [...found.skipped];
  const files: SealedFileFound[] = [];
  for (const file of found.files) {
    const read = await readSealed(file, describe);
    if (typeof read === "string") skipped.push({ file, reason: read });
    else files.push(read);
  }
  skipped.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return { files, skipped };
}

/** The file's header facts, or why it is left out (not sealed, unreadable header). */
async function readSealed(
  file: string,
  describe: (s: Stanza) => string,
): Promise<SealedFileFound | string> {
  let header: ParsedHeader;
  let digest: string;
  try {
    header = await inspectFile(file);
    digest = await digestOfHeader(file, header.headerLength);
  } catch (e) {
    if (!isTensorSealError(e)) throw e;
    if (e.code === "E_NOT_TSEAL") return "not sealed (no .tseal magic bytes)";
    return `unreadable header (${e.code}: ${e.file === file ? e.detail : e.message})`;
  }
  return {
    file,
    header,
    headerDigest: digest,
    protectors: header.stanzas.map(protectorOf),
    recipients: header.stanzas.map(describe),
  };
}

/** SHA-256 of the header bytes as reseal reports it (engine/reseal.ts headerDigest). */
async function digestOfHeader(file: string, length: number): Promise<string> {
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, 0);
    if (bytesRead !== length) fail("E_MALFORMED", "the file is shorter than its header");
    return headerDigest(buf);
  } finally {
    await fh.close();
  }
}

export function protectorOf(s: Stanza): Protector {
  try {
    switch (s.type) {
      case KEK_STANZA: {
        const k = parseKekStanza(s);
        return { kind: "kek", key: k.name, version: k.version };
      }
      case SERVICE_STANZA: {
        const p = parseServiceStanza(s);
        return { kind: "service", key: p.name, version: p.version, serverId: p.serverId };
      }
      case "kms": {
        const k = parseKmsStanza(s);
        return { kind: "kms", provider: k.provider, key: k.keyRef };
      }
      case "x25519":
      case "mlkem768x25519":
        return { kind: s.type, tag: s.fields[0]?.toString("hex").slice(0, 16) ?? "?" };
      case "passphrase":
        return { kind: "passphrase", logN: s.fields[1]?.[0] ?? 0 };
    }
  } catch {
    // A malformed stanza is reported by its type only (inspect says "malformed").
  }
  return { kind: "other", type: s.type };
}
