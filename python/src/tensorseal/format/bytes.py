"""Canonical big-endian encoder and strict decoder for the header structures (FORMAT.md §1)."""

from __future__ import annotations

import struct
from typing import NoReturn

from ..errors import fail

MAX_SAFE_INTEGER = 2**53 - 1


class ByteWriter:
    """Appends big-endian integers and length-prefixed fields; ``finish`` joins them."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, n: int) -> ByteWriter:
        self._parts.append(struct.pack(">B", n))
        return self

    def u16(self, n: int) -> ByteWriter:
        self._parts.append(struct.pack(">H", n))
        return self

    def u32(self, n: int) -> ByteWriter:
        self._parts.append(struct.pack(">I", n))
        return self

    def u64(self, n: int) -> ByteWriter:
        self._parts.append(struct.pack(">Q", n))
        return self

    def raw(self, b: bytes) -> ByteWriter:
        self._parts.append(bytes(b))
        return self

    def bytes16(self, b: bytes) -> ByteWriter:
        if len(b) > 0xFFFF:
            fail("E_MALFORMED", f"field of {len(b)} bytes exceeds 65535")
        return self.u16(len(b)).raw(b)

    def str8(self, s: str) -> ByteWriter:
        b = s.encode("utf-8")
        if len(b) > 0xFF:
            fail("E_MALFORMED", f"string of {len(b)} bytes exceeds 255")
        return self.u8(len(b)).raw(b)

    def str16(self, s: str) -> ByteWriter:
        return self.bytes16(s.encode("utf-8"))

    def finish(self) -> bytes:
        return b"".join(self._parts)


class ByteReader:
    """Bounds-checked reads; :meth:`end` rejects trailing bytes. Errors are ``E_MALFORMED``."""

    def __init__(self, buf: bytes | memoryview, what: str) -> None:
        self._buf = memoryview(buf)
        self._pos = 0
        self._what = what

    @property
    def offset(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return len(self._buf) - self._pos

    def u8(self) -> int:
        return self._take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self._take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self._take(4), "big")

    def u64(self) -> int:
        v = int.from_bytes(self._take(8), "big")
        if v > MAX_SAFE_INTEGER:
            self.bad(f"integer {v} exceeds 2^53-1")
        return v

    def bytes(self, n: int) -> bytes:
        return self._take(n)

    def bytes16(self) -> bytes:
        return self._take(self.u16())

    def str8(self) -> str:
        return self._utf8(self._take(self.u8()))

    def str16(self) -> str:
        return self._utf8(self.bytes16())

    def end(self) -> None:
        if self.remaining != 0:
            self.bad(f"{self.remaining} unexpected trailing bytes")

    def bad(self, why: str) -> NoReturn:
        fail("E_MALFORMED", f"{self._what}: {why} (at byte {self._pos})")

    def _take(self, n: int) -> bytes:
        if n > self.remaining:
            self.bad(f"needs {n} bytes, only {self.remaining} left")
        out = bytes(self._buf[self._pos : self._pos + n])
        self._pos += n
        return out

    def _utf8(self, b: bytes) -> str:
        try:
            # Strict: invalid UTF-8, surrogates and overlong forms are rejected, never replaced.
            return b.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            self.bad("string is not valid UTF-8")
