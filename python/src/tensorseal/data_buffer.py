"""The destination of a whole-file load: one buffer for the data section, on ordinary pages,
wiped if the load fails.

``load_file`` (NumPy and torch) decrypts every chunk straight into this buffer and hands out
views of it. If any chunk fails to authenticate (or a caller's check of the plaintext fails),
:meth:`DataBuffer.discard` drops every byte before the error propagates: the chunks that did
open are authenticated plaintext, but the load returned nothing, and the traceback's frames
(kept by debuggers and interactive sessions) must not hold a readable copy of them.
"""

from __future__ import annotations

import mmap

import numpy as np

MMAP_AT = 4 << 20
"""Buffers from this size on are a private anonymous mapping; smaller ones ``np.empty``."""


class DataBuffer:
    """``size`` writable bytes for one load.

    A large buffer is a private anonymous mapping: ``np.empty`` asks for transparent huge
    pages on large arrays, and where the kernel allocates them on demand (THP ``madvise``
    mode) each 2 MiB fault zeroes a huge page, measured 2-3x slower in system time than
    ordinary faults on a 512 MiB load (docs/BENCHMARKS.md). ``mmap``'s default, a shared
    mapping, would be shared memory: slower faults.

    Attributes:
        array: the bytes as a uint8 NumPy array (views of it keep the memory alive).
    """

    def __init__(self, size: int) -> None:
        self._map: mmap.mmap | None = None
        if size >= max(MMAP_AT, 1) and hasattr(mmap, "MAP_ANONYMOUS"):  # an empty mapping is an error
            self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            self.array: np.ndarray = np.frombuffer(self._map, dtype=np.uint8)
        else:
            self.array = np.empty(size, dtype=np.uint8)

    @property
    def mapped(self) -> bool:
        """Whether the bytes are an anonymous mapping (see the class note)."""
        return self._map is not None

    def discard(self) -> None:
        """Every byte reads zero from now on. A mapping drops its pages (``MADV_DONTNEED``:
        a private anonymous page reads back as zeros, and nothing is written to fault in the
        pages the load never reached); other buffers are overwritten."""
        if self._map is not None and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)
        else:
            self.array.fill(0)
