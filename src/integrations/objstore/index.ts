/**
 * Sealed files in object storage: ranged, parallel, ETag-pinned reads from s3:// and
 * https:// URLs (any engine reader takes the RandomSource), and multipart sealing to s3://.
 * Errors name the URL without credentials or query (url.ts, redactUrl). The AWS SDK loads only
 * when an s3:// URL is used.
 */
import type { Readable } from "node:stream";
import type { SealResult } from "../../engine/options.js";
import type { RandomSource } from "../../engine/source.js";
import { fail } from "../../format/errors.js";
import { type HttpSourceOptions, openHttpSource } from "./http-source.js";
import type { S3SealOptions } from "./s3-upload.js";
import { parseObjectUrl } from "./url.js";

export { type HttpSourceOptions, openHttpSource } from "./http-source.js";
export { PART_BYTES, PROBE_BYTES, type RangedOptions } from "./ranged.js";
export type { S3Config } from "./s3-client.js";
export type { S3SealOptions } from "./s3-upload.js";
export { isObjectUrl, parseObjectUrl, redactUrl } from "./url.js";

/** A RandomSource for an s3:// or http(s):// URL; the caller closes it. */
export async function openObjectSource(
  url: string,
  opts: HttpSourceOptions = {},
): Promise<RandomSource> {
  const u = parseObjectUrl(url);
  if (u.kind === "s3") return (await import("./s3-source.js")).openS3Source(u.bucket, u.key, opts);
  return openHttpSource(u.url.href, opts);
}

/**
 * Seals `input` (a Readable, or a descriptor the caller owns) straight to an s3:// URL as a
 * multipart upload that appears only complete (s3-upload.ts).
 */
export async function sealToObject(
  input: Readable | number,
  url: string,
  opts: S3SealOptions,
): Promise<SealResult & { plaintextLength: number }> {
  const { bucket, key } = s3Target(url);
  return (await import("./s3-upload.js")).sealToS3(input, bucket, key, opts);
}

/** The bucket and key of an s3:// output; any other URL cannot be written to. */
export function s3Target(url: string): { bucket: string; key: string } {
  const u = parseObjectUrl(url);
  if (u.kind !== "s3") {
    fail(
      "E_USAGE",
      `${u.shown}: sealing writes only to s3:// URLs (an HTTP server has no atomic upload): seal to a file and upload it, or use -o s3://BUCKET/KEY`,
    );
  }
  return { bucket: u.bucket, key: u.key };
}
