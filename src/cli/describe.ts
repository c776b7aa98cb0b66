/**
 * What the commands say about a header: one line per stanza for `inspect` (only what the header
 * already shows publicly), and the warning about a slot left by an interrupted rewrap.
 */
import type { ParsedHeader } from "../format/header.js";
import type { Stanza } from "../format/stanza.js";
import { KEK_STANZA, parseKekStanza } from "../keys/kek.js";
import { describeKmsStanza } from "../keys/provider.js";
import { parseServiceStanza, SERVICE_STANZA } from "../keys/service/stanza.js";

export function describeStanza(s: Stanza): string {
  try {
    switch (s.type) {
      case KEK_STANZA: {
        const k = parseKekStanza(s);
        return `kek ${k.name} version ${k.version}`;
      }
      case "x25519":
        return `x25519 recipient (tag ${s.fields[0]?.toString("hex").slice(0, 16) ?? "?"})`;
      case "mlkem768x25519":
        return `mlkem768x25519 post-quantum recipient (tag ${s.fields[0]?.toString("hex").slice(0, 16) ?? "?"})`;
      case "kms":
        return describeKmsStanza(s);
      case SERVICE_STANZA: {
        const p = parseServiceStanza(s);
        return `service key ${p.name} version ${p.version} (key service ${p.serverId})`;
      }
      case "public":
        return "public (the file key is published: anyone can read and check this file)";
      case "passphrase":
        return `passphrase (scrypt work factor 2^${s.fields[1]?.[0] ?? "?"})`;
      default:
        return `${s.type} (not understood by this version; skipped)`;
    }
  } catch {
    return `${s.type} (malformed)`;
  }
}

/** Why a leftover slot matters and how to clear it (verify, inspect and open say the same). */
export function leftoverMessage(h: ParsedHeader): string {
  const slot = h.inactiveSlot;
  const what =
    slot.kind === "stale"
      ? `generation ${slot.generation}, the older recipient list of an interrupted rewrap`
      : "the damaged remains of an interrupted rewrap";
  return `the other header slot still holds ${what}, which anyone able to edit the file can make active again: clear it by rerunning the rewrap, or \`tensorseal rewrap --to-latest FILE\``;
}
