/**
 * The streamed whole-object GetObject (RangedSource.stream) through http1.ts instead of the
 * SDK's node:http handler, whose fresh buffer per socket read cost 120-231 MiB of peak RSS on a
 * 256 MiB open (docs/BENCHMARKS.md). The request is presigned by the client itself
 * (s3-request-presigner): its endpoint rules (path-style, custom endpoint, region), its
 * credentials (env, profiles, session tokens) and the Range and If-Match headers, both signed.
 * A fresh URL per attempt, valid PRESIGN_SECONDS: a resume re-signs.
 *
 * The presigned URL is a bearer secret (signature, credential scope, maybe a session token): it
 * never reaches a message, a log or an exception; errors name the s3:// URL, S3's error answer
 * is read only for its <Code> (its StringToSign/CanonicalRequest echo the query).
 */
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { fail, isTensorSealError } from "../../format/errors.js";
import { NETWORK_CODES, type RawResponse, rawGet } from "./http1.js";
import { type Body, changedError, checkContentRange } from "./ranged.js";
import { s3Error } from "./s3-client.js";

/** Seconds a presigned GET stays valid: it only has to start within this time. */
export const PRESIGN_SECONDS = 600;
/** Bytes of an error answer read for its <Code>. */
const ERROR_BODY_MAX = 8 << 10;
const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);

export interface S3Get {
  readonly client: S3Client;
  /** The s3:// URL, the only name errors carry. */
  readonly name: string;
  readonly bucket: string;
  readonly key: string;
  /** The probed object: its size and ETag (the pin). */
  readonly size: number;
  readonly etag: string | null;
  readonly timeoutMs: number;
}

/**
 * One presigned ranged GET, its answer's headers checked (206, the probed ETag, Content-Range,
 * Content-Length), its body not yet read. Throws a plain Error (no URL in it) for what a
 * resume may cure (a dropped or refused connection, 429/5xx: RangedSource.stream retries with
 * backoff), a TensorSealError naming the s3:// URL for anything else.
 */
export async function s3StreamBody(g: S3Get, start: number, length: number): Promise<Body> {
  const range = `bytes=${start}-${start + length - 1}`;
  const ifMatch = g.etag ?? undefined;
  let url: URL;
  try {
    const cmd = new GetObjectCommand({
      Bucket: g.bucket,
      Key: g.key,
      Range: range,
      IfMatch: ifMatch,
    });
    // Signed at the client's clock as corrected by S3's answers (the probe's), like its requests.
    const offset = (g.client.config as { systemClockOffset?: number }).systemClockOffset ?? 0;
    const signingDate = new Date(Date.now() + offset);
    url = new URL(await getSignedUrl(g.client, cmd, { expiresIn: PRESIGN_SECONDS, signingDate }));
  } catch (e) {
    throw s3Error(e, g.name, "GetObject");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    fail("E_USAGE", `${g.name}: the S3 endpoint is neither http:// nor https://`);
  }
  const headers: Record<string, string> = { range, "accept-encoding": "identity" };
  if (ifMatch !== undefined) headers["if-match"] = ifMatch;
  let res: RawResponse;
  try {
    res = await rawGet(url, headers, { timeoutMs: g.timeoutMs });
  } catch (e) {
    throw netError(e, g.name);
  }
  try {
    return await checked(res, g, start, length);
  } catch (e) {
    res.destroy();
    throw e;
  }
}

async function checked(res: RawResponse, g: S3Get, start: number, length: number): Promise<Body> {
  const status = res.statusCode;
  if (status !== 206) {
    if (RETRY_STATUS.has(status)) throw new Error(`S3 answered HTTP ${status}`);
    if (status === 200) {
      fail(
        "E_IO",
        `${g.name}: GetObject failed: the endpoint ignored the Range request (200 instead of 206)`,
      );
    }
    const code = await errorCode(res);
    throw s3Error(
      { name: code ?? "Error", $metadata: { httpStatusCode: status } },
      g.name,
      "GetObject",
    );
  }
  if ((res.headers.etag ?? null) !== g.etag) changedError(g.name);
  checkContentRange(g.name, res.headers["content-range"], start, length, g.size);
  const declared = res.headers["content-length"];
  if (declared !== undefined && Number(declared) !== length) {
    fail("E_IO", `${g.name}: S3 sent ${declared} bytes for a range of ${length}`);
  }
  return res;
}

/** S3's error <Code> (AccessDenied, SignatureDoesNotMatch, ...); nothing else of the answer. */
function errorCode(res: RawResponse): Promise<string | null> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let got = 0;
    const done = () => {
      const text = Buffer.concat(parts).toString("latin1");
      resolve(/<Code>([A-Za-z0-9.]{1,64})<\/Code>/.exec(text)?.[1] ?? null);
      res.destroy();
    };
    res.on("data", (c: Uint8Array) => {
      if (got >= ERROR_BODY_MAX) return;
      parts.push(Buffer.from(c.subarray(0, ERROR_BODY_MAX - got))); // a copy: views are reused
      got += Math.min(c.length, ERROR_BODY_MAX - got);
      if (got >= ERROR_BODY_MAX) done();
    });
    res.on("end", done);
    res.on("close", done);
    res.on("error", done);
    res.resume();
  });
}

/**
 * A failed connection: retryable ones as a plain Error naming only the error code; a malformed
 * answer or a TLS failure as final, naming the s3:// URL.
 */
function netError(e: unknown, name: string): Error {
  if (isTensorSealError(e)) {
    try {
      return fail("E_IO", `${name}: GetObject failed: ${e.message}`);
    } catch (x) {
      return x as Error;
    }
  }
  const code = (e as NodeJS.ErrnoException)?.code ?? "unknown error";
  if (NETWORK_CODES.has(code)) return new Error(`connection failed (${code})`);
  return s3Error({ name: "Error", code }, name, "GetObject");
}
