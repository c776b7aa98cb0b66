"""The .tseal header (FORMAT.md §2): prefix, descriptor and two fixed-size header slots.

Parsing needs no key: it classifies both slots (empty, damaged, intact), picks the intact slot
with the highest generation, and leaves the header MAC to :func:`verify_header`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import fail
from .bytes import ByteReader, ByteWriter
from .descriptor import MAX_DESCRIPTOR_SIZE, Descriptor, decode_descriptor
from .filekey import HEADER_MAC_SIZE, check_header_mac, compute_header_mac
from .public import check_suite_stanzas
from .stanza import MAX_STANZAS, Stanza, decode_stanza, encode_stanza

MAGIC = b"\x89TSEAL\r\n"
FORMAT_VERSION = 1
PREFIX_SIZE = 20
SLOT_ALIGN = 4096
MIN_SLOT_CAPACITY = 4096
MAX_SLOT_CAPACITY = 1 << 20
DEFAULT_SLOT_CAPACITY = 8192
_CHECKSUM_SIZE = 32
_SLOT_OVERHEAD = 4 + HEADER_MAC_SIZE + _CHECKSUM_SIZE


@dataclass(frozen=True)
class Prefix:
    """The 20-byte prefix's variable fields; ``header_length`` is the payload offset."""

    descriptor_length: int
    slot_capacity: int

    @property
    def header_length(self) -> int:
        return PREFIX_SIZE + self.descriptor_length + 2 * self.slot_capacity

    def slot_offset(self, slot: int) -> int:
        return PREFIX_SIZE + self.descriptor_length + slot * self.slot_capacity


@dataclass(frozen=True)
class ParsedHeader:
    """A parsed (not yet authenticated) header.

    Attributes:
        prefix: descriptor length and slot capacity.
        prefix_bytes: the 20 prefix bytes (MAC input).
        descriptor_bytes: the descriptor bytes (MAC and payload derivation input).
        descriptor: the decoded descriptor.
        active_slot: 0 or 1.
        generation: the active slot's generation.
        stanzas: the active slot's stanzas, in order.
        stale_slot: True when the other slot holds an intact older generation.
        body_bytes: the active slot's body (MAC input).
        mac: the stored header MAC.
    """

    prefix: Prefix
    prefix_bytes: bytes
    descriptor_bytes: bytes
    descriptor: Descriptor
    active_slot: Literal[0, 1]
    generation: int
    stanzas: tuple[Stanza, ...]
    stale_slot: bool
    body_bytes: bytes
    mac: bytes

    @property
    def header_length(self) -> int:
        return self.prefix.header_length


def _check_slot_capacity(c: int) -> None:
    if c < MIN_SLOT_CAPACITY or c > MAX_SLOT_CAPACITY or c % SLOT_ALIGN:
        fail("E_MALFORMED", f"slot capacity {c} must be a multiple of 4096 from 4 KiB to 1 MiB")


def encode_prefix(descriptor_length: int, slot_capacity: int) -> bytes:
    """The 20-byte prefix."""
    _check_slot_capacity(slot_capacity)
    w = ByteWriter().raw(MAGIC).u8(FORMAT_VERSION).raw(bytes(3))
    return w.u32(descriptor_length).u32(slot_capacity).finish()


def check_magic(head: bytes) -> None:
    """``E_NOT_TSEAL`` unless ``head`` starts like a .tseal file; ``E_TRUNCATED`` if too short.

    Args:
        head: the first bytes of the file (any length).
    """
    n = min(len(head), len(MAGIC))
    if head[:n] != MAGIC[:n]:
        fail("E_NOT_TSEAL", "not a .tseal file (magic bytes do not match)")
    if len(head) < PREFIX_SIZE:
        fail("E_TRUNCATED", "file ends inside the header")


def parse_prefix(buf: bytes) -> Prefix:
    """Checks magic, version, reserved bytes and ranges, in the spec's order (§2.1)."""
    check_magic(buf[:PREFIX_SIZE])
    r = ByteReader(buf[:PREFIX_SIZE], "prefix")
    r.bytes(len(MAGIC))
    version = r.u8()
    if version != FORMAT_VERSION:
        fail("E_UNSUPPORTED", f"format version {version} is not supported (this reader knows 1)")
    if r.bytes(3) != bytes(3):
        r.bad("reserved bytes must be zero")
    descriptor_length = r.u32()
    if descriptor_length == 0 or descriptor_length > MAX_DESCRIPTOR_SIZE:
        r.bad(f"descriptor length {descriptor_length} out of range")
    slot_capacity = r.u32()
    _check_slot_capacity(slot_capacity)
    return Prefix(descriptor_length, slot_capacity)


def encode_slot_body(generation: int, stanzas: Sequence[Stanza]) -> bytes:
    """generation u64, stanza count u16, stanzas; ``E_USAGE`` for 0 or > 128 stanzas."""
    if not stanzas:
        fail("E_USAGE", "a file needs at least one recipient")
    if len(stanzas) > MAX_STANZAS:
        fail("E_USAGE", f"{len(stanzas)} stanzas exceed the limit of {MAX_STANZAS}")
    w = ByteWriter().u64(generation).u16(len(stanzas))
    for s in stanzas:
        encode_stanza(w, s)
    return w.finish()


