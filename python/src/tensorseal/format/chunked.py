"""C2SP chunked encryption ("Cobblestone") with AES-256-GCM and HKDF-Expand-SHA-512 (§4).

With 16 KiB chunks this is Cobblestone-256 byte for byte; other chunk sizes are a distinct
variant whose size is part of the derivation label. :class:`ChunkCipher` holds one payload's
keys; :class:`Geometry` maps plaintext lengths, chunk indices and payload offsets.
"""

from __future__ import annotations

import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import fail
from .descriptor import chunk_log2
from .hkdf import hkdf_expand

AEAD_NAME = b"AEAD_AES_256_GCM"
KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
SALT_SIZE = 24
COMMITMENT_SIZE = 32
PAYLOAD_PREFIX_SIZE = SALT_SIZE + COMMITMENT_SIZE
COBBLESTONE_CHUNK_SIZE = 16384
MAX_CHUNKS = 2**38
_CONTEXT_LABEL = b"tensorseal.dev/v1 descriptor\x00"


def payload_context(descriptor_bytes: bytes) -> bytes:
    """The chunked-encryption context: a fixed label, then the descriptor bytes (§4.1)."""
    return _CONTEXT_LABEL + descriptor_bytes


def derivation_label(chunk_size: int) -> bytes:
    """C2SP's own label for 16 KiB (so Wycheproof applies); a size-specific one otherwise."""
    chunk_log2(chunk_size)
    if chunk_size == COBBLESTONE_CHUNK_SIZE:
        return b"c2sp.org/chunked-encryption@v1+"
    return b"tensorseal.dev/chunked-encryption@v1/chunk-size=%d+" % chunk_size


class ChunkCipher:
    """The keys of one payload: AEAD key, base nonce and commitment.

    Args:
        input_key: the 32-byte payload input key (``E_KEY`` otherwise).
        salt: the payload's 24-byte salt.
        context: the chunked-encryption context (see :func:`payload_context`).
        chunk_size: the chunk size (selects the derivation label).

    Example:
        >>> c = ChunkCipher(bytes(32), bytes(24), b"", 16384)
        >>> c.open(0, c.seal(0, b"hi"))
        b'hi'
    """

    def __init__(self, input_key: bytes, salt: bytes, context: bytes, chunk_size: int) -> None:
        if len(input_key) != KEY_SIZE:
            fail("E_KEY", f"payload key must be {KEY_SIZE} bytes, got {len(input_key)}")
        if len(salt) != SALT_SIZE:
            fail("E_MALFORMED", f"salt must be {SALT_SIZE} bytes")
        info = derivation_label(chunk_size) + AEAD_NAME + b"\x00" + bytes(salt) + bytes(context)
        okm = hkdf_expand("sha512", input_key, info, KEY_SIZE + NONCE_SIZE + COMMITMENT_SIZE)
        self.aead_key = okm[:KEY_SIZE]
        self.base_nonce = okm[KEY_SIZE : KEY_SIZE + NONCE_SIZE]
        self.commitment = okm[KEY_SIZE + NONCE_SIZE :]
        self._aead = AESGCM(self.aead_key)
        self._base = int.from_bytes(self.base_nonce, "big")
        #: Suite 2 (FORMAT.md §2.5): chunks are plaintext || GMAC tag, read from the descriptor
        #: bound in the context, so every caller gets the right mode.
        self.integrity_only = context_is_integrity_only(bytes(context))

    @classmethod
    def raw(cls, aead_key: bytes, base_nonce: bytes) -> ChunkCipher:
        """A cipher from an AEAD key and base nonce directly (Wycheproof's raw mode)."""
        c = cls.__new__(cls)
        c.aead_key, c.base_nonce, c.commitment = bytes(aead_key), bytes(base_nonce), bytes(32)
        c._aead = AESGCM(c.aead_key)
        c._base = int.from_bytes(c.base_nonce, "big")
        c.integrity_only = False
        return c

    def copy(self) -> ChunkCipher:
        """The same keys in a new AEAD object (one per worker thread, nothing shared)."""
        c = ChunkCipher.raw(self.aead_key, self.base_nonce)
        c.commitment = self.commitment
        c.integrity_only = self.integrity_only
        return c

    def check_commitment(self, stored: bytes) -> None:
        """Constant-time; ``E_COMMITMENT`` on mismatch. Done before any chunk is decrypted."""
        if len(stored) != COMMITMENT_SIZE or not hmac.compare_digest(self.commitment, bytes(stored)):
            fail("E_COMMITMENT", "key commitment mismatch: wrong key or encryption context")

    def nonce(self, index: int) -> bytes:
        """nonce_k = base nonce XOR k (big-endian), unique per chunk index below 2^38."""
        if index < 0 or index >= MAX_CHUNKS:
            fail("E_UNSUPPORTED", f"chunk index {index} exceeds the 2^38 chunk limit")
        return (self._base ^ index).to_bytes(NONCE_SIZE, "big")

    def seal(self, index: int, plaintext: bytes | memoryview) -> bytes:
        """AES-256-GCM of one chunk with its own nonce; returns ciphertext || tag.

        Suite 2: plaintext || GMAC tag (AES-GCM of an empty plaintext with the chunk as AAD).
        """
        if self.integrity_only:
            return bytes(plaintext) + self._aead.encrypt(self.nonce(index), b"", bytes(plaintext))
        return self._aead.encrypt(self.nonce(index), plaintext, None)

    def open(self, index: int, sealed: bytes | memoryview) -> bytes:
        """Opens one chunk; every failure is the same ``E_DECRYPT`` (no oracle)."""
        if len(sealed) < TAG_SIZE:
            fail("E_TRUNCATED", f"chunk {index} is shorter than its tag")
        if self.integrity_only:
            return self._check(index, sealed)
        try:
            return self._aead.decrypt(self.nonce(index), sealed, None)
        except InvalidTag:
            fail("E_DECRYPT", f"chunk {index} failed authentication: the file was modified")

    def open_into(self, index: int, sealed: bytes | memoryview, out: memoryview) -> None:
        """Opens one chunk into ``out`` (exactly ``len(sealed) - 16`` bytes).

        On failure ``out`` is zeroed before ``E_DECRYPT`` is raised, so unauthenticated
        plaintext never stays in the caller's buffer.
        """
        if len(sealed) < TAG_SIZE:
            fail("E_TRUNCATED", f"chunk {index} is shorter than its tag")
        if self.integrity_only:
            out[:] = self._check(index, sealed)
            return
        try:
            self._aead.decrypt_into(self.nonce(index), sealed, None, out)
        except InvalidTag:
            out[:] = bytes(len(out))
            fail("E_DECRYPT", f"chunk {index} failed authentication: the file was modified")


    def _check(self, index: int, sealed: bytes | memoryview) -> bytes:
        """Suite 2: verifies the GMAC tag of plaintext || tag and returns the plaintext."""
        body = bytes(sealed[: len(sealed) - TAG_SIZE])
        try:
            self._aead.decrypt(self.nonce(index), bytes(sealed[len(sealed) - TAG_SIZE :]), body)
        except InvalidTag:
            fail("E_DECRYPT", f"chunk {index} failed its integrity check: the file was modified")
        return body


