"""Recipient stanzas (FORMAT.md §3.1) and the two interfaces every key type implements.

A :class:`Recipient` wraps the file key into a stanza; an :class:`Identity` unwraps a stanza
into the file key, answering ``None`` for "not my stanza" and raising for a real failure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import fail
from .bytes import ByteReader, ByteWriter

MAX_STANZAS = 128
MAX_STANZA_FIELDS = 16
MAX_FIELD_SIZE = 4096
_TYPE_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: a type and up to 16 opaque fields."""

    type: str
    fields: tuple[bytes, ...]


@runtime_checkable
class Recipient(Protocol):
    """Wraps a file key for one recipient."""

    @property
    def id(self) -> str:
        """A printable name (never a secret)."""
        ...

    def wrap(self, file_key: bytes) -> Stanza:
        """Returns a stanza that wraps ``file_key`` for this recipient."""
        ...


@runtime_checkable
class Identity(Protocol):
    """Unwraps a file key from a stanza addressed to it."""

    @property
    def id(self) -> str:
        """A printable name (never a secret)."""
        ...

    def unwrap(self, stanza: Stanza) -> bytes | None:
        """The 32-byte file key, None for "not mine"; raises TensorSealError on failure."""
        ...


def encode_stanza(w: ByteWriter, s: Stanza) -> None:
    """Appends the framing of one stanza (type str8, u8 count, bytes16 fields)."""
    _check(s)
    w.str8(s.type).u8(len(s.fields))
    for f in s.fields:
        w.bytes16(f)


def decode_stanza(r: ByteReader) -> Stanza:
    """Reads one stanza strictly (``E_MALFORMED`` on any framing violation)."""
    t = r.str8()
    if not _TYPE_PATTERN.fullmatch(t):
        r.bad(f"stanza type {t!r} is not [a-z0-9-]")
    n = r.u8()
    if n > MAX_STANZA_FIELDS:
        r.bad(f"stanza has {n} fields, limit {MAX_STANZA_FIELDS}")
    fields = []
    for _ in range(n):
        f = r.bytes16()
        if len(f) > MAX_FIELD_SIZE:
            r.bad(f"stanza field of {len(f)} bytes exceeds 4096")
        fields.append(f)
    return Stanza(t, tuple(fields))


def _check(s: Stanza) -> None:
    if not _TYPE_PATTERN.fullmatch(s.type):
        fail("E_MALFORMED", f"bad stanza type {s.type!r}")
    if len(s.fields) > MAX_STANZA_FIELDS:
        fail("E_MALFORMED", "too many stanza fields")
    if any(len(f) > MAX_FIELD_SIZE for f in s.fields):
        fail("E_MALFORMED", "stanza field exceeds 4096 bytes")


def expect_fields(s: Stanza, sizes: Sequence[int | None]) -> tuple[bytes, ...]:
    """Exact field count and sizes for a known stanza type, else ``E_MALFORMED``.

    Args:
        s: the stanza.
        sizes: the expected size of each field, None for "any size".

    Returns:
        The fields.

    Example:
        >>> expect_fields(Stanza("kek", (b"n", b"1234")), [None, 4])
        (b'n', b'1234')
    """
    if len(s.fields) != len(sizes):
        fail("E_MALFORMED", f"{s.type} stanza has {len(s.fields)} fields, expected {len(sizes)}")
    for i, (f, want) in enumerate(zip(s.fields, sizes)):
        if want is not None and len(f) != want:
            fail("E_MALFORMED", f"{s.type} stanza field {i} is {len(f)} bytes, expected {want}")
    return s.fields
