/**
 * Registering sealed files in a sandbox key service, as `seal --register` does: the plaintext
 * digest, the key and version of the file's service stanza, that stanza's digest (so releases
 * of it are audited with the artifact) and the file's location (so an incident's assessment
 * finds the file from the audit). Shared by the leaked-file-key drill and bench/incident.ts.
 */
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { inspectFile } from "../engine/index.js";
import type { ServiceClient } from "../keys/service/client.js";
import { headerBase64 } from "../keys/service/registry.js";
import { parseServiceStanza, SERVICE_STANZA, serviceStanzaDigest } from "../keys/service/stanza.js";

/** Registers one sealed file (its service stanza); the artifact id. */
export async function registerSealed(
  client: ServiceClient,
  file: string,
  plaintext: Uint8Array,
): Promise<string> {
  const h = await inspectFile(file);
  const s = h.stanzas.find((x) => x.type === SERVICE_STANZA);
  if (!s) throw new Error(`${file} has no service stanza to register`);
  const p = parseServiceStanza(s);
  const r = await client.post("/v1/artifacts", {
    digest: `sha256:${createHash("sha256").update(plaintext).digest("hex")}`,
    key: p.name,
    version: p.version,
    location: resolve(file),
    stanzaDigest: serviceStanzaDigest(s),
    header: await headerBase64(file),
  });
  if (r.status !== 200) client.refused("/v1/artifacts", r);
  return String(r.body.id);
}
