/** Gathers the inventory: keystore (as doctor reads it, never prompting), files, key service. */
import { readKeystoreView } from "../doctor/keystore-view.js";
import { fail } from "../format/errors.js";
import type { Stanza } from "../format/stanza.js";
import type { FoundFiles } from "../keys/campaign-paths.js";
import type { KeystoreOptions } from "../keys/index.js";
import { serviceClientFromEnv } from "../keys/service/index.js";
import { buildArtifacts, buildKeys } from "./build.js";
import { scanPaths } from "./files.js";
import type { Inventory, RegistryEntry, Release } from "./model.js";
import { lastReleases, readService, type ServiceKey } from "./service.js";

export interface InventoryOptions {
  readonly paths: readonly string[];
  readonly home: string;
  readonly now: Date;
  /** Seconds; the rotation period of keys without their own (null: no due date). */
  readonly defaultRotation: number | null;
  readonly server?: string | undefined;
  readonly keystoreOptions: KeystoreOptions;
  /** How a recipient stanza is described (the CLI passes `inspect`'s wording). */
  readonly describe: (s: Stanza) => string;
  /** PATHS already walked by the caller (the report shares one walk with doctor). */
  readonly found?: FoundFiles;
}

export async function runInventory(o: InventoryOptions): Promise<Inventory> {
  const notes: string[] = [];
  const ks = await readKeystoreView(o.home, o.keystoreOptions);
  ks?.keystore?.close();
  if (ks && !ks.verified)
    notes.push(
      "keystore read without checking its MAC (set TENSORSEAL_ROOT_KEY_FILE or TENSORSEAL_KEYSTORE_PASSPHRASE to verify it)",
    );
  const { files, skipped } = await scanPaths(o.paths, o.describe, o.found);
  let serverId: string | null = null;
  let serviceKeys: readonly ServiceKey[] = [];
  let registry: readonly RegistryEntry[] = [];
  let releases: Map<string, Release | null> | null = null;
  if (o.server) {
    const client = serviceClientFromEnv(o.server);
    if (!client) return fail("E_USAGE", "no key service: give --server URL or TENSORSEAL_SERVER");
    try {
      const view = await readService(client);
      notes.push(...view.notes);
      serverId = view.serverId;
      serviceKeys = view.keys ?? [];
      registry = view.artifacts ?? [];
      releases =
        view.releases ??
        (await lastReleases(
          client,
          registry.map((r) => r.id),
          notes,
        ));
    } finally {
      client.close();
    }
  }
  const input = {
    now: o.now,
    defaultRotation: o.defaultRotation,
    keystoreKeys: ks?.keys ?? [],
    serviceKeys,
    serverId,
    files,
    registry,
  };
  return {
    generated: o.now.toISOString(),
    keystore: ks ? { path: ks.path, root: ks.root.kind, verified: ks.verified } : null,
    server: o.server ?? null,
    keys: buildKeys(input),
    artifacts: buildArtifacts(input, releases),
    skipped,
    notes,
  };
}
