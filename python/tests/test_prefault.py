"""tensorseal.prefault: one call faults in a destination's whole pages before decryption
writes them, and never changes a byte; where it cannot, it does nothing."""

from __future__ import annotations

import mmap
import resource
import sys

import numpy as np
import pytest

from tensorseal.prefault import populator

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_POPULATE_WRITE is Linux's")


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@linux
def test_populated_pages_take_no_fault_when_written() -> None:
    size, page = 16 << 20, mmap.PAGESIZE
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    a = np.frombuffer(m, dtype=np.uint8)
    view = memoryview(m)
    populator(view[100 : 8 << 20])(0, (8 << 20) - 100)  # from byte 100: whole pages 1..2047
    before = minor_faults()
    a[page : 8 << 20 : page] = 1  # the pages it populated
    assert minor_faults() - before < 16  # a few at most (the interpreter's own), not 2047
    before = minor_faults()
    a[(8 << 20) + page :: page] = 1  # pages past the range still fault one by one
    assert minor_faults() - before >= 2000
    del a, view
    m.close()


def test_contents_are_never_changed() -> None:
    buf = bytearray(np.random.default_rng(1).integers(0, 256, 5 * mmap.PAGESIZE + 77, dtype=np.uint8).tobytes())
    want = bytes(buf)
    view = memoryview(buf)
    populator(view[3:])(0, len(buf) - 3)
    populator(view)(10, 20)  # less than a page: nothing to do
    assert bytes(buf) == want


def test_read_only_or_small_buffers_are_left_alone() -> None:
    ro = populator(memoryview(bytes(1 << 20)))
    ro(0, 1 << 20)  # no error, nothing to write to
    small = populator(memoryview(bytearray(100)))
    small(0, 100)
    assert ro.__name__ == small.__name__ == "_noop"
