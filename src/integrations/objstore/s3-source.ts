/**
 * A sealed file in S3 (or an S3-compatible store) as a RandomSource: a probe GetObject of the
 * first range learns the size and the ETag; every later GetObject asks for its range with
 * IfMatch on that ETag (S3 answers 412 if the object was replaced), and the answer's
 * Content-Range and ETag are checked again before its bytes are used. A whole-file read is one
 * such GetObject streamed (ranged.ts, stream): presigned and read off the socket by http1.ts
 * when the client is one of ours (s3-stream.ts), through the SDK otherwise.
 */

import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { GetObjectCommand, type GetObjectCommandOutput, type S3Client } from "@aws-sdk/client-s3";
import { fail, isTensorSealError } from "../../format/errors.js";
import {
  type Body,
  changedError,
  checkContentRange,
  PROBE_BYTES,
  type Probe,
  type RangedOptions,
  RangedSource,
} from "./ranged.js";
import { isOwnS3Client, s3Client, s3Error } from "./s3-client.js";
import { s3StreamBody } from "./s3-stream.js";

/** A streamed GET's socket idle this long (connect included) is a break, resumed (as the SDK's). */
const STREAM_TIMEOUT_MS = 60_000;

export async function openS3Source(
  bucket: string,
  key: string,
  opts: RangedOptions & { client?: S3Client; timeoutMs?: number } = {},
): Promise<RangedSource> {
  const name = `s3://${bucket}/${key}`;
  const client = opts.client ?? s3Client(undefined, opts.concurrency);
  try {
    const r = await get(client, name, bucket, key, `bytes=0-${PROBE_BYTES - 1}`, undefined);
    const total = Number(/\/(\d+)$/.exec(r.ContentRange ?? "")?.[1] ?? Number.NaN);
    if (!Number.isSafeInteger(total)) checkContentRange(name, r.ContentRange, 0, PROBE_BYTES, null);
    const want = Math.min(PROBE_BYTES, total);
    checkContentRange(name, r.ContentRange, 0, want, total);
    const head = await body(r, want, name);
    const probe: Probe = { size: total, etag: r.ETag ?? null, head };
    const owned = opts.client === undefined;
    return new S3Source(name, probe, opts, client, bucket, key, owned);
  } catch (e) {
    if (opts.client === undefined) client.destroy();
    throw e;
  }
}

class S3Source extends RangedSource {
  constructor(
    name: string,
    probe: Probe,
    opts: RangedOptions & { timeoutMs?: number },
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly owned: boolean,
  ) {
    super(name, probe, opts);
    this.timeoutMs = opts.timeoutMs ?? STREAM_TIMEOUT_MS;
  }

  private readonly timeoutMs: number;

  /**
   * The SDK retries a request until its answer's headers arrive; a body cut off after that
   * (a dropped connection) is retried here, twice.
   */
  protected async fetch(start: number, length: number): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.fetchOnce(start, length);
      } catch (e) {
        if (isTensorSealError(e) || attempt >= 3) throw s3Error(e, this.name, "GetObject");
        await sleep(100 * 2 ** attempt);
      }
    }
  }

  private async fetchOnce(start: number, length: number): Promise<Buffer> {
    return body(await this.getChecked(start, length), length, this.name);
  }

  /**
   * A streamed whole read, read by RangedSource.stream as it arrives: a presigned GET read by
   * http1.ts into the stream's pieces, or (a client built elsewhere) the SDK's answer body.
   */
  protected async body(start: number, length: number): Promise<Body> {
    if (isOwnS3Client(this.client)) {
      const { client, name, bucket, key, size, timeoutMs } = this;
      const etag = this.probe.etag;
      return s3StreamBody({ client, name, bucket, key, size, etag, timeoutMs }, start, length);
    }
    const r = await this.getChecked(start, length);
    const stream = r.Body as Readable | undefined;
    if (!stream) return fail("E_IO", `${this.name}: S3 answered without a body`);
    if (r.ContentLength !== undefined && r.ContentLength !== length) {
      stream.destroy();
      fail("E_IO", `${this.name}: S3 sent ${r.ContentLength} bytes for a range of ${length}`);
    }
    return stream;
  }

  /** One GetObject of the range, IfMatch the probed ETag; its ETag and Content-Range checked. */
  private async getChecked(start: number, length: number): Promise<GetObjectCommandOutput> {
    const range = `bytes=${start}-${start + length - 1}`;
    const etag = this.probe.etag ?? undefined;
    const r = await get(this.client, this.name, this.bucket, this.key, range, etag);
    try {
      if ((r.ETag ?? null) !== this.probe.etag) changedError(this.name);
      checkContentRange(this.name, r.ContentRange, start, length, this.size);
    } catch (e) {
      (r.Body as Readable | undefined)?.destroy?.();
      throw e;
    }
    return r;
  }

  protected release(): void {
    if (this.owned) this.client.destroy();
  }
}

async function get(
  client: S3Client,
  name: string,
  bucket: string,
  key: string,
  range: string,
  ifMatch: string | undefined,
): Promise<GetObjectCommandOutput> {
  try {
    return await client.send(
      new GetObjectCommand({ Bucket: bucket, Key: key, Range: range, IfMatch: ifMatch }),
    );
  } catch (e) {
    throw s3Error(e, name, "GetObject");
  }
}

async function body(r: GetObjectCommandOutput, want: number, name: string): Promise<Buffer> {
  if (!r.Body) return fail("E_IO", `${name}: S3 answered without a body`);
  const bytes = await r.Body.transformToByteArray();
  if (bytes.length !== want) {
    fail("E_IO", `${name}: S3 sent ${bytes.length} bytes for a range of ${want}`);
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}
