"""The descriptor (FORMAT.md §2.2): immutable public facts about the payload.

Its canonical bytes are bound into the payload derivation and the header MAC, so editing a
single bit makes the file unopenable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import fail
from .bytes import ByteReader, ByteWriter
from .metadata import metadata_of, validate_metadata_labels

SUITE_COBBLESTONE_AES256GCM_SHA512 = 1
#: Integrity only (the ``public`` tier, FORMAT.md §2.5): GMAC chunk tags, plaintext in the file.
SUITE_PUBLIC_INTEGRITY = 2
MAX_DESCRIPTOR_SIZE = 65536
MAX_MAP_ENTRIES = 64
MAX_CONTENT_TYPE = 255
MIN_CHUNK_LOG2 = 14
MAX_CHUNK_LOG2 = 24
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_FLAG_LENGTH_KNOWN = 1


@dataclass(frozen=True)
class Descriptor:
    """Public, authenticated facts about one sealed payload.

    Attributes:
        chunk_size: plaintext bytes per chunk, a power of two from 16 KiB to 16 MiB.
        plaintext_length: the plaintext length, or None for a stream of unknown length.
        content_type: e.g. ``"application/vnd.safetensors"``.
        context: encryption context, bound into the payload derivation.
        labels: public labels (informational, except the reserved ``tensorseal:`` keys).
        tier, purpose, owner: the governance metadata the labels record (FORMAT.md §2.2.1),
            or None; authenticated like every descriptor byte.
        suite: 1 (Cobblestone payload, AES-256-GCM, HKDF-SHA-512), or 2 for a public
            (integrity-only, not encrypted) file of tier ``public`` (FORMAT.md §2.5).
    """

    chunk_size: int
    plaintext_length: int | None
    content_type: str = DEFAULT_CONTENT_TYPE
    context: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    suite: int = SUITE_COBBLESTONE_AES256GCM_SHA512

    @property
    def tier(self) -> str | None:
        """The sensitivity tier (``tensorseal:tier`` label), or None."""
        return metadata_of(self.labels).get("tier")

    @property
    def purpose(self) -> str | None:
        """The purpose (``tensorseal:purpose`` label), or None."""
        return metadata_of(self.labels).get("purpose")

    @property
    def owner(self) -> str | None:
        """The owner (``tensorseal:owner`` label), or None."""
        return metadata_of(self.labels).get("owner")

    @property
    def encrypted(self) -> bool:
        """False for a public (suite 2, integrity-only) file: readable by anyone."""
        return self.suite != SUITE_PUBLIC_INTEGRITY


def chunk_log2(chunk_size: int) -> int:
    """log2 of a valid chunk size; ``E_UNSUPPORTED`` for any other size."""
    log2 = chunk_size.bit_length() - 1
    if chunk_size <= 0 or 1 << log2 != chunk_size or not MIN_CHUNK_LOG2 <= log2 <= MAX_CHUNK_LOG2:
        fail("E_UNSUPPORTED", f"chunk size {chunk_size} is not a power of two from 16 KiB to 16 MiB")
    return log2


def encode_descriptor(d: Descriptor) -> bytes:
    """Canonical descriptor bytes.

    Args:
        d: the descriptor; map keys are sorted by their UTF-8 bytes.

    Returns:
        The encoding that readers accept (and the only one).

    Example:
        >>> encode_descriptor(Descriptor(chunk_size=16384, plaintext_length=0)).hex()[:8]
        '00010e01'
    """
    _validate(d)
    w = ByteWriter().u16(d.suite).u8(chunk_log2(d.chunk_size))
    w.u8(0 if d.plaintext_length is None else _FLAG_LENGTH_KNOWN)
    w.u64(d.plaintext_length or 0).str16(d.content_type)
    _write_map(w, d.context)
    _write_map(w, d.labels)
    out = w.finish()
    if len(out) > MAX_DESCRIPTOR_SIZE:
        fail("E_MALFORMED", "descriptor exceeds 64 KiB")
    return out


def decode_descriptor(buf: bytes) -> Descriptor:
    """Strictly decodes descriptor bytes (``E_MALFORMED``, or ``E_UNSUPPORTED`` for a suite).

    Args:
        buf: exactly the descriptor bytes.

    Returns:
        The descriptor.

    Example:
        >>> decode_descriptor(bytes.fromhex("00010e01" + "00" * 8 + "0000" * 3)).chunk_size
        16384
    """
    r = ByteReader(buf, "descriptor")
    suite = r.u16()
    if suite not in (SUITE_COBBLESTONE_AES256GCM_SHA512, SUITE_PUBLIC_INTEGRITY):
        fail("E_UNSUPPORTED", f"suite {suite} is not supported (this reader knows suites 1 and 2)")
    log2 = r.u8()
    if not MIN_CHUNK_LOG2 <= log2 <= MAX_CHUNK_LOG2:
        r.bad(f"chunk size 2^{log2} out of range")
    flags = r.u8()
    if flags & ~_FLAG_LENGTH_KNOWN:
        r.bad(f"unknown flags 0x{flags:x}")
    length = r.u64()
    if not flags & _FLAG_LENGTH_KNOWN and length != 0:
        r.bad("length must be 0 when not known")
    content_type = r.str16()
    context = _read_map(r, "context")
    labels = _read_map(r, "labels")
    r.end()
    d = Descriptor(
        chunk_size=1 << log2,
        plaintext_length=length if flags & _FLAG_LENGTH_KNOWN else None,
        content_type=content_type,
        context=context,
        labels=labels,
        suite=suite,
    )
    _validate(d)
    return d


def _validate(d: Descriptor) -> None:
    if d.suite not in (SUITE_COBBLESTONE_AES256GCM_SHA512, SUITE_PUBLIC_INTEGRITY):
        fail("E_UNSUPPORTED", f"suite {d.suite} is not supported")
    if len(d.content_type.encode("utf-8")) > MAX_CONTENT_TYPE:
        fail("E_MALFORMED", f"content type exceeds {MAX_CONTENT_TYPE} bytes")
    for name, m in (("context", d.context), ("labels", d.labels)):
        if len(m) > MAX_MAP_ENTRIES:
            fail("E_MALFORMED", f"{name} has more than {MAX_MAP_ENTRIES} entries")
        for k, v in m.items():
            if not isinstance(k, str) or not isinstance(v, str):
                fail("E_USAGE", f"{name} keys and values must be strings")
            if k == "":
                fail("E_MALFORMED", f"{name} has an empty key")
    validate_metadata_labels(d.labels)
    # An unencrypted file always says so in its tier too (FORMAT.md §2.5).
    if d.suite == SUITE_PUBLIC_INTEGRITY and d.labels.get("tensorseal:tier") != "public":
        fail("E_MALFORMED", "a suite-2 (integrity-only) file must carry tensorseal:tier = public")


def _write_map(w: ByteWriter, m: Mapping[str, str]) -> None:
    keys = sorted(m, key=lambda k: k.encode("utf-8"))
    w.u16(len(keys))
    for k in keys:
        w.str16(k).str16(m[k])


def _read_map(r: ByteReader, name: str) -> dict[str, str]:
    n = r.u16()
    if n > MAX_MAP_ENTRIES:
        r.bad(f"{name} has {n} entries, limit {MAX_MAP_ENTRIES}")
    out: dict[str, str] = {}
    prev: bytes | None = None
    for _ in range(n):
        k = r.str16()
        kb = k.encode("utf-8")
        if prev is not None and prev >= kb:
            r.bad(f"{name} keys not strictly ascending")
        prev = kb
        out[k] = r.str16()
    return out