def context_is_integrity_only(context: bytes) -> bool:
    """Whether a payload context (label || descriptor bytes) names suite 2 (FORMAT.md §2.5).

    The descriptor's first field is its u16 suite; contexts of other shapes (the Cobblestone
    Wycheproof vectors) are plain chunked encryption.
    """
    n = len(_CONTEXT_LABEL)
    return context[:n] == _CONTEXT_LABEL and context[n : n + 2] == b"\x00\x02"


class Geometry:
    """Lengths and offsets of a payload with chunk size C (FORMAT.md §4.2, §4.4).

    Example:
        >>> g = Geometry(16384)
        >>> g.plaintext_length(g.payload_length(20000))
        20000
    """

    def __init__(self, chunk_size: int) -> None:
        chunk_log2(chunk_size)
        self.chunk_size = chunk_size
        self.sealed_chunk_size = chunk_size + TAG_SIZE

    def chunk_count(self, plaintext_length: int) -> int:
        """floor(L / C) + 1: full chunks and one short (possibly empty) final chunk."""
        return plaintext_length // self.chunk_size + 1

    def payload_length(self, plaintext_length: int) -> int:
        """56 + L + 16 · (floor(L / C) + 1)."""
        chunks = self.chunk_count(plaintext_length)
        if chunks > MAX_CHUNKS:
            fail("E_UNSUPPORTED", "plaintext exceeds the 2^38 chunk limit")
        return PAYLOAD_PREFIX_SIZE + plaintext_length + chunks * TAG_SIZE

    def plaintext_length(self, payload_length: int) -> int:
        """Inverts the payload length; ``E_TRUNCATED`` for lengths no writer produces."""
        body = payload_length - PAYLOAD_PREFIX_SIZE
        if body < TAG_SIZE:
            fail("E_TRUNCATED", "payload ends before the final chunk")
        full, last = divmod(body, self.sealed_chunk_size)
        if last < TAG_SIZE:
            fail("E_TRUNCATED", "payload is truncated at a chunk boundary")
        return full * self.chunk_size + (last - TAG_SIZE)

    def chunk_offset(self, index: int) -> int:
        """Offset of sealed chunk k from the start of the payload."""
        return PAYLOAD_PREFIX_SIZE + index * self.sealed_chunk_size

    def chunk_plaintext_length(self, index: int, plaintext_length: int) -> int:
        """Plaintext bytes in chunk k of a message of the given length."""
        last = self.chunk_count(plaintext_length) - 1
        if index < last:
            return self.chunk_size
        if index == last:
            return plaintext_length - last * self.chunk_size
        fail("E_USAGE", f"chunk {index} is past the end of the message")
