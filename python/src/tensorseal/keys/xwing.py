"""The ``mlkem768x25519`` stanza (FORMAT.md §3.7): post-quantum hybrid recipients. HPKE (RFC 9180)
base mode with the X-Wing KEM (ML-KEM-768 + X25519, KEM id 0x647a), HKDF-SHA256 and AES-256-GCM,
from pyca/cryptography's ``hpke`` module (``KEM.MLKEM768_X25519``, cryptography >= 50).

    fields = [tag (16), enc (1120), ct (48)]
    tag    = SHA-256("tensorseal.dev/v1 mlkem768x25519 tag\\0" || recipient public key)[0:16]
    info   = "tensorseal.dev/v1 mlkem768x25519\\0" || tag, aad = empty

Key strings: ``tseal1pq1…`` (the 1216-byte public key, lower case) and
``TSEAL-SECRET-KEY-PQ-1…`` (the 32-byte X-Wing seed, upper case). pyca builds the hybrid key from
its two halves, so the seed is expanded as X-Wing specifies (draft-connolly-cfrg-xwing-kem §5.2):
SHAKE256(seed, 96 bytes) = ML-KEM-768 seed (d || z, 64) || X25519 private key (32); the KEM
itself (encapsulation, decapsulation, combiner) is pyca's. The framing, tags, key strings and
wrap/unwrap are shared with ``x25519`` (hpke_stanza.py).
"""

from __future__ import annotations

import secrets
from datetime import datetime

from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import fail
from . import bech32
from .hpke_stanza import TAG_SIZE as TAG_SIZE  # public before the shared module existed
from .hpke_stanza import HpkeIdentity, HpkeKem, HpkeRecipient, identity_file_text

XWING_STANZA = "mlkem768x25519"
RECIPIENT_HRP = "tseal1pq"
IDENTITY_HRP = "tseal-secret-key-pq-"
PUBLIC_KEY_SIZE = 1216
SEED_SIZE = 32
ENC_SIZE = 1120
_MLKEM_PUBLIC_SIZE = 1184
_SHOWN_CHARS = 24
_KEM = HpkeKem(XWING_STANZA, hpke.KEM.MLKEM768_X25519, enc_size=ENC_SIZE, public_key_size=PUBLIC_KEY_SIZE,
               secret_size=SEED_SIZE, recipient_hrp=RECIPIENT_HRP, identity_hrp=IDENTITY_HRP,
               key_name="ML-KEM-768+X25519", secret_name="seed", described="post-quantum ")  # fmt: skip


def xwing_tag(public_key: bytes) -> bytes:
    """The 16-byte recipient tag of a raw 1216-byte public key."""
    return _KEM.tag(public_key)


def _expand(seed: bytes) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
    if len(seed) != SEED_SIZE:
        fail("E_KEY", "ML-KEM-768+X25519 seed must be 32 bytes")
    h = hashes.Hash(hashes.SHAKE256(96))
    h.update(seed)
    expanded = h.finalize()
    return (
        mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
        x25519.X25519PrivateKey.from_private_bytes(expanded[64:]),
    )


def _public_bytes(m: mlkem.MLKEM768PrivateKey, x: x25519.X25519PrivateKey) -> bytes:
    return m.public_key().public_bytes_raw() + x.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_of(seed: bytes) -> bytes:
    """The 1216-byte X-Wing public key (ML-KEM-768 ‖ X25519) of a 32-byte seed."""
    return _public_bytes(*_expand(seed))


def _public_key_object(public_key: bytes) -> hpke.MLKEM768X25519PublicKey:
    _KEM.check_public(public_key)
    try:
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(public_key[:_MLKEM_PUBLIC_SIZE]),
            x25519.X25519PublicKey.from_public_bytes(public_key[_MLKEM_PUBLIC_SIZE:]),
        )
    except ValueError:  # the ML-KEM encapsulation key check (FIPS 203 §7.2)
        fail("E_KEY", f"{shown_recipient(public_key)} is not a valid public key")


def encode_recipient(public_key: bytes) -> str:
    """``tseal1pq1…`` of a raw public key."""
    return _KEM.encode_recipient(public_key)


def encode_identity(seed: bytes) -> str:
    """``TSEAL-SECRET-KEY-PQ-1…`` of a 32-byte seed (a secret)."""
    return _KEM.encode_identity(seed)


def decode_recipient(s: str) -> bytes:
    """Raw public key of a ``tseal1pq1…`` string (``E_KEY`` if invalid)."""
    return _KEM.decode_recipient(s)


def decode_identity(s: str) -> bytes:
    """Seed of a ``TSEAL-SECRET-KEY-PQ-1…`` string (``E_KEY`` if invalid)."""
    return _KEM.decode_identity(s)


def shown_recipient(public_key: bytes) -> str:
    """The recipient string cut short for messages (the whole one is about 1960 characters)."""
    full = bech32.encode(RECIPIENT_HRP, public_key)
    return f"{full[:_SHOWN_CHARS]}...{full[-8:]}"


class XWingRecipient(HpkeRecipient):
    """Wraps file keys for an ML-KEM-768 + X25519 (X-Wing) public key.

    Args:
        recipient: a ``tseal1pq1…`` string or 1216 raw bytes.

    Example:
        >>> r = XWingRecipient(generate_identity()[1])
        >>> r.wrap(bytes(32)).type
        'mlkem768x25519'
    """

    _kem = _KEM

    def _public_key(self, public_key: bytes) -> hpke.MLKEM768X25519PublicKey:
        return _public_key_object(public_key)


class XWingIdentity(HpkeIdentity):
    """Opens ``mlkem768x25519`` stanzas addressed to one X-Wing seed.

    Args:
        identity: a ``TSEAL-SECRET-KEY-PQ-1…`` string or 32 raw bytes.

    Example:
        >>> secret, public = generate_identity()
        >>> XWingIdentity(secret).recipient.id == public
        True
    """

    _kem = _KEM

    def _key_pair(self, secret: bytes) -> tuple[hpke.MLKEM768X25519PrivateKey, bytes]:
        m, x = _expand(secret)
        return hpke.MLKEM768X25519PrivateKey(m, x), _public_bytes(m, x)

    @property
    def id(self) -> str:
        """The public recipient, shortened (never the secret)."""
        return shown_recipient(self._pk)

    @property
    def recipient(self) -> XWingRecipient:
        """The matching public recipient."""
        return XWingRecipient(self._pk)


def generate_identity() -> tuple[str, str]:
    """A new key pair as (``TSEAL-SECRET-KEY-PQ-1…``, ``tseal1pq1…``).

    Example:
        >>> secret, public = generate_identity()
        >>> public.startswith("tseal1pq1")
        True
    """
    seed = secrets.token_bytes(SEED_SIZE)
    return encode_identity(seed), encode_recipient(public_key_of(seed))


def format_identity_file(identity: str, created: datetime | None = None) -> str:
    """An identity file as the TS CLI's ``keygen --pq`` writes one."""
    return identity_file_text(identity, encode_recipient(public_key_of(decode_identity(identity))), created)
