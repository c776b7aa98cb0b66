/**
 * Keeping the key service's artifact registry current from the client: registrations carry the
 * file's header (public metadata and wrapped file keys, never a key: the service checks the
 * recipient kinds against its tiers), and a reseal registers each registered artifact's
 * successor before the new file replaces the old one (POST /v1/artifacts/successors).
 */
import { open } from "node:fs/promises";
import { resolve } from "node:path";
import type { ResealCommit, RewrapRegistry } from "../../engine/index.js";
import { fail, isTensorSealError } from "../../format/errors.js";
import { PREFIX_SIZE, parsePrefix } from "../../format/header.js";
import type { Stanza } from "../../format/stanza.js";
import type { ServiceClient } from "./client.js";
import { parseServiceStanza, SERVICE_STANZA, stanzaToWire } from "./stanza.js";

/** The header bytes of a sealed file (prefix, descriptor, both slots), base64 for the wire. */
export async function headerBase64(path: string): Promise<string> {
  const fh = await open(path, "r");
  try {
    const prefix = Buffer.alloc(PREFIX_SIZE);
    await fh.read(prefix, 0, PREFIX_SIZE, 0);
    const { headerLength } = parsePrefix(prefix);
    const buf = Buffer.alloc(headerLength);
    const { bytesRead } = await fh.read(buf, 0, headerLength, 0);
    if (bytesRead !== headerLength) fail("E_TRUNCATED", `${path}: file ends inside the header`);
    return buf.toString("base64");
  } finally {
    await fh.close();
  }
}

/**
 * A reseal campaign's `beforeCommit`: for each stanza of this service in the old header, asks
 * the service to register the new file as the successor of the artifact registered with it
 * (404 not_found: that stanza was never registered, nothing to do). Any other refusal throws,
 * so the new file is discarded and the old one stays, registered as before. Returns the new
 * artifact ids.
 */
export function successorRegistrar(
  client: ServiceClient,
): (file: string, commit: ResealCommit) => Promise<readonly string[]> {
  return async (file, commit) => {
    const services = commit.oldHeader.stanzas.filter((s) => s.type === SERVICE_STANZA);
    if (services.length === 0) return []; // nothing a key service registered: no request
    const serverId = await client.id();
    const mine = services.filter((s) => parseServiceStanza(s).serverId === serverId);
    const ids: string[] = [];
    for (const s of mine) {
      const body = await postRegistry(
        client,
        "/v1/artifacts/successors",
        {
          from: stanzaToWire(s),
          header: Buffer.from(commit.header).toString("base64"),
          location: resolve(file),
        },
        "the resealed file was not registered, so the old file is left in place (fix the refusal, or pass --no-registry to reseal without telling the registry)",
      );
      if (body) ids.push(String(body.id));
    }
    return ids;
  };
}

/**
 * A rewrap's registry (engine RewrapRegistry): for each stanza of this service that `from` has
 * and `to` does not, the new stanza of the same key in `to` (a re-wrap to another version, or a
 * recipient replaced) takes over its registration: POST /v1/artifacts/restanza {from, to}, which
 * finds the artifact by its registered stanza and checks that both open to the same file key
 * (404 not_found: that stanza was never registered, nothing to do). A service stanza removed
 * with none of its key in its place has nothing to move to and is left alone (its registration
 * keeps naming it). Any other refusal throws: the engine then restores the old header.
 */
export function restanzaRegistrar(client: ServiceClient): RewrapRegistry {
  return async (from, to, phase) => {
    const same = (a: Stanza, b: Stanza) =>
      a.type === b.type &&
      a.fields.length === b.fields.length &&
      a.fields.every((f, i) => f.equals(b.fields[i]!));
    // Service stanzas the rewrap replaced; none (no service stanza, or all kept): no request.
    const replaced = from.filter((f) => f.type === SERVICE_STANZA && !to.some((t) => same(f, t)));
    if (replaced.length === 0) return;
    const serverId = await client.id();
    const mine = (s: Stanza) =>
      s.type === SERVICE_STANZA && parseServiceStanza(s).serverId === serverId;
    const added = to.filter((t) => mine(t) && !from.some((f) => same(f, t)));
    for (const s of replaced.filter(mine)) {
      const key = parseServiceStanza(s).name;
      const next = added.find((t) => parseServiceStanza(t).name === key);
      if (!next) continue;
      await postRegistry(
        client,
        "/v1/artifacts/restanza",
        { from: stanzaToWire(s), to: stanzaToWire(next) },
        `the registry still names the old stanza, so ${phase === "commit" ? "the file is left as it was" : "the header slot an interrupted rewrap left (the old stanzas) is kept"} (fix the refusal, or pass --no-registry to rewrap without telling the registry)`,
      );
    }
  };
}

/**
 * POST to a registry route: the answer's body, or null for 404 not_found (the stanza was never
 * registered: nothing to follow). Any other refusal is E_PROVIDER saying what was kept.
 */
async function postRegistry(
  client: ServiceClient,
  path: string,
  body: object,
  kept: string,
): Promise<Record<string, unknown> | null> {
  const r = await client.post(path, body);
  if (r.status === 404 && r.body.error === "not_found") return null;
  try {
    if (r.status !== 200) client.refused(path, r);
  } catch (e) {
    if (!isTensorSealError(e)) throw e;
    fail("E_PROVIDER", `${e.message}: ${kept}`);
  }
  return r.body;
}
