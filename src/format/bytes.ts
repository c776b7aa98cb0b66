import { fail } from "./errors.js";

/** Canonical big-endian encoder for the header structures of spec/FORMAT.md §2. */
export class ByteWriter {
  private readonly parts: Buffer[] = [];

  u8(n: number): this {
    return this.push(Buffer.from([n]));
  }
  u16(n: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    return this.push(b);
  }
  u32(n: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return this.push(b);
  }
  u64(n: number): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return this.push(b);
  }
  raw(b: Uint8Array): this {
    return this.push(Buffer.from(b));
  }
  /** u16 length prefix, then the bytes. */
  bytes16(b: Uint8Array): this {
    if (b.length > 0xffff) fail("E_MALFORMED", `field of ${b.length} bytes exceeds 65535`);
    return this.u16(b.length).raw(b);
  }
  /** u8 length prefix, then ASCII. */
  str8(s: string): this {
    const b = Buffer.from(s, "utf8");
    if (b.length > 0xff) fail("E_MALFORMED", `string of ${b.length} bytes exceeds 255`);
    return this.u8(b.length).raw(b);
  }
  str16(s: string): this {
    return this.bytes16(Buffer.from(s, "utf8"));
  }
  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
  private push(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
}

/** Strict decoder: every read is bounds-checked, `end()` rejects trailing bytes. */
export class ByteReader {
  private pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  get offset(): number {
    return this.pos;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  u8(): number {
    return this.take(1)[0]!;
  }
  u16(): number {
    return this.take(2).readUInt16BE();
  }
  u32(): number {
    return this.take(4).readUInt32BE();
  }
  u64(): number {
    const v = this.take(8).readBigUInt64BE();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.bad(`integer ${v} exceeds 2^53-1`);
    return Number(v);
  }
  bytes(n: number): Buffer {
    return this.take(n);
  }
  bytes16(): Buffer {
    return this.take(this.u16());
  }
  str8(): string {
    return this.utf8(this.take(this.u8()));
  }
  str16(): string {
    return this.utf8(this.bytes16());
  }
  end(): void {
    if (this.remaining !== 0) this.bad(`${this.remaining} unexpected trailing bytes`);
  }
  bad(why: string): never {
    fail("E_MALFORMED", `${this.what}: ${why} (at byte ${this.pos})`);
  }
  private take(n: number): Buffer {
    if (n > this.remaining) this.bad(`needs ${n} bytes, only ${this.remaining} left`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  private utf8(b: Buffer): string {
    const s = b.toString("utf8");
    // Round-trip check rejects invalid UTF-8 (which Node would silently replace).
    if (!Buffer.from(s, "utf8").equals(b)) this.bad("string is not valid UTF-8");
    return s;
  }
}
