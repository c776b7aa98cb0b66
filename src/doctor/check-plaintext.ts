/**
 * plaintext.sealed-copy: a file under PATHS whose bytes are the plaintext of a file in a sealed
 * model directory found under PATHS (same size and SHA-256 as its sealed manifest records): the
 * weights were sealed but a plaintext copy was left behind. The manifest is itself sealed, so
 * this runs only when the keystore is unlocked from the environment and opens it; a manifest it
 * cannot open is passed over. Only files whose size matches an entry are hashed, so a scan costs
 * one read of each candidate, not of everything under PATHS. Empty files are not judged (the
 * empty file's digest says nothing secret).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { isTensorSealError } from "../format/errors.js";
import type { Identity } from "../format/stanza.js";
import { MANIFEST_NAME, SEALED_SUFFIX } from "../integrations/model-dir/manifest.js";
import { readManifest } from "../integrations/model-dir/open-dir.js";
import type { Finding } from "./findings.js";

interface Sealed {
  readonly dir: string;
  readonly path: string;
}

export async function checkPlaintextCopies(
  sealedFiles: readonly string[],
  candidates: readonly string[],
  identities: readonly Identity[],
): Promise<Finding[]> {
  const bySize = new Map<number, Map<string, Sealed>>();
  for (const f of sealedFiles) {
    if (basename(f) !== MANIFEST_NAME + SEALED_SUFFIX) continue;
    const dir = dirname(f);
    let files: readonly { path: string; size: number; sha256: string }[];
    try {
      files = (await readManifest(dir, identities)).files;
    } catch (e) {
      if (isTensorSealError(e)) continue; // not openable with these keys: not judged
      throw e;
    }
    for (const e of files) {
      if (e.size === 0) continue;
      const digests = bySize.get(e.size) ?? new Map<string, Sealed>();
      digests.set(e.sha256, { dir, path: e.path });
      bySize.set(e.size, digests);
    }
  }
  if (bySize.size === 0) return [];
  const out: Finding[] = [];
  for (const file of candidates) {
    const st = await stat(file).catch(() => null);
    const digests = st?.isFile() ? bySize.get(st.size) : undefined;
    if (!digests) continue;
    const digest = await sha256(file).catch(() => null);
    const match = digest ? digests.get(digest) : undefined;
    if (!match) continue;
    out.push({
      id: "plaintext.sealed-copy",
      severity: "error",
      message: `a plaintext copy of ${match.path} of the sealed model directory ${match.dir}`,
      evidence: `size ${st!.size}, SHA-256 ${digest} as recorded in ${match.dir}/${MANIFEST_NAME}${SEALED_SUFFIX}`,
      fix: `delete it (rm ${file}) if the sealed directory is the copy to keep; open-dir or exec gives the plaintext back when needed`,
      file,
    });
  }
  return out;
}

function sha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(file)
      .on("data", (c) => h.update(c))
      .on("error", reject)
      .on("end", () => resolve(h.digest("hex")));
  });
}
