"""Faulting in a fresh destination's pages with one system call per read instead of one page
fault per 4 KiB page.

A whole-file load writes every byte of a freshly mapped buffer; each first write to a page
traps into the kernel, which zeroes the page and maps it. ``madvise(MADV_POPULATE_WRITE)``
(Linux >= 5.14) does the same work for a whole range in one call, without the trap and the
page-table lock per page: measured 5-9% less CPU for a 1 GiB load (docs/BENCHMARKS.md).
Each worker populates the part it is about to decrypt into, so the pages are still in cache
when the plaintext lands, and the workers fault in parallel (ctypes calls release the GIL).

Only an optimisation: where the call is missing or refused (other systems, older kernels,
a read-only or file-backed buffer), nothing happens and the writes fault the pages as before.
"""

from __future__ import annotations

import mmap
import sys
from collections.abc import Callable

MADV_POPULATE_WRITE = 23
"""From linux/mman.h (Python's mmap module names it only from 3.14 on)."""

Populate = Callable[[int, int], None]


def _noop(lo: int, hi: int) -> None:
    return None


_madvise: Callable[[int, int, int], int] | None = None


def _libc_madvise() -> Callable[[int, int, int], int] | None:
    global _madvise
    if _madvise is None and sys.platform.startswith("linux"):
        import ctypes

        try:
            f = ctypes.CDLL(None, use_errno=True).madvise
        except (OSError, AttributeError):  # pragma: no cover - a libc without madvise
            return None
        f.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        f.restype = ctypes.c_int
        _madvise = f
    return _madvise


def populator(out: memoryview) -> Populate:
    """``populate(lo, hi)`` faults in the whole pages of ``out[lo:hi]`` (a no-op where that is
    not possible); the partial pages at either end are left to the writes."""
    madvise = _libc_madvise()
    if madvise is None or out.readonly or not out.contiguous or len(out) < mmap.PAGESIZE:
        return _noop
    import ctypes

    base = ctypes.addressof(ctypes.c_char.from_buffer(out))
    page = mmap.PAGESIZE

    def populate(lo: int, hi: int) -> None:
        start = -(-(base + lo) // page) * page
        end = (base + hi) // page * page
        if end > start:
            madvise(start, end - start, MADV_POPULATE_WRITE)  # a refusal changes nothing

    return populate
