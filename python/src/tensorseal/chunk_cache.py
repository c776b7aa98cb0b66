"""A bounded cache of authenticated plaintext chunks, per open sealed file.

Random access reads whole chunks but often needs only part of one: the safetensors header
shares chunk 0 with the first tensors, and neighbouring tensors share the chunk where one
ends and the next begins. Keeping those chunks lets a handle decrypt each chunk once when a
caller reads every tensor, instead of once per tensor that touches it.

Only chunks that opened successfully are put here (a chunk whose tag failed is never stored,
so it fails again on every read). Chunks are immutable ``bytes``. The bound is in plaintext
bytes; the least recently used chunks are dropped first; a bound below one chunk caches
nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .errors import fail

DEFAULT_CACHE_BYTES = 32 << 20
"""32 MiB: 32 chunks of the default 1 MiB, 2048 of 16 KiB."""


class ChunkCache:
    """Least-recently-used authenticated chunks, at most ``limit`` plaintext bytes in all.

    Example:
        >>> c = ChunkCache(10)
        >>> c.put(0, b"12345"); c.put(1, b"67890"); c.put(2, b"abc")
        >>> c.get(0) is None, c.get(2)
        (True, b'abc')
    """

    def __init__(self, limit: int = DEFAULT_CACHE_BYTES) -> None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            fail("E_USAGE", f"cache_bytes must be an integer >= 0, got {limit!r}")
        self.limit = limit
        self._held = 0
        self._chunks: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, index: int) -> bytes | None:
        with self._lock:
            chunk = self._chunks.get(index)
            if chunk is not None:
                self._chunks.move_to_end(index)
            return chunk

    def put(self, index: int, chunk: bytes) -> None:
        """Stores an *authenticated* chunk (callers put only what opened successfully)."""
        if len(chunk) > self.limit:
            return
        with self._lock:
            old = self._chunks.pop(index, None)
            if old is not None:
                self._held -= len(old)
            self._chunks[index] = chunk
            self._held += len(chunk)
            while self._held > self.limit:
                _, dropped = self._chunks.popitem(last=False)
                self._held -= len(dropped)

    @property
    def held_bytes(self) -> int:
        return self._held

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._held = 0
