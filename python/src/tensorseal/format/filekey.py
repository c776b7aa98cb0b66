"""Keys derived from the 256-bit file key (FORMAT.md §1.3) and the header MAC (§2.4)."""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from ..errors import fail
from .hkdf import hkdf_expand

FILE_KEY_SIZE = 32
HEADER_MAC_SIZE = 32


def generate_file_key() -> bytes:
    """32 bytes from the OS CSPRNG, fresh for every sealed file."""
    return os.urandom(FILE_KEY_SIZE)


def _derive(file_key: bytes, label: bytes) -> bytes:
    if len(file_key) != FILE_KEY_SIZE:
        fail("E_KEY", "file key must be 32 bytes")
    return hkdf_expand("sha512", file_key, label, 32)


def header_mac_key(file_key: bytes) -> bytes:
    """HKDF-Expand-SHA-512(FK, "tensorseal.dev/v1 header-mac", 32)."""
    return _derive(file_key, b"tensorseal.dev/v1 header-mac")


def payload_input_key(file_key: bytes) -> bytes:
    """HKDF-Expand-SHA-512(FK, "tensorseal.dev/v1 payload", 32)."""
    return _derive(file_key, b"tensorseal.dev/v1 payload")


def compute_header_mac(file_key: bytes, parts: Iterable[bytes]) -> bytes:
    """HMAC-SHA-256(headerMacKey, prefix || descriptor || active slot body)."""
    h = crypto_hmac.HMAC(header_mac_key(file_key), hashes.SHA256())
    for p in parts:
        h.update(p)
    return h.finalize()


def check_header_mac(file_key: bytes, parts: Iterable[bytes], stored: bytes) -> None:
    """Constant-time check of the header MAC; ``E_HEADER_MAC`` on mismatch."""
    mac = compute_header_mac(file_key, parts)
    if len(stored) != HEADER_MAC_SIZE or not hmac.compare_digest(mac, stored):
        fail(
            "E_HEADER_MAC",
            "header MAC mismatch: the header was modified or a stanza was copied from another file",
        )
