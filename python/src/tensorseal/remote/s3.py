"""Sealed files in S3 (``s3://bucket/key``), read with ranged ``GetObject`` calls (boto3,
extra ``tensorseal[s3]``).

Opening makes one ``HeadObject`` (size, ETag, version id); every ranged ``GetObject`` then
names that version (``VersionId`` in a versioned bucket) and carries ``IfMatch`` with the
ETag, so an object overwritten mid-read fails with ``E_IO ... changed while being read``.
Credentials, region and endpoint come from boto3's usual chain (environment, profile,
instance role); ``endpoint_url`` (or ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``) points at
another S3 API (MinIO, moto, Ceph...). One boto3 client serves every thread (boto3 clients are
thread-safe); boto3's own retries are off so that :mod:`tensorseal.remote.base` retries
every store the same way.
"""

from __future__ import annotations

from typing import Any

from ..errors import error, fail
from .base import DEFAULT_RETRIES, Pin, RangeSource, Transient, changed

POOL_CONNECTIONS = 32
"""Connections the client keeps: more than the decryption pool's threads."""


def split_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key`` (``E_USAGE`` when either is missing).

    Example:
        >>> split_s3_url("s3://models/gpt2/model.safetensors.tseal")
        ('models', 'gpt2/model.safetensors.tseal')
    """
    rest = url.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    if not bucket:
        fail("E_USAGE", "an s3:// URL needs a bucket: s3://BUCKET/KEY")
    return bucket, key.split("?", 1)[0]


def s3_client(client: Any = None, *, endpoint_url: str | None = None, region: str | None = None) -> Any:
    """``client`` or a new boto3 S3 client (no boto3 retries, a connection pool for the
    decryption threads)."""
    if client is not None:
        return client
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        fail("E_USAGE", "s3:// URLs need boto3: pip install 'tensorseal[s3]'")
    config = Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=POOL_CONNECTIONS)
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


class S3Source(RangeSource):
    """One S3 object read with ranged GETs, pinned to its ETag and version.

    Args:
        url: ``s3://bucket/key``.
        client: a boto3 S3 client (default: a new one from boto3's configuration).
        endpoint_url, region: for a new client.
        version_id: read this version (default: the current one at opening).
        retries: attempts after the first for a transient failure.
    """

    def __init__(
        self,
        url: str,
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        version_id: str | None = None,
        retries: int = DEFAULT_RETRIES,
        backoff_s: float | None = None,
    ) -> None:
        super().__init__(retries=retries, **({} if backoff_s is None else {"backoff_s": backoff_s}))
        self.bucket, self.key = split_s3_url(url)
        self.name = f"s3://{self.bucket}/{self.key}"
        self._client = s3_client(client, endpoint_url=endpoint_url, region=region)
        extra = {"VersionId": version_id} if version_id else {}
        head = self.retrying(lambda: self._call("head_object", Bucket=self.bucket, Key=self.key, **extra))
        self.pin = Pin(size=int(head["ContentLength"]), etag=head.get("ETag"), version=head.get("VersionId"))

    def _fetch(self, offset: int, n: int) -> bytes:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key, "Range": f"bytes={offset}-{offset + n - 1}"}
        if self.pin.version:
            args["VersionId"] = self.pin.version
        if self.pin.etag:
            args["IfMatch"] = self.pin.etag
        resp = self._call("get_object", **args)
        if self.pin.etag and resp.get("ETag") not in (None, self.pin.etag):
            raise changed("the ETag no longer matches")
        try:
            return resp["Body"].read()
        except Exception as e:  # urllib3 / botocore read errors: a broken connection
            raise Transient(type(e).__name__) from None

    def _call(self, op: str, **args: Any) -> Any:
        try:
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:  # pragma: no cover - a client given without botocore installed
            BotoCoreError = ClientError = ()  # type: ignore[assignment,misc]
        try:
            return getattr(self._client, op)(**args)
        except ClientError as e:  # type: ignore[misc]
            raise _client_error(e) from None
        except BotoCoreError as e:  # type: ignore[misc]  # endpoint unreachable, timeouts...
            raise Transient(type(e).__name__) from None


def _client_error(e: Any) -> BaseException:
    code = str(e.response.get("Error", {}).get("Code", ""))
    status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code == "PreconditionFailed" or status == 412:
        return changed("the ETag no longer matches")
    if status == 429 or status >= 500 or code in ("SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"):
        return Transient(code or f"HTTP {status}")
    if code == "NoSuchVersion":
        return changed("the version read was deleted")
    if code in ("NoSuchKey", "NotFound", "404") or status == 404:
        return error("E_IO", "no such object (404)")
    if code == "NoSuchBucket":
        return error("E_IO", "no such bucket")
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken") or status == 403:
        return error("E_IO", f"access denied ({code or status}): check the credentials")
    if code == "InvalidRange" or status == 416:
        return changed("the range is past the end")
    return error("E_IO", f"S3 refused the request ({code or status})")



def list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix`` (``E_IO`` when the listing is refused)."""
    from botocore.exceptions import BotoCoreError, ClientError

    keys: list[str] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []))
    except ClientError as e:
        err = _client_error(e)
        raise (err if not isinstance(err, Transient) else error("E_IO", f"cannot list the prefix: {err}")) from None
    except BotoCoreError as e:
        fail("E_IO", f"cannot list the prefix: {type(e).__name__}")
    return keys
