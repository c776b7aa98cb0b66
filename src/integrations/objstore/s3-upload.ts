/**
 * `seal FILE -o s3://bucket/key`: the sealed stream goes straight into a multipart upload
 * (lib-storage's Upload: 8 MiB parts, 4 in flight, so memory stays near 40 MiB whatever the
 * size), with no local sealed copy. S3 makes an object visible only when
 * CompleteMultipartUpload succeeds (or, under one part, when its single PutObject does), so a
 * reader never sees a partial sealed file. On any failure the sealing side destroys the body
 * (never ends it: an ended body would complete a truncated object), the upload is aborted and
 * its parts deleted. A process killed outright cannot send that abort: the parts it uploaded
 * stay invisible until a lifecycle rule (AbortIncompleteMultipartUpload) removes them.
 */

import { PassThrough, type Readable } from "node:stream";
import { AbortMultipartUploadCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { SealResult, StreamSealOptions } from "../../engine/options.js";
import { sealStream } from "../../engine/stream.js";
import { fail } from "../../format/errors.js";
import { s3Client, s3Error } from "./s3-client.js";

export const UPLOAD_PART_BYTES = 8 << 20;
export const UPLOAD_QUEUE = 4;

export interface S3SealOptions extends StreamSealOptions {
  /** Replace an existing object (otherwise refused, as a local output is without --force). */
  readonly force?: boolean;
  readonly client?: S3Client;
  readonly partBytes?: number;
}

export async function sealToS3(
  input: Readable | number,
  bucket: string,
  key: string,
  opts: S3SealOptions,
): Promise<SealResult & { plaintextLength: number }> {
  const name = `s3://${bucket}/${key}`;
  const client = opts.client ?? s3Client();
  try {
    if (!opts.force && (await exists(client, bucket, key, name))) {
      fail("E_USAGE", `${name} exists: pass --force to overwrite it`);
    }
    const body = new PassThrough({ highWaterMark: 1 << 20 });
    const upload = new Upload({
      client,
      params: { Bucket: bucket, Key: key, Body: body, ContentType: "application/vnd.tensorseal" },
      partSize: opts.partBytes ?? UPLOAD_PART_BYTES,
      queueSize: UPLOAD_QUEUE,
      leavePartsOnError: false,
    });
    const uploaded = upload.done();
    // An upload that fails first (access denied, bucket gone) must stop the sealing side, which
    // would otherwise wait on a body nobody reads.
    uploaded.catch((e) => body.destroy(e instanceof Error ? e : new Error(String(e))));
    let result: SealResult & { plaintextLength: number };
    try {
      result = await sealStream(input, body, opts);
    } catch (e) {
      if (!body.destroyed) body.destroy(e instanceof Error ? e : new Error(String(e)));
      await uploaded.catch(() => {});
      await abortLeftover(client, bucket, key, upload);
      throw e;
    }
    try {
      await uploaded;
    } catch (e) {
      await abortLeftover(client, bucket, key, upload);
      throw s3Error(e, name, "upload");
    }
    return result;
  } finally {
    if (!opts.client) client.destroy();
  }
}

async function exists(client: S3Client, bucket: string, key: string, name: string) {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (e) {
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404) return false;
    throw s3Error(e, name, "HeadObject");
  }
}

/** lib-storage aborts on its own failures; this covers a failure on the sealing side too. */
async function abortLeftover(client: S3Client, bucket: string, key: string, upload: Upload) {
  const uploadId = (upload as unknown as { uploadId?: string }).uploadId;
  if (!uploadId) return;
  await client
    .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
    .catch(() => {}); // already aborted by lib-storage (NoSuchUpload)
}
