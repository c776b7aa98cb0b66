"""Random access to a sealed file held elsewhere: the interface and its retry loop.

A :class:`RangeSource` reads byte ranges of one object, pinned to the version it saw when it
was opened (its size and, where the store has them, its ETag or version id). Every read asks
the store for that version only (``If-Match`` / ``VersionId``): an object replaced while it is
being read fails with ``E_IO ... changed while being read`` instead of mixing two versions.
(Two versions could not mix silently anyway: each chunk is authenticated with keys derived
from the file's own salt, so a chunk of another sealing fails ``E_DECRYPT``; the pin turns that
into a clear message, and also covers a rewrap, whose chunks would still open.)

Transient failures (connection errors, timeouts, HTTP 5xx and 429) are retried with
exponential backoff; a missing object, a refused credential or a changed object are not.
:meth:`RangeSource.read_into` is safe from several threads at once: the decryption pool
(:mod:`tensorseal.chunk_pool`) fetches the chunks of a long read in parallel, each worker
into its own bounded scratch buffer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import TensorSealError, error, fail

T = TypeVar("T")
DEFAULT_RETRIES = 4
"""Attempts after the first for a transient failure (so 5 in all)."""
BACKOFF_S = 0.1
"""First pause between attempts; doubled each time (0.1, 0.2, 0.4, 0.8 s)."""


class Transient(Exception):
    """A failure worth another attempt (raised by sources, never seen by callers)."""


@dataclass(frozen=True)
class Pin:
    """The version of an object a source reads: size, and ETag / version id when known."""

    size: int
    etag: str | None = None
    version: str | None = None


class RangeSource:
    """Ranged reads of one remote object (subclasses: HTTP, S3, fsspec).

    Subclasses set ``name`` (the redacted URL) and ``pin`` in ``__init__`` and implement
    :meth:`_fetch`.

    Attributes:
        name: the object's URL without credentials or query string.
        pin: the version being read.
        bytes_fetched: bytes received so far (tests and benchmarks read it).
        requests: ranged requests made so far, retries included.
        retries: attempts repeated after a transient failure.
    """

    name: str
    pin: Pin

    def __init__(self, *, retries: int = DEFAULT_RETRIES, backoff_s: float = BACKOFF_S) -> None:
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            fail("E_USAGE", f"retries must be an integer >= 0, got {retries!r}")
        self._retries = retries
        self._backoff = backoff_s
        self._stats = threading.Lock()
        self.bytes_fetched = 0
        self.requests = 0
        self.retries = 0
        self.closed = False

    @property
    def size(self) -> int:
        return self.pin.size

    def _fetch(self, offset: int, n: int) -> bytes:
        """Bytes ``[offset, offset + n)`` of the pinned version (raise :class:`Transient` to
        be retried, :class:`TensorSealError` to stop)."""
        raise NotImplementedError

    def _fetch_into(self, offset: int, buf: memoryview) -> int:
        """Fills ``buf`` with bytes from ``offset``; returns the bytes received. Sources
        that can receive straight into a buffer override it (no copy)."""
        data = self._fetch(offset, len(buf))
        n = min(len(data), len(buf))
        buf[:n] = data[:n]
        return len(data)

    def read(self, offset: int, n: int) -> bytes:
        """Bytes ``[offset, offset + n)``, retried on transient failures."""
        buf = bytearray(n)
        self.read_into(offset, memoryview(buf))
        return bytes(buf)

    def read_into(self, offset: int, buf: memoryview) -> None:
        """Fills ``buf`` from ``offset``, retried on transient failures (``E_TRUNCATED`` past
        the end or when the store returns another length)."""
        n = len(buf)
        if self.closed:
            fail("E_USAGE", "the remote file is closed")
        if n == 0:
            return
        if offset < 0 or offset + n > self.pin.size:
            fail("E_TRUNCATED", f"range {offset}+{n} is past the end of the object ({self.pin.size} bytes)")
        got = self.retrying(lambda: self._fetch_into(offset, buf))
        with self._stats:
            self.bytes_fetched += got
        if got != n:
            fail("E_TRUNCATED", f"the store returned {got} bytes for a {n}-byte range: the object changed")

    def retrying(self, request: Callable[[], T]) -> T:
        """``request()``, repeated with backoff while it raises :class:`Transient` (at most
        ``retries`` more times, then ``E_IO``); each attempt counts in :attr:`requests`."""
        attempt = 0
        while True:
            with self._stats:
                self.requests += 1
            try:
                return request()
            except Transient as e:
                if attempt >= self._retries:
                    raise error("E_IO", f"cannot read the object after {attempt + 1} attempts: {e}") from None
                attempt += 1
                with self._stats:
                    self.retries += 1
                time.sleep(self._backoff * (2 ** (attempt - 1)))

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> RangeSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def changed(what: str) -> TensorSealError:
    """The error for an object replaced while it is being read."""
    return error("E_IO", f"the object changed while being read ({what}): open it again to read the new version")
