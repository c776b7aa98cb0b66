"""Integrity-only files: the ``public`` tier (FORMAT.md §2.5).

A suite-2 file holds its plaintext with a GMAC tag per chunk and publishes its file key in its
only stanza (type ``public``), so anyone reads it with no identity. The header MAC, the
commitment and the chunk tags then detect corruption, truncation, reordering and mixing and bind
the bytes to the descriptor; authenticity against someone who can replace the whole file comes
from the sealed directory manifest's SHA-256 or a provenance signature. The suite is descriptor
bytes, so a reader always knows from the authenticated header whether a file is encrypted, and
refuses a public one where the caller requires encryption (``E_NOT_ENCRYPTED``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import fail
from .stanza import Stanza

SUITE_AEAD = 1
SUITE_PUBLIC = 2
PUBLIC_STANZA_TYPE = "public"
PUBLIC_TIER = "public"
_FILE_KEY_SIZE = 32


def public_stanza(file_key: bytes) -> Stanza:
    """The stanza of a public file: the file key itself, published."""
    if len(file_key) != _FILE_KEY_SIZE:
        fail("E_KEY", "file key must be 32 bytes")
    return Stanza(PUBLIC_STANZA_TYPE, (bytes(file_key),))


def check_suite_stanzas(suite: int, stanzas: Sequence[Stanza], where: str, code: str = "E_MALFORMED") -> None:
    """A suite-2 slot holds exactly one ``public`` stanza (one 32-byte field); suite 1 none."""
    if suite == SUITE_PUBLIC:
        if len(stanzas) != 1 or stanzas[0].type != PUBLIC_STANZA_TYPE:
            fail(code, f"{where}: a public (integrity-only) file holds exactly one public stanza")
        if len(stanzas[0].fields) != 1 or len(stanzas[0].fields[0]) != _FILE_KEY_SIZE:
            fail(code, f"{where}: a public stanza holds one 32-byte field")
    elif any(s.type == PUBLIC_STANZA_TYPE for s in stanzas):
        fail(code, f"{where}: an encrypted file must not hold a public stanza")


def is_public_suite(suite: int) -> bool:
    """Whether the payload is integrity-only (not encrypted)."""
    return suite == SUITE_PUBLIC


def refuse_unencrypted(suite: int) -> None:
    """``E_NOT_ENCRYPTED`` for a public file, where the caller requires encryption."""
    if is_public_suite(suite):
        fail(
            "E_NOT_ENCRYPTED",
            "a public (integrity-only, not encrypted) file where encryption is required: "
            "it was not sealed for your keys, so its content proves nothing about who wrote it",
        )
