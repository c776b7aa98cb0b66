/**
 * Just enough DER (X.690) to write the X.509 v3 certificates of the `--dev` CA — an ECDSA
 * P-256 CA, a server certificate, client certificates with a URI SAN (SPIFFE) — and its CRLs
 * (RFC 5280). Signing is node:crypto's; this file only lays out bytes. Not general ASN.1.
 */
import { createHash, type KeyObject, sign } from "node:crypto";

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const b: number[] = [];
  for (let x = n; x > 0; x >>= 8) b.unshift(x & 0xff);
  return Buffer.from([0x80 | b.length, ...b]);
}

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

export const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), b);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));

function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return tlv(0x02, v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function oid(dotted: string): Buffer {
  const p = dotted.split(".").map(Number);
  const out = [40 * p[0]! + p[1]!];
  for (const n of p.slice(2)) {
    const b = [n & 0x7f];
    for (let x = n >> 7; x > 0; x >>= 7) b.unshift(0x80 | (x & 0x7f));
    out.push(...b);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, "").slice(0, 14); // YYYYMMDDHHMMSS
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${s.slice(2)}Z`))
    : tlv(0x18, Buffer.from(`${s}Z`));
}

const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));
const name = (cn: string) => seq(set(seq(oid("2.5.4.3"), utf8(cn))));
const ext = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

export interface CertSpec {
  readonly serial: Buffer;
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicKey: KeyObject;
  readonly issuerPublicKey: KeyObject;
  readonly signingKey: KeyObject;
  readonly ca: boolean;
  /** DNS names and IP addresses for the subjectAltName (server certificates). */
  readonly dns?: readonly string[];
  readonly ips?: readonly Buffer[];
  /** URIs for the subjectAltName (a client certificate's SPIFFE ID). */
  readonly uris?: readonly string[];
  /** Extended key usage of a leaf: serverAuth (default) or clientAuth. */
  readonly usage?: "server" | "client";
}

function keyId(k: KeyObject): Buffer {
  const spki = k.export({ type: "spki", format: "der" });
  // RFC 5280 §4.2.1.2 method 1 uses SHA-1 of the key bits; SHA-256 truncated is equally valid.
  return createHash("sha256").update(spki).digest().subarray(0, 20);
}

export function certificate(c: CertSpec): Buffer {
  const exts: Buffer[] = [
    ext("2.5.29.19", true, c.ca ? seq(bool(true), integer(Buffer.from([0]))) : seq()),
    // keyUsage: CA keyCertSign|cRLSign (bits 5, 6); leaf digitalSignature (bit 0).
    ext("2.5.29.15", true, c.ca ? bits(Buffer.from([0x06]), 1) : bits(Buffer.from([0x80]), 7)),
    ext("2.5.29.14", false, octets(keyId(c.publicKey))),
    ext("2.5.29.35", false, seq(tlv(0x80, keyId(c.issuerPublicKey)))),
  ];
  if (!c.ca) {
    const eku = c.usage === "client" ? "1.3.6.1.5.5.7.3.2" : "1.3.6.1.5.5.7.3.1";
    exts.push(ext("2.5.29.37", false, seq(oid(eku))));
    const names = [
      ...(c.dns ?? []).map((d) => tlv(0x82, Buffer.from(d, "ascii"))),
      ...(c.uris ?? []).map((u) => tlv(0x86, Buffer.from(u, "utf8"))),
      ...(c.ips ?? []).map((ip) => tlv(0x87, ip)),
    ];
    if (names.length > 0) exts.push(ext("2.5.29.17", false, seq(...names)));
  }
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(c.serial),
    ECDSA_SHA256,
    name(c.issuer),
    seq(time(c.notBefore), time(c.notAfter)),
    name(c.subject),
    c.publicKey.export({ type: "spki", format: "der" }),
    tlv(0xa3, seq(...exts)),
  );
  const sig = sign("sha256", tbs, c.signingKey); // DER ECDSA-Sig-Value
  return seq(tbs, ECDSA_SHA256, bits(sig));
}

export interface CrlSpec {
  readonly issuer: string;
  readonly issuerPublicKey: KeyObject;
  readonly signingKey: KeyObject;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** CRL number (monotonic per issuer). */
  readonly number: number;
  readonly revoked: readonly { serial: Buffer; date: Date }[];
}

/** A v2 CertificateList (RFC 5280 §5) with authorityKeyIdentifier and cRLNumber. */
export function crl(c: CrlSpec): Buffer {
  const entries = c.revoked.map((r) => seq(integer(r.serial), time(r.date)));
  const n = Buffer.alloc(4);
  n.writeUInt32BE(c.number);
  const tbs = seq(
    integer(Buffer.from([1])),
    ECDSA_SHA256,
    name(c.issuer),
    time(c.thisUpdate),
    time(c.nextUpdate),
    ...(entries.length > 0 ? [seq(...entries)] : []),
    tlv(
      0xa0,
      seq(
        ext("2.5.29.35", false, seq(tlv(0x80, keyId(c.issuerPublicKey)))),
        ext("2.5.29.20", false, integer(n)),
      ),
    ),
  );
  return seq(tbs, ECDSA_SHA256, bits(sign("sha256", tbs, c.signingKey)));
}

export function pem(label: string, der: Buffer): string {
  const b64 = der.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
