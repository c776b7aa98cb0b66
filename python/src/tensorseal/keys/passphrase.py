"""The ``passphrase`` stanza (FORMAT.md §3.3): the file key under a scrypt-stretched key.

Readers refuse logN outside 10..20 (``E_UNSUPPORTED``) before running scrypt, so a hostile
header cannot make the reader spend minutes or gigabytes.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import fail
from ..format.stanza import Stanza, expect_fields
from .scrypt import MAX_WORK_FACTOR, MIN_WORK_FACTOR, passphrase_bytes, scrypt

PASSPHRASE_STANZA = "passphrase"
SALT_SIZE = 16
DEFAULT_WORK_FACTOR = 18
_SALT_LABEL = b"tensorseal.dev/v1 passphrase\x00"
# A zero nonce is safe: every wrap draws a fresh salt, so each wrap key seals one message.
_ZERO_NONCE = bytes(12)


def _wrap_key(passphrase: str, salt: bytes, log_n: int) -> bytes:
    return scrypt(passphrase_bytes(passphrase), _SALT_LABEL + salt, log_n, 8, 1)


class PassphraseRecipient:
    """Wraps file keys under a passphrase.

    Args:
        passphrase: non-empty text (NFC-normalised before use).
        work_factor: scrypt logN, 10..20 (default 18: 256 MiB, about a second).
        salt: fixed 16-byte salt, for deterministic test vectors only.

    Example:
        >>> PassphraseRecipient("correct horse", work_factor=10).id
        'passphrase'
    """

    def __init__(self, passphrase: str, *, work_factor: int = DEFAULT_WORK_FACTOR, salt: bytes | None = None) -> None:
        if not MIN_WORK_FACTOR <= work_factor <= MAX_WORK_FACTOR:
            fail("E_USAGE", "passphrase work factor must be an integer from 10 to 20")
        if not passphrase:
            fail("E_USAGE", "the passphrase is empty: choose a passphrase")
        if salt is not None and len(salt) != SALT_SIZE:
            fail("E_USAGE", "passphrase salt must be 16 bytes")
        self._passphrase, self._log_n, self._salt = passphrase, work_factor, salt

    @property
    def id(self) -> str:
        return PASSPHRASE_STANZA

    def wrap(self, file_key: bytes) -> Stanza:
        if len(file_key) != 32:
            fail("E_KEY", "file key must be 32 bytes")
        salt = os.urandom(SALT_SIZE) if self._salt is None else bytes(self._salt)
        key = _wrap_key(self._passphrase, salt, self._log_n)
        wrapped = AESGCM(key).encrypt(_ZERO_NONCE, bytes(file_key), None)
        return Stanza(PASSPHRASE_STANZA, (salt, bytes([self._log_n]), wrapped))


class PassphraseIdentity:
    """Opens ``passphrase`` stanzas; a wrong passphrase is ``E_DECRYPT`` (it ends the unlock).

    Example:
        >>> PassphraseIdentity("pw").unwrap(Stanza("kek", ())) is None
        True
    """

    def __init__(self, passphrase: str) -> None:
        self._passphrase = passphrase

    @property
    def id(self) -> str:
        return PASSPHRASE_STANZA

    def unwrap(self, s: Stanza) -> bytes | None:
        if s.type != PASSPHRASE_STANZA:
            return None
        salt, log_n_field, wrapped = expect_fields(s, [SALT_SIZE, 1, 48])
        log_n = log_n_field[0]
        # Bounded before scrypt runs: the header is not authenticated yet.
        if log_n > MAX_WORK_FACTOR:
            fail("E_UNSUPPORTED", f"work factor 2^{log_n} exceeds the limit 2^{MAX_WORK_FACTOR}: the file may be hostile")
        if log_n < MIN_WORK_FACTOR:
            fail("E_UNSUPPORTED", f"work factor 2^{log_n} is below the minimum 2^{MIN_WORK_FACTOR}")
        key = _wrap_key(self._passphrase, salt, log_n)
        try:
            return AESGCM(key).decrypt(_ZERO_NONCE, wrapped, None)
        except InvalidTag:
            fail("E_DECRYPT", "passphrase does not open this file: check the passphrase")
