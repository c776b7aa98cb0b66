/**
 * Reads the URI entries of a certificate's subjectAltName from its DER. Node exposes the SAN
 * only as a display string (`X509Certificate.subjectAltName`) whose quoting rules differ by
 * name type; counting URI SANs exactly ("exactly one SPIFFE ID") needs the structure itself.
 * Only the path Certificate → tbsCertificate → [3] extensions → 2.5.29.17 is walked; anything
 * that does not parse throws (the caller denies).
 */

interface Tlv {
  readonly tag: number;
  readonly body: Buffer;
  readonly end: number;
}

function read(b: Buffer, at: number): Tlv {
  if (at + 2 > b.length) throw new Error("DER: truncated");
  const tag = b[at]!;
  let len = b[at + 1]!;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > b.length) throw new Error("DER: bad length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p + i]!;
    p += n;
  }
  if (p + len > b.length) throw new Error("DER: truncated");
  return { tag, body: b.subarray(p, p + len), end: p + len };
}

function children(b: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < b.length; ) {
    const t = read(b, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

const SAN_OID = Buffer.from([0x55, 0x1d, 0x11]); // 2.5.29.17

/** Every uniformResourceIdentifier [6] in the subjectAltName (empty without the extension). */
export function uriSubjectAltNames(certDer: Buffer): string[] {
  const cert = read(certDer, 0);
  const tbs = children(cert.body)[0];
  if (cert.tag !== 0x30 || tbs?.tag !== 0x30) throw new Error("DER: not a certificate");
  const exts = children(tbs.body).find((t) => t.tag === 0xa3);
  if (!exts) return [];
  const out: string[] = [];
  for (const e of children(read(exts.body, 0).body)) {
    const [id, ...rest] = children(e.body);
    if (id?.tag !== 0x06 || !id.body.equals(SAN_OID)) continue;
    const value = rest[rest.length - 1];
    if (value?.tag !== 0x04) throw new Error("DER: bad subjectAltName");
    for (const n of children(read(value.body, 0).body))
      if (n.tag === 0x86) out.push(n.body.toString("latin1"));
  }
  return out;
}
