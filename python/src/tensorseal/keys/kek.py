"""The ``kek`` stanza (FORMAT.md §3.2): the file key sealed under one version of a named KEK.

Name and version are bound as AAD, so a stanza cannot be relabelled to another key or version.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import fail, printable
from ..format.bytes import ByteWriter
from ..format.stanza import Stanza, expect_fields

KEK_STANZA = "kek"
_AAD_LABEL = b"tensorseal.dev/v1 kek\x00"
MAX_NAME_BYTES = 128


def _aad(name: bytes, version: int) -> bytes:
    return ByteWriter().raw(_AAD_LABEL).bytes16(name).u32(version).finish()


def wrap_kek(name: str, version: int, kek: bytes, file_key: bytes, nonce: bytes | None = None) -> Stanza:
    """A ``kek`` stanza wrapping ``file_key`` under KEK (name, version).

    Args:
        name: KEK name, 1..128 UTF-8 bytes.
        version: KEK version, 1..2^32-1.
        kek: the 32-byte KEK material.
        file_key: the 32-byte file key.
        nonce: fixed 12-byte nonce, for deterministic test vectors only.

    Returns:
        The stanza.

    Example:
        >>> wrap_kek("default", 1, bytes(32), bytes(32)).type
        'kek'
    """
    if len(kek) != 32:
        fail("E_KEY", "KEK must be 32 bytes")
    try:
        name_bytes = name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 form
        fail("E_USAGE", "KEK name is not valid Unicode text")
    if not 1 <= len(name_bytes) <= MAX_NAME_BYTES:
        fail("E_USAGE", "KEK name must be 1..128 bytes")
    if not 1 <= version <= 0xFFFFFFFF:
        fail("E_USAGE", f"KEK version {version} must be an integer from 1 to 2^32-1")
    # Random 96-bit nonce: each KEK version wraps far fewer than 2^32 file keys.
    nonce = os.urandom(12) if nonce is None else bytes(nonce)
    wrapped = AESGCM(bytes(kek)).encrypt(nonce, bytes(file_key), _aad(name_bytes, version))
    return Stanza(KEK_STANZA, (name_bytes, version.to_bytes(4, "big"), nonce, wrapped))


def parse_kek_stanza(s: Stanza) -> tuple[str, int, bytes, bytes]:
    """(name, version, nonce, wrapped) of a ``kek`` stanza; ``E_MALFORMED`` if misframed."""
    name, version, nonce, wrapped = expect_fields(s, [None, 4, 12, 48])
    if not 1 <= len(name) <= MAX_NAME_BYTES:
        fail("E_MALFORMED", "kek stanza name must be 1..128 bytes")
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        fail("E_MALFORMED", "kek stanza name is not valid UTF-8")
    return text, int.from_bytes(version, "big"), nonce, wrapped


def unwrap_kek(s: Stanza, kek: bytes) -> bytes:
    """The file key of a ``kek`` stanza; ``E_DECRYPT`` if ``kek`` does not open it."""
    name, version, nonce, wrapped = parse_kek_stanza(s)
    try:
        return AESGCM(bytes(kek)).decrypt(nonce, wrapped, _aad(s.fields[0], version))
    except InvalidTag:
        fail(
            "E_DECRYPT",
            f"kek stanza for {printable(name)} v{version} does not open with this key (another keystore, or a modified header)",
        )


class KekRecipient:
    """Wraps file keys under one KEK version held in memory.

    Example:
        >>> KekRecipient("default", 1, bytes(32)).id
        'kek:default'
    """

    def __init__(self, name: str, version: int, kek: bytes, *, nonce: bytes | None = None) -> None:
        if len(kek) != 32:
            fail("E_KEY", "KEK must be 32 bytes")
        self.name, self.version, self._kek, self._nonce = name, version, bytes(kek), nonce

    @property
    def id(self) -> str:
        return f"kek:{self.name}"

    def wrap(self, file_key: bytes) -> Stanza:
        return wrap_kek(self.name, self.version, self._kek, file_key, self._nonce)


class KekIdentity:
    """Unwraps ``kek`` stanzas whose (name, version) ``lookup`` knows; None means "not mine".

    Args:
        lookup: (name, version) -> 32-byte material, or None.
        id: a printable name.

    Example:
        >>> ident = KekIdentity(lambda n, v: bytes(32) if (n, v) == ("default", 1) else None)
        >>> ident.unwrap(wrap_kek("default", 1, bytes(32), b"k" * 32))
        b'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk'
    """

    def __init__(self, lookup: Callable[[str, int], bytes | None], id: str = "kek") -> None:
        self._lookup = lookup
        self._id = id

    @classmethod
    def single(cls, name: str, version: int, kek: bytes) -> KekIdentity:
        """An identity holding exactly one KEK version."""
        material = bytes(kek)
        if len(material) != 32:
            fail("E_KEY", "KEK must be 32 bytes")
        return cls(lambda n, v: material if (n, v) == (name, version) else None, f"kek:{name}")

    @property
    def id(self) -> str:
        return self._id

    def unwrap(self, s: Stanza) -> bytes | None:
        if s.type != KEK_STANZA:
            return None
        name, version, _, _ = parse_kek_stanza(s)
        kek = self._lookup(name, version)
        return None if kek is None else unwrap_kek(s, kek)
