"""The safetensors layout (github.com/huggingface/safetensors, README "Format"), built and
parsed in memory so that a sealed safetensors file never exists as plaintext on disk.

    u64 little-endian N || N bytes of JSON header (space-padded to 8-byte alignment) || data

The header maps each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}``
(offsets relative to the data section) plus an optional ``"__metadata__"`` string map. The
parser is strict like the library's: the header size is capped, offsets must be in order,
match dtype × shape, and cover the data section with no gap or overlap.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import fail

CONTENT_TYPE = "application/vnd.safetensors"
MAX_HEADER_SIZE = 100_000_000
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lies: ``begin``/``end`` are offsets in the data section."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class Layout:
    """A parsed safetensors header.

    Attributes:
        tensors: name -> TensorInfo, in data order.
        metadata: the ``__metadata__`` map, or None.
        data_offset: where the data section starts (8 + header size).
        data_length: the data section's length.
    """

    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] | None
    data_offset: int
    data_length: int


def build_header(
    entries: Mapping[str, tuple[str, tuple[int, ...], int]], metadata: Mapping[str, str] | None
) -> tuple[bytes, list[str]]:
    """The 8-byte size and JSON header, and the order in which to write the tensors' bytes.

    Args:
        entries: name -> (dtype, shape, nbytes).
        metadata: optional string map stored as ``__metadata__``.

    Returns:
        (prefix bytes: size and padded header, tensor names in data order). As the safetensors
        library does, tensors are ordered by dtype size (largest first, for alignment), then
        name, and the header is padded with spaces to a multiple of 8 bytes.

    Example:
        >>> head, order = build_header({"w": ("F32", (2,), 8)}, None)
        >>> len(head) % 8, order
        (0, ['w'])
    """
    order = sorted(entries, key=lambda n: (-DTYPE_SIZES[entries[n][0]], n))
    header: dict[str, object] = {}
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            fail("E_USAGE", "safetensors metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name in order:
        if name == "__metadata__":
            fail("E_USAGE", "a tensor cannot be named __metadata__")
        dtype, shape, nbytes = entries[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    return len(text).to_bytes(8, "little") + text, order


def header_size(first8: bytes, total: int) -> int:
    """The JSON header size from the first 8 bytes, bounds-checked (``E_MALFORMED``)."""
    if len(first8) < 8 or total < 8:
        fail("E_MALFORMED", "safetensors data is shorter than its 8-byte header size")
    n = int.from_bytes(first8[:8], "little")
    if n > MAX_HEADER_SIZE or 8 + n > total:
        fail("E_MALFORMED", f"safetensors header size {n} is out of range")
    return n


def parse_header(header: bytes, total: int) -> Layout:
    """Parses and validates the JSON header.

    Args:
        header: the N header bytes (after the 8-byte size).
        total: the whole safetensors length (size + header + data).

    Returns:
        The layout.

    Example:
        >>> head, _ = build_header({"w": ("F32", (2,), 8)}, {"a": "b"})
        >>> parse_header(head[8:], len(head) + 8).tensors["w"].shape
        (2,)
    """
    data_offset = 8 + len(header)
    try:
        doc = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        fail("E_MALFORMED", "safetensors header is not valid JSON")
    if not isinstance(doc, dict):
        fail("E_MALFORMED", "safetensors header is not a JSON object")
    metadata = doc.pop("__metadata__", None)
    if metadata is not None and (
        not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
    ):
        fail("E_MALFORMED", "safetensors __metadata__ must map strings to strings")
    tensors: list[tuple[str, TensorInfo]] = []
    for name, info in doc.items():
        tensors.append((name, _tensor_info(name, info)))
    tensors.sort(key=lambda t: (t[1].begin, t[1].end))
    pos = 0
    for name, t in tensors:
        if t.begin != pos:
            fail("E_MALFORMED", f"safetensors tensor {name!r} does not start where the previous ends")
        pos = t.end
    if data_offset + pos != total:
        fail("E_MALFORMED", "safetensors tensors do not cover the data section exactly")
    return Layout(dict(tensors), metadata, data_offset, pos)


def _tensor_info(name: str, info: object) -> TensorInfo:
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        fail("E_MALFORMED", f"safetensors entry {name!r} is not a tensor description")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in DTYPE_SIZES:
        fail("E_UNSUPPORTED", f"safetensors dtype {dtype!r} of {name!r} is not supported")
    ok_shape = isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ok_offsets = (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    )
    if not ok_shape or not ok_offsets:
        fail("E_MALFORMED", f"safetensors entry {name!r} has a bad shape or data_offsets")
    if math.prod(shape) * DTYPE_SIZES[dtype] != offsets[1] - offsets[0]:
        fail("E_MALFORMED", f"safetensors tensor {name!r}: shape and dtype do not match its byte length")
    return TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])
