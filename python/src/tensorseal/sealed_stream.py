"""A sealed file read front to back as a binary stream, a window of chunks at a time.

:class:`SealedStream` hands out plaintext only after its chunk has authenticated. Each window
(8 MiB by default, whole chunks) is fetched and decrypted by :meth:`SealedFile.read_range`, on
the decryption pool's threads, so a remote shard streams with parallel ranged reads while
memory stays bounded by the window and the pool's scratch buffers.
"""

from __future__ import annotations

import io

from .errors import fail
from .reader import SealedFile

DEFAULT_WINDOW = 8 << 20


class SealedStream(io.RawIOBase):
    """Read-only, non-seekable stream over the plaintext of ``sealed`` (closed with it).

    Example:
        >>> with SealedStream(SealedFile("shard.tar.tseal", ids)) as s:  # doctest: +SKIP
        ...     tarfile.open(fileobj=io.BufferedReader(s), mode="r|")
    """

    def __init__(self, sealed: SealedFile, window: int = DEFAULT_WINDOW) -> None:
        super().__init__()
        if not isinstance(window, int) or window < 1:
            fail("E_USAGE", f"window must be a positive number of bytes, got {window!r}")
        c = sealed.chunk_size
        self._sealed = sealed
        self._window = max(c, window // c * c)
        self._pos = 0  # plaintext offset of _buf[0]
        self._buf = memoryview(b"")
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        out = memoryview(b).cast("B")
        if self._at == len(self._buf):
            self._pos += len(self._buf)
            left = self._sealed.plaintext_length - self._pos
            if left <= 0:
                return 0
            self._buf = self._sealed.read_range(self._pos, min(self._window, left))
            self._at = 0
        n = min(len(out), len(self._buf) - self._at)
        out[:n] = self._buf[self._at : self._at + n]
        self._at += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._buf = memoryview(b"")
            self._sealed.close()
        super().close()