def encode_slot(
    file_key: bytes,
    prefix: bytes,
    descriptor: bytes,
    generation: int,
    stanzas: Sequence[Stanza],
    capacity: int,
) -> bytes:
    """A full slot: bodyLength, body, MAC, checksum, zero padding to ``capacity``."""
    # Seal and rewrap alike: only a public file publishes its key, as its only stanza (§2.5).
    check_suite_stanzas(decode_descriptor(descriptor).suite, stanzas, "writing the header", "E_USAGE")
    body = encode_slot_body(generation, stanzas)
    if len(body) + _SLOT_OVERHEAD > capacity:
        fail("E_USAGE", f"header slot is full ({len(body)} bytes of stanzas, capacity {capacity})")
    mac = compute_header_mac(file_key, (prefix, descriptor, body))
    head = len(body).to_bytes(4, "big") + body + mac
    slot = head + hashlib.sha256(head).digest()
    return slot + bytes(capacity - len(slot))


def _read_slot(slot: bytes, index: int) -> tuple[str, int, tuple[Stanza, ...], bytes, bytes]:
    """("empty"|"damaged"|"intact", generation, stanzas, body, mac)."""
    if not any(slot):
        return ("empty", 0, (), b"", b"")
    body_length = int.from_bytes(slot[:4], "big")
    if body_length == 0 or body_length + _SLOT_OVERHEAD > len(slot):
        return ("damaged", 0, (), b"", b"")
    sum_at = 4 + body_length + HEADER_MAC_SIZE
    if hashlib.sha256(slot[:sum_at]).digest() != slot[sum_at : sum_at + _CHECKSUM_SIZE]:
        return ("damaged", 0, (), b"", b"")
    # From here the slot was completely written by a writer: any violation is an error.
    body = slot[4 : 4 + body_length]
    r = ByteReader(body, f"header slot {index}")
    generation = r.u64()
    if generation == 0:
        r.bad("generation must be at least 1")
    count = r.u16()
    if count == 0 or count > MAX_STANZAS:
        r.bad(f"stanza count {count} out of range 1..128")
    stanzas = tuple(decode_stanza(r) for _ in range(count))
    r.end()
    if any(slot[sum_at + _CHECKSUM_SIZE :]):
        fail("E_MALFORMED", f"header slot {index}: padding must be zero")
    return ("intact", generation, stanzas, body, slot[4 + body_length : sum_at])


def parse_header(buf: bytes) -> ParsedHeader:
    """Parses a whole header (no key needed).

    Args:
        buf: at least the header's bytes (prefix, descriptor, both slots); more is ignored.

    Returns:
        The parsed header with the active slot selected (FORMAT.md §2.3).

    Example:
        >>> parse_header(open("model.tseal", "rb").read(65536)).descriptor.chunk_size  # doctest: +SKIP
        1048576
    """
    prefix = parse_prefix(buf)
    if len(buf) < prefix.header_length:
        fail("E_TRUNCATED", "file ends inside the header")
    descriptor_bytes = bytes(buf[PREFIX_SIZE : PREFIX_SIZE + prefix.descriptor_length])
    descriptor = decode_descriptor(descriptor_bytes)
    slots = []
    for i in (0, 1):
        at = prefix.slot_offset(i)
        state = _read_slot(bytes(buf[at : at + prefix.slot_capacity]), i)
        if state[0] == "intact":
            slots.append((i, state))
    if not slots:
        fail("E_MALFORMED", "no intact header slot (the header is damaged)")
    if len(slots) == 2 and slots[0][1][1] == slots[1][1][1]:
        fail("E_MALFORMED", "both header slots claim the same generation")
    # Both intact slots follow the suite's stanza rules (§2.5): a stale slot can become active.
    for i, state in slots:
        check_suite_stanzas(descriptor.suite, state[2], f"header slot {i}")
    index, (_, generation, stanzas, body, mac) = max(slots, key=lambda s: s[1][1])
    return ParsedHeader(
        prefix=prefix,
        prefix_bytes=bytes(buf[:PREFIX_SIZE]),
        descriptor_bytes=descriptor_bytes,
        descriptor=descriptor,
        active_slot=0 if index == 0 else 1,
        generation=generation,
        stanzas=stanzas,
        stale_slot=len(slots) == 2,
        body_bytes=body,
        mac=mac,
    )


def verify_header(h: ParsedHeader, file_key: bytes) -> None:
    """Checks the header MAC with a candidate file key (``E_HEADER_MAC`` on mismatch)."""
    check_header_mac(file_key, (h.prefix_bytes, h.descriptor_bytes, h.body_bytes), h.mac)


def encode_header(
    file_key: bytes,
    descriptor_bytes: bytes,
    stanzas: Sequence[Stanza],
    slot_capacity: int = DEFAULT_SLOT_CAPACITY,
) -> bytes:
    """A new header: prefix, descriptor, slot 0 at generation 1, slot 1 all zero."""
    prefix = encode_prefix(len(descriptor_bytes), slot_capacity)
    slot0 = encode_slot(file_key, prefix, descriptor_bytes, 1, stanzas, slot_capacity)
    return prefix + descriptor_bytes + slot0 + bytes(slot_capacity)
