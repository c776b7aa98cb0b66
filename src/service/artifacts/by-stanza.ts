/**
 * The unwrap hot path's artifact lookup: stanza digest → registered artifact, one indexed query
 * per digest and then memory. A found artifact is cached until evicted (rows are never updated
 * or deleted); "not registered" only for `missTtlMs`, so a registration made on another replica
 * after a miss applies within that time.
 */
import type { ArtifactRepo, StanzaArtifact } from "./repo.js";

const MAX_ENTRIES = 10_000;

export class StanzaArtifacts {
  private readonly hits = new Map<string, StanzaArtifact>();
  private readonly misses = new Map<string, number>();

  constructor(
    private readonly repo: ArtifactRepo,
    private readonly missTtlMs = 1000,
  ) {}

  async find(stanzaDigest: string): Promise<StanzaArtifact | null> {
    const hit = this.hits.get(stanzaDigest);
    if (hit) return hit;
    const missed = this.misses.get(stanzaDigest);
    if (missed !== undefined && Date.now() - missed < this.missTtlMs) return null;
    const a = await this.repo.byStanza(stanzaDigest);
    if (a) {
      if (this.hits.size >= MAX_ENTRIES) this.hits.clear();
      this.hits.set(stanzaDigest, a);
      this.misses.delete(stanzaDigest);
    } else {
      if (this.misses.size >= MAX_ENTRIES) this.misses.clear();
      this.misses.set(stanzaDigest, Date.now());
    }
    return a;
  }

  /** A registration on this replica applies at once. */
  forget(stanzaDigest: string): void {
    this.misses.delete(stanzaDigest);
  }
}
