"""HKDF-Expand (RFC 5869 §2.3) with the input key used directly as PRK (FORMAT.md §1.1).

cryptography's ``HKDFExpand`` accepts a 32-byte PRK with SHA-512 (checked against Wycheproof's
``hkdf_sha512_test.json`` and the spec vectors' intermediate values in the tests).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from ..errors import fail

_HASHES = {"sha256": (hashes.SHA256, 32), "sha512": (hashes.SHA512, 64)}


def hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand-H(PRK, info, L).

    Args:
        hash_name: ``"sha256"`` or ``"sha512"``.
        prk: the pseudorandom key (TensorSeal passes a 32-byte key directly).
        info: context and application specific information.
        length: output length, at most 255 hash lengths.

    Returns:
        ``length`` bytes of output keying material.

    Example:
        >>> len(hkdf_expand("sha512", bytes(32), b"label", 76))
        76
    """
    algorithm, hash_len = _HASHES[hash_name]
    if length <= 0 or length > 255 * hash_len:
        fail("E_USAGE", f"HKDF-Expand length {length} out of range")
    return HKDFExpand(algorithm(), length, info).derive(bytes(prk))
