/**
 * Resource attributes as Cedar sees them. Sensitivity is an ordered set, exposed both by name
 * and as `sensitivityLevel` (its index) so policies can compare (`resource.sensitivityLevel >=
 * 3`); "unspecified" (0) is what a key created before migration 0007 has. Labels are string maps
 * in the API and the database, and a `Set<String>` of "k=v" in Cedar (strict mode has no map
 * type with dynamic keys): `resource.labels.contains("team=a")`.
 */
export const SENSITIVITIES = ["unspecified", "public", "internal", "confidential", "restricted"];

export type Labels = Readonly<Record<string, string>>;

/** The level of a sensitivity name, or -1 for a name outside the set. */
export function sensitivityLevel(name: string): number {
  return SENSITIVITIES.indexOf(name);
}

export function isSensitivity(name: unknown): name is string {
  return typeof name === "string" && sensitivityLevel(name) >= 0;
}

/** {"team": "a"} → ["team=a"], sorted (a stable memo key). */
export function labelSet(labels: Labels): string[] {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .sort();
}

/** An artifact's sensitivity: its `sensitivity` label when that names a level, else its key's. */
export function artifactSensitivity(labels: Labels, keySensitivity: string): string {
  const own = labels.sensitivity;
  return isSensitivity(own) ? own : keySensitivity;
}
