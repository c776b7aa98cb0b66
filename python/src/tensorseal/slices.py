"""``safe_open(...).get_slice(name)``: part of one tensor, as safetensors' ``PySafeSlice``.

Indexing selects rows of the first dimension (an int, a slice with a positive step, or
``...``); only the bytes of the rows from the first selected to the last are read, so only the
chunks that cover them are decrypted. Indices on the other dimensions (ints and slices, as
the safetensors library takes) are applied in memory to those rows.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import fail
from .st_format import DTYPE_SIZES, TensorInfo

if TYPE_CHECKING:
    from .safetensors import SealedSafetensors

Empty = Callable[[str, tuple[int, ...]], tuple[Any, memoryview]]
"""``empty(dtype, shape)`` -> (new array or tensor, a writable byte view of it)."""


class SealedSlice:
    """A tensor of a sealed safetensors file, sliced before it is decrypted.

    Example:
        >>> with safe_open("model.tseal", framework="pt", identities=[ks]) as f:  # doctest: +SKIP
        ...     sl = f.get_slice("embed.weight")
        ...     rows = sl[1000:2000]           # decrypts the chunks of rows 1000..1999 only
        ...     sl.get_shape(), sl.get_dtype()
        ([32000, 4096], 'BF16')
    """

    def __init__(self, file: SealedSafetensors, name: str, empty: Empty, finish: Callable[[Any], Any]) -> None:
        self._file = file
        self._name = name
        self._info: TensorInfo = file._info(name)
        self._empty = empty
        self._finish = finish

    def get_shape(self) -> list[int]:
        """The tensor's shape, as the safetensors library returns it."""
        return list(self._info.shape)

    def get_dtype(self) -> str:
        """The safetensors dtype name (``"F32"``, ``"BF16"``...)."""
        return self._info.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self._info.shape

    @property
    def dtype(self) -> str:
        return self._info.dtype

    def __getitem__(self, key: Any) -> Any:
        with self._file.naming():
            return self._finish(self._select(key if isinstance(key, tuple) else (key,)))

    def _select(self, key: tuple[Any, ...]) -> Any:
        for k in key:
            if not (k is Ellipsis or isinstance(k, slice) or _is_int(k)):
                fail("E_USAGE", f"slicing {self._name!r}: only ints, slices and ... are supported, got {k!r}")
        shape = self._info.shape
        if sum(k is not Ellipsis for k in key) > len(shape):
            fail("E_USAGE", f"slicing {self._name!r}: more indices than its {len(shape)} dimensions")
        if not shape:
            return _compact(self._rows(0, 1), key)
        n = shape[0]
        head = key[0] if key else Ellipsis
        if head is Ellipsis:
            return _compact(self._rows(0, n), key)
        if isinstance(head, slice):
            if head.step is not None and operator.index(head.step) <= 0:
                fail("E_USAGE", f"slicing {self._name!r}: the step must be positive, got {head.step}")
            start, stop, step = head.indices(n)
            count = len(range(start, stop, step))
            block = self._rows(start, start + (count - 1) * step + 1 if count else start)
            return _compact(block, (slice(None, None, step), *key[1:]))
        i = operator.index(head)
        if not -n <= i < n:
            fail("E_USAGE", f"slicing {self._name!r}: index {i} is out of bounds for dimension 0 of size {n}")
        return _compact(self._rows(i % n, i % n + 1), (0, *key[1:]))

    def _rows(self, first: int, stop: int) -> Any:
        """Rows ``first .. stop - 1`` of dimension 0 (the whole 0-d tensor for ``0, 1``)."""
        t = self._info
        row = math.prod(t.shape[1:]) * DTYPE_SIZES[t.dtype]
        out, view = self._empty(t.dtype, (stop - first, *t.shape[1:]) if t.shape else ())
        if len(view):
            self._file.sealed.read_range(self._file.layout.data_offset + t.begin + first * row, len(view), view)
        return out


def _is_int(k: object) -> bool:
    if isinstance(k, bool):
        return False
    try:
        operator.index(k)
    except TypeError:
        return False
    return True


def _compact(block: Any, key: tuple[Any, ...]) -> Any:
    """``block[key]``, copied unless it is all of ``block``: a result never keeps the other
    rows read alive."""
    x = block[key]
    if hasattr(x, "is_contiguous"):  # torch
        return x if x.numel() == block.numel() and x.is_contiguous() else x.clone(memory_format=_contiguous())
    import numpy as np

    x = np.asarray(x)
    return x if x.size == block.size and x.flags.c_contiguous else x.copy()


def _contiguous() -> Any:
    import torch

    return torch.contiguous_format
