"""Sealing straight to ``s3://bucket/key``: the sealed stream goes into a multipart upload with
no local sealed copy, as the CLI's ``seal -o s3://`` (src/integrations/objstore/s3-upload.ts).

- Memory is bounded: 8 MiB parts, at most 4 uploading at once plus the one being filled, so
  about 40 MiB whatever the file's size.
- S3 makes an object visible only when CompleteMultipartUpload succeeds (under one part, when
  its single PutObject does), so a reader never sees a partial sealed file. On any failure,
  including KeyboardInterrupt, the parts still uploading are waited for and the upload is
  aborted (AbortMultipartUpload deletes its parts): nothing remains. A process killed outright
  cannot send that abort; its parts stay invisible until a lifecycle rule
  (AbortIncompleteMultipartUpload) removes them. SIGTERM and SIGHUP with their default action
  abort the upload before the process dies of them (interrupt.py).
- An existing object is refused (``E_USAGE``) unless ``overwrite=True``, as the CLI refuses it
  without ``--force``.
- Transient failures (5xx, throttling, a broken connection) are retried with backoff, as reads are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import TensorSealError, error, fail
from ..interrupt import on_interrupt
from .base import BACKOFF_S, DEFAULT_RETRIES, Transient
from .s3 import _client_error, s3_client, split_s3_url

T = TypeVar("T")
UPLOAD_PART_BYTES = 8 << 20
"""Bytes per part (S3's minimum is 5 MiB for every part but the last)."""
UPLOAD_QUEUE = 4
"""Parts uploading at once."""
MIN_PART_BYTES = 5 << 20
CONTENT_TYPE = "application/vnd.tensorseal"


class _Absent(Exception):
    """HeadObject answered 404: the key is free."""


class S3Upload:
    """A write-only binary stream that becomes the object ``url`` when :meth:`commit` succeeds.

    Use it through :func:`s3_output`, which commits on success and aborts on any exception.

    Args:
        url: ``s3://bucket/key``.
        client: a boto3 S3 client (default: a new one from boto3's configuration).
        endpoint_url, region: for a new client.
        overwrite: replace an existing object (refused otherwise).
        part_size: bytes per part (at least 5 MiB).
        queue: parts uploading at once.
        retries: attempts after the first for a transient failure.
    """

    def __init__(
        self,
        url: str,
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        overwrite: bool = False,
        part_size: int = UPLOAD_PART_BYTES,
        queue: int = UPLOAD_QUEUE,
        retries: int = DEFAULT_RETRIES,
        backoff_s: float = BACKOFF_S,
    ) -> None:
        if part_size < MIN_PART_BYTES:
            fail("E_USAGE", f"part_size must be at least {MIN_PART_BYTES} bytes (S3's minimum part)")
        if queue < 1:
            fail("E_USAGE", "queue must be at least 1")
        self.bucket, self.key = split_s3_url(url)
        if not self.key:
            fail("E_USAGE", "an s3:// output needs a key: s3://BUCKET/KEY")
        self.name = f"s3://{self.bucket}/{self.key}"
        self._client = s3_client(client, endpoint_url=endpoint_url, region=region)
        self._part_size, self._queue, self._retries, self._backoff = part_size, queue, retries, backoff_s
        self._buf = bytearray()
        self._upload_id: str | None = None
        self._parts: dict[int, str] = {}
        self._next_part = 1
        self._inflight: list[Future[None]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._done = False
        self._release: Callable[[], None] = _noop
        self.parts_uploaded = 0
        self.peak_buffered = 0
        """Most bytes held at once (the part being filled plus the parts uploading): for tests."""
        if not overwrite and self._exists():
            fail("E_USAGE", f"{self.name} exists: pass overwrite=True (seal_file: target_options={{'overwrite': True}}) to replace it")

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffers ``data``; each full part is handed to an upload thread (waiting while
        ``queue`` parts are uploading, which bounds memory)."""
        if self._done:
            fail("E_USAGE", "write after the upload was committed or aborted")
        view = memoryview(data).cast("B")
        n = len(view)
        while len(view):
            take = min(len(view), self._part_size - len(self._buf))
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) == self._part_size:
                self._send(bytes(self._buf))
                self._buf = bytearray()
        return n

    def commit(self) -> None:
        """Uploads what is left and completes the upload: only now does the object appear."""
        if self._done:
            return
        try:
            if self._upload_id is None:
                body = bytes(self._buf)
                self._buf = bytearray()
                self._retrying("PutObject", lambda: self._client.put_object(
                    Bucket=self.bucket, Key=self.key, Body=body, ContentType=CONTENT_TYPE))  # fmt: skip
            else:
                if self._buf:
                    self._send(bytes(self._buf))
                    self._buf = bytearray()
                self._drain()
                parts = [{"PartNumber": n, "ETag": self._parts[n]} for n in sorted(self._parts)]
                upload_id = self._upload_id
                self._retrying("CompleteMultipartUpload", lambda: self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=upload_id, MultipartUpload={"Parts": parts}))  # fmt: skip
                self._upload_id = None
        except BaseException:
            self.abort()
            raise
        self._finish()

    def abort(self) -> None:
        """Stops the upload and deletes its parts; best effort, never raises."""
        self._done = True
        self._buf = bytearray()
        for f in self._inflight:
            f.cancel()
        for f in self._inflight:
            try:
                f.result()
            except BaseException:
                pass
        self._inflight = []
        self._abort_upload()
        self._finish()

    def _abort_upload(self) -> None:
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
            except Exception:
                pass  # already aborted (NoSuchUpload), or unreachable: the original error matters

    def _finish(self) -> None:
        self._done = True
        self._release()
        self._release = _noop
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _send(self, part: bytes) -> None:
        if self._upload_id is None:
            out = self._retrying("CreateMultipartUpload", lambda: self._client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=CONTENT_TYPE))  # fmt: skip
            self._upload_id = str(out["UploadId"])
            # SIGTERM / SIGHUP would kill the process without unwinding: abort the upload first
            # (interrupt.py runs this, then the process dies of the signal).
            self._release = on_interrupt(self._abort_upload)
            self._pool = ThreadPoolExecutor(self._queue, thread_name_prefix="tensorseal-s3-upload")
        # Wait for the oldest part while the queue is full (and surface its failure now).
        while len(self._inflight) >= self._queue:
            self._inflight.pop(0).result()
        number, self._next_part = self._next_part, self._next_part + 1
        upload_id = self._upload_id
        assert self._pool is not None
        self._inflight.append(self._pool.submit(self._upload_part, upload_id, number, part))
        held = len(self._inflight) * self._part_size + len(self._buf)
        self.peak_buffered = max(self.peak_buffered, held)

    def _upload_part(self, upload_id: str, number: int, part: bytes) -> None:
        out = self._retrying("UploadPart", lambda: self._client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=upload_id, PartNumber=number, Body=part))  # fmt: skip
        with self._lock:
            self._parts[number] = str(out["ETag"])
            self.parts_uploaded += 1

    def _drain(self) -> None:
        while self._inflight:
            self._inflight.pop(0).result()

    def _exists(self) -> bool:
        try:
            self._retrying("HeadObject", lambda: self._head())
            return True
        except _Absent:
            return False

    def _head(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=self.key)
        except ClientError as e:
            if int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0) == 404:
                raise _Absent() from None
            raise

    def _retrying(self, op: str, request: Callable[[], T]) -> T:
        try:
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:  # pragma: no cover - a client given without botocore installed
            BotoCoreError = ClientError = ()  # type: ignore[assignment,misc]
        attempt = 0
        while True:
            try:
                try:
                    return request()
                except ClientError as e:  # type: ignore[misc]
                    raise _client_error(e) from None
                except BotoCoreError as e:  # type: ignore[misc]
                    raise Transient(type(e).__name__) from None
            except Transient as e:
                if attempt >= self._retries:
                    raise error("E_IO", f"{op} failed after {attempt + 1} attempts: {e}").naming(self.name) from None
                attempt += 1
                time.sleep(self._backoff * (2 ** (attempt - 1)))
            except TensorSealError as e:
                raise error(e.code, f"{op}: {e.message}").naming(self.name) from None


def _noop() -> None:
    pass


class s3_output:
    """Context manager: an :class:`S3Upload` committed on a clean exit, aborted on any exception.

    Example:
        >>> with s3_output("s3://models/w.tseal") as out:  # doctest: +SKIP
        ...     out.write(sealed_bytes)
    """

    def __init__(self, url: str, **options: Any) -> None:
        self.url, self.options = url, options
        self.upload: S3Upload | None = None

    def __enter__(self) -> S3Upload:
        self.upload = S3Upload(self.url, **self.options)
        return self.upload

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self.upload is not None
        if exc_type is None:
            self.upload.commit()
        else:
            self.upload.abort()
