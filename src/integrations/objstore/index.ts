/**
 * Sealed files in object storage: ranged, parallel, ETag-pinned reads from s3:// and
 * https:// URLs (any engine reader takes the RandomSource), and multipart sealing to s3://.
 * Errors name the URL without credentials or query (url.ts, redactUrl).
 */
import type { RandomSource } from "../../engine/source.js";
import { fail } from "../../format/errors.js";
import { type HttpSourceOptions, openHttpSource } from "./http-source.js";
import { openS3Source } from "./s3-source.js";
import { parseObjectUrl } from "./url.js";

export { type HttpSourceOptions, openHttpSource } from "./http-source.js";
export { PART_BYTES, PROBE_BYTES, type RangedOptions } from "./ranged.js";
export { type S3Config, s3Client, s3ConfigFromEnv } from "./s3-client.js";
export { openS3Source } from "./s3-source.js";
export { type S3SealOptions, sealToS3 } from "./s3-upload.js";
export { isObjectUrl, parseObjectUrl, redactUrl } from "./url.js";

/** A RandomSource for an s3:// or http(s):// URL; the caller closes it. */
export async function openObjectSource(
  url: string,
  opts: HttpSourceOptions = {},
): Promise<RandomSource> {
  const u = parseObjectUrl(url);
  if (u.kind === "s3") return openS3Source(u.bucket, u.key, opts);
  return openHttpSource(u.url.href, opts);
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
