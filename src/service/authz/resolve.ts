/**
 * Turns what a route touches (RouteResource) into the Cedar resource with its attributes: key
 * labels and sensitivity from the key service's 1 s metadata cache, an artifact's labels from
 * the request (register) or its row (show, list), and for a stanza being unwrapped the artifact
 * it was registered with (`context.artifact`, through the cached stanza-digest index).
 */
import type { StanzaArtifacts } from "../artifacts/by-stanza.js";
import type { Artifact, ArtifactRepo, StanzaArtifact } from "../artifacts/repo.js";
import type { RouteResource } from "../auth/principal.js";
import type { KeyService } from "../keys/service.js";
import { artifactSensitivity, type Labels, labelSet } from "./attributes.js";
import type { ArtifactInfo, AuthzResource, KeyAttrs } from "./cedar.js";

export interface ResolveDeps {
  readonly keys: KeyService;
  readonly artifacts: ArtifactRepo;
  readonly stanzaArtifacts: StanzaArtifacts;
}

/**
 * An unknown key resolves unlabelled and "unspecified": the decision is made (and audited) as
 * for any key, and the route answers 404 after it.
 */
export async function keyAttrs(
  d: ResolveDeps,
  name: string,
  given?: { labels: Labels; sensitivity: string },
): Promise<KeyAttrs> {
  const m = given ?? (await d.keys.attributes(name));
  return m ? { name, labels: labelSet(m.labels), sensitivity: m.sensitivity } : { name };
}

/** A stored or requested artifact as a Cedar Artifact (sensitivity: label, else the key's). */
export function artifactResource(
  a: Pick<Artifact, "id" | "key" | "version" | "digest" | "labels">,
  key: KeyAttrs,
): AuthzResource {
  return {
    type: "Artifact",
    id: a.id,
    key,
    version: a.version,
    digest: a.digest,
    labels: labelSet(a.labels),
    sensitivity: artifactSensitivity(a.labels, key.sensitivity ?? "unspecified"),
  };
}

function artifactInfo(a: StanzaArtifact, key: KeyAttrs): ArtifactInfo {
  return {
    id: a.id,
    key: a.key,
    version: a.version,
    labels: labelSet(a.labels),
    sensitivity: artifactSensitivity(a.labels, key.sensitivity ?? "unspecified"),
  };
}

export async function resolveResource(d: ResolveDeps, r: RouteResource): Promise<AuthzResource> {
  if (r === "service") return { type: "Service" };
  if ("artifactId" in r) {
    const a = await d.artifacts.show(r.artifactId); // 404 not_found
    return artifactResource(a, await keyAttrs(d, a.key));
  }
  if ("artifact" in r) return artifactResource(r.artifact, await keyAttrs(d, r.artifact.key));
  const key = await keyAttrs(d, r.key, r.attrs);
  if (!r.stanza) return { type: "Key", ...key };
  const a = await d.stanzaArtifacts.find(r.stanza.digest);
  // A registration naming another key or version than the stanza does is not this stanza's
  // artifact (a registrant can state any digest): it is ignored, as if none were registered.
  if (!a || a.key !== r.key || a.version !== r.stanza.version) return { type: "Key", ...key };
  return { type: "Key", ...key, artifact: artifactInfo(a, key) };
}
