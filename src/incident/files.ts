/**
 * The sealed files under PATHS and the key versions each is wrapped under: what assess
 * classifies and eradicate works on. Read from headers only (inspectFile); nothing is opened.
 */
import { open, realpath } from "node:fs/promises";
import { headerDigest, inspectFile } from "../engine/index.js";
import { findSealedFiles } from "../keys/campaign-paths.js";
import { KEK_STANZA, parseKekStanza } from "../keys/kek.js";
import { parseServiceStanza, SERVICE_STANZA, serviceStanzaDigest } from "../keys/service/stanza.js";

export interface StanzaRef {
  readonly type: "kek" | "service";
  readonly key: string;
  readonly version: number;
  /** service stanzas: the server id and the digest the registry knows the artifact by. */
  readonly serverId?: string;
  readonly digest?: string;
}

export interface ScannedFile {
  readonly file: string;
  /** The real path (registry locations are absolute paths). */
  readonly real: string;
  /** "sha256:..." of the header bytes: changes with every reseal or rewrap. */
  readonly headerDigest: string;
  readonly refs: StanzaRef[];
}

export interface Scan {
  readonly files: ScannedFile[];
  /** Files that could not be read as sealed files, with the reason. */
  readonly unreadable: { file: string; reason: string }[];
}

export async function scanPaths(paths: readonly string[]): Promise<Scan> {
  if (paths.length === 0) return { files: [], unreadable: [] };
  const found = await findSealedFiles(paths);
  const files: ScannedFile[] = [];
  const unreadable: { file: string; reason: string }[] = [];
  for (const file of found.files) {
    try {
      const h = await inspectFile(file);
      const refs: StanzaRef[] = [];
      for (const s of h.stanzas) {
        if (s.type === KEK_STANZA) {
          const k = parseKekStanza(s);
          refs.push({ type: "kek", key: k.name, version: k.version });
        } else if (s.type === SERVICE_STANZA) {
          const p = parseServiceStanza(s);
          refs.push({
            type: "service",
            key: p.name,
            version: p.version,
            serverId: p.serverId,
            digest: serviceStanzaDigest(s),
          });
        }
      }
      files.push({
        file,
        real: await realpath(file),
        headerDigest: await digestOf(file, h.headerLength),
        refs,
      });
    } catch (e) {
      unreadable.push({ file, reason: (e as Error).message });
    }
  }
  return { files, unreadable };
}

/** The file's stanza of `key` (kek: serverId undefined; service: that server's) at one of `versions`. */
export function onVersions(
  f: ScannedFile,
  type: StanzaRef["type"],
  key: string,
  versions: readonly number[],
  serverId?: string,
): StanzaRef | undefined {
  return f.refs.find(
    (r) =>
      r.type === type &&
      r.key === key &&
      versions.includes(r.version) &&
      (type === "kek" || r.serverId === serverId),
  );
}

async function digestOf(file: string, length: number): Promise<string> {
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, 0);
    return headerDigest(buf);
  } finally {
    await fh.close();
  }
}
