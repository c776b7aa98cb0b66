"""scrypt with the work factor bounded before use, and passphrase normalisation."""

from __future__ import annotations

import unicodedata

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..errors import fail

MIN_WORK_FACTOR = 10
MAX_WORK_FACTOR = 20


def passphrase_bytes(passphrase: str) -> bytes:
    """UTF-8 of the NFC form, so the same words typed on any OS give one key."""
    try:
        return unicodedata.normalize("NFC", passphrase).encode("utf-8")
    except UnicodeEncodeError:
        fail("E_USAGE", "the passphrase is not valid Unicode text")


def scrypt(password: bytes, salt: bytes, log_n: int, r: int, p: int, length: int = 32) -> bytes:
    """scrypt(P, S, N = 2^log_n, r, p, dkLen); callers must bound ``log_n`` first.

    Example:
        >>> len(scrypt(b"pw", b"salt", 10, 8, 1))
        32
    """
    if not MIN_WORK_FACTOR <= log_n <= MAX_WORK_FACTOR:
        fail("E_UNSUPPORTED", f"scrypt work factor 2^{log_n} is outside 2^10..2^20")
    return Scrypt(salt=salt, length=length, n=1 << log_n, r=r, p=p).derive(password)
