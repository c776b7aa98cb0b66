/**
 * The S3 client for object URLs, configured as every AWS tool is: credentials from the SDK's
 * default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, AWS_PROFILE, SSO,
 * web identity, instance roles), region from TENSORSEAL_S3_REGION, AWS_REGION or
 * AWS_DEFAULT_REGION (us-east-1 otherwise), and an S3-compatible endpoint (moto, MinIO, R2,
 * Ceph) from TENSORSEAL_S3_ENDPOINT, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, addressed
 * path-style. The SDK retries throttling and 5xx answers itself (standard mode, 5 attempts).
 */
import { S3Client } from "@aws-sdk/client-s3";
import { fail, isTensorSealError, type TensorSealError } from "../../format/errors.js";

export interface S3Config {
  readonly region: string;
  readonly endpoint?: string;
}

export function s3ConfigFromEnv(env: NodeJS.ProcessEnv = process.env): S3Config {
  const region =
    env.TENSORSEAL_S3_REGION || env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1";
  const endpoint = env.TENSORSEAL_S3_ENDPOINT || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  return { region, ...(endpoint ? { endpoint } : {}) };
}

/**
 * Clients built here: their requests go through node:http with default TLS and no proxy, so a
 * presigned GET sent by http1.ts reaches the same server the same way (s3-stream.ts). A client
 * built elsewhere may carry its own requestHandler (agents, CA, proxy): it keeps the SDK path.
 */
const OWN = new WeakSet<S3Client>();

export function isOwnS3Client(client: S3Client): boolean {
  return OWN.has(client);
}

export function s3Client(config: S3Config = s3ConfigFromEnv(), maxSockets = 8): S3Client {
  const client = new S3Client({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint, forcePathStyle: true } : {}),
    maxAttempts: 5,
    // The sealed file authenticates itself; full-object checksums do not apply to ranges.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: {
      connectionTimeout: 10_000,
      requestTimeout: 60_000,
      httpsAgent: { maxSockets },
      httpAgent: { maxSockets },
    },
  });
  OWN.add(client);
  return client;
}

/** An SDK error as a TensorSealError that names the object (never a credential). */
export function s3Error(e: unknown, name: string, op: string): TensorSealError {
  if (isTensorSealError(e)) return e;
  const err = e as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const kind = err?.name ?? "Error";
  const status = err?.$metadata?.httpStatusCode;
  const why = (() => {
    switch (kind) {
      case "NoSuchKey":
      case "NotFound":
        return "not found";
      case "NoSuchBucket":
        return "no such bucket";
      case "AccessDenied":
      case "Forbidden":
        return "access denied: the credentials need s3:GetObject (reading) or s3:PutObject (sealing)";
      case "PreconditionFailed":
        return "the object changed while it was being read (its ETag no longer matches): open it again";
      case "InvalidAccessKeyId":
      case "SignatureDoesNotMatch":
      case "ExpiredToken":
        return "AWS credentials rejected: check AWS_ACCESS_KEY_ID / AWS_PROFILE";
      case "CredentialsProviderError":
        return "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY";
      case "TimeoutError":
        return "no answer in time";
    }
    if (status === 412)
      return "the object changed while it was being read (its ETag no longer matches): open it again";
    if (status === 404) return "not found";
    if (status === 403) return "access denied";
    const code = err?.code;
    return code
      ? `cannot reach S3: ${code}`
      : `S3 error (${kind}${status ? `, HTTP ${status}` : ""})`;
  })();
  try {
    return fail("E_IO", `${name}: ${op} failed: ${why}`, e);
  } catch (x) {
    return x as TensorSealError;
  }
}
