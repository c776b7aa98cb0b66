/**
 * `rewrap --to-latest` for `service` stanzas: the key service re-wraps a stanza under the
 * primary version of its own key (POST /v1/datakeys/rewrap, `rewrap` scope; the file key never
 * leaves the service, and the service applies its own version rules: a disabled, scheduled or
 * below-minimum version is refused, 403). A client is not told a key's primary version, so the
 * first answer for a key teaches it: a stanza already at that version needs no further call.
 * Stanzas of another service (server id) are left alone, as kek stanzas of another keystore are.
 */
import { fail } from "../../format/errors.js";
import type { Stanza } from "../../format/stanza.js";
import type { ServiceClient } from "./client.js";
import {
  parseServiceStanza,
  SERVICE_STANZA,
  serviceStanzaDigest,
  stanzaFromWire,
  stanzaToWire,
  type WireStanza,
} from "./stanza.js";

export class ServiceToLatest {
  private readonly primaries = new Map<string, number>();
  private readonly answers = new Map<string, Promise<Stanza | null>>();

  constructor(readonly client: ServiceClient) {}

  /** True for a service stanza of this client's service (by server id). */
  async isOurs(s: Stanza): Promise<boolean> {
    return s.type === SERVICE_STANZA && parseServiceStanza(s).serverId === (await this.client.id());
  }

  /** Null when `s` is current or not this service's; else its replacement under the primary. */
  async latest(s: Stanza): Promise<Stanza | null> {
    if (!(await this.isOurs(s))) return null;
    const p = parseServiceStanza(s);
    if (this.primaries.get(p.name) === p.version) return null;
    const digest = serviceStanzaDigest(s);
    let answer = this.answers.get(digest);
    if (!answer) {
      answer = this.rewrap(s);
      this.answers.set(digest, answer);
      answer.catch(() => this.answers.delete(digest));
    }
    return answer;
  }

  private async rewrap(s: Stanza): Promise<Stanza | null> {
    const from = parseServiceStanza(s);
    const r = await this.client.post("/v1/datakeys/rewrap", { stanza: stanzaToWire(s) });
    if (r.status !== 200) this.client.refused("/v1/datakeys/rewrap", r);
    const bad = () =>
      fail(
        "E_PROVIDER",
        `key service ${this.client.url} answered a rewrap of key ${from.name} with something other than a stanza of that key`,
      );
    const wire = r.body.stanza as WireStanza | undefined;
    if (typeof wire?.type !== "string" || !Array.isArray(wire.fields)) bad();
    const out = stanzaFromWire(wire!);
    let to: ReturnType<typeof parseServiceStanza>;
    try {
      to = parseServiceStanza(out);
    } catch {
      return bad();
    }
    if (to.serverId !== from.serverId || to.name !== from.name) bad();
    this.primaries.set(to.name, Math.max(to.version, this.primaries.get(to.name) ?? 0));
    return to.version === from.version ? null : out;
  }
}
