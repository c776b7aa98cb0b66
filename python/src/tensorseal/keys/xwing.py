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
itself (encapsulation, decapsulation, combiner) is pyca's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timezone

from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import TensorSealError, fail
from ..format.stanza import Stanza, expect_fields
from . import bech32

XWING_STANZA = "mlkem768x25519"
RECIPIENT_HRP = "tseal1pq"
IDENTITY_HRP = "tseal-secret-key-pq-"
PUBLIC_KEY_SIZE = 1216
SEED_SIZE = 32
ENC_SIZE = 1120
TAG_SIZE = 16
_MLKEM_PUBLIC_SIZE = 1184
_TAG_LABEL = b"tensorseal.dev/v1 mlkem768x25519 tag\x00"
_INFO_LABEL = b"tensorseal.dev/v1 mlkem768x25519\x00"
_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_SHOWN_CHARS = 24


def xwing_tag(public_key: bytes) -> bytes:
    """The 16-byte recipient tag of a raw 1216-byte public key."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        fail("E_KEY", f"ML-KEM-768+X25519 public key must be {PUBLIC_KEY_SIZE} bytes")
    return hashlib.sha256(_TAG_LABEL + public_key).digest()[:TAG_SIZE]


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
    if len(public_key) != PUBLIC_KEY_SIZE:
        fail("E_KEY", f"ML-KEM-768+X25519 public key must be {PUBLIC_KEY_SIZE} bytes")
    try:
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(public_key[:_MLKEM_PUBLIC_SIZE]),
            x25519.X25519PublicKey.from_public_bytes(public_key[_MLKEM_PUBLIC_SIZE:]),
        )
    except ValueError:  # the ML-KEM encapsulation key check (FIPS 203 §7.2)
        fail("E_KEY", f"{shown_recipient(public_key)} is not a valid public key")


def encode_recipient(public_key: bytes) -> str:
    """``tseal1pq1…`` of a raw public key."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        fail("E_KEY", f"ML-KEM-768+X25519 public key must be {PUBLIC_KEY_SIZE} bytes")
    return bech32.encode(RECIPIENT_HRP, public_key)


def encode_identity(seed: bytes) -> str:
    """``TSEAL-SECRET-KEY-PQ-1…`` of a 32-byte seed (a secret)."""
    if len(seed) != SEED_SIZE:
        fail("E_KEY", "ML-KEM-768+X25519 seed must be 32 bytes")
    return bech32.encode(IDENTITY_HRP, seed).upper()


def decode_recipient(s: str) -> bytes:
    """Raw public key of a ``tseal1pq1…`` string (``E_KEY`` if invalid)."""
    return bech32.decode(s, RECIPIENT_HRP, PUBLIC_KEY_SIZE, "post-quantum recipient")


def decode_identity(s: str) -> bytes:
    """Seed of a ``TSEAL-SECRET-KEY-PQ-1…`` string (``E_KEY`` if invalid)."""
    return bech32.decode(s, IDENTITY_HRP, SEED_SIZE, "post-quantum identity (secret key)")


def shown_recipient(public_key: bytes) -> str:
    """The recipient string cut short for messages (the whole one is about 1960 characters)."""
    full = bech32.encode(RECIPIENT_HRP, public_key)
    return f"{full[:_SHOWN_CHARS]}...{full[-8:]}"


class XWingRecipient:
    """Wraps file keys for an ML-KEM-768 + X25519 (X-Wing) public key.

    Args:
        recipient: a ``tseal1pq1…`` string or 1216 raw bytes.

    Example:
        >>> r = XWingRecipient(generate_identity()[1])
        >>> r.wrap(bytes(32)).type
        'mlkem768x25519'
    """

    def __init__(self, recipient: str | bytes) -> None:
        pk = decode_recipient(recipient) if isinstance(recipient, str) else bytes(recipient)
        self._tag = xwing_tag(pk)
        self._key = _public_key_object(pk)
        self._pk = pk

    @property
    def id(self) -> str:
        return encode_recipient(self._pk)

    def wrap(self, file_key: bytes) -> Stanza:
        if len(file_key) != 32:
            fail("E_KEY", "file key must be 32 bytes")
        sealed = _SUITE.encrypt(bytes(file_key), self._key, _INFO_LABEL + self._tag)
        return Stanza(XWING_STANZA, (self._tag, sealed[:ENC_SIZE], sealed[ENC_SIZE:]))


class XWingIdentity:
    """Opens ``mlkem768x25519`` stanzas addressed to one X-Wing seed.

    Args:
        identity: a ``TSEAL-SECRET-KEY-PQ-1…`` string or 32 raw bytes.

    Example:
        >>> secret, public = generate_identity()
        >>> XWingIdentity(secret).recipient.id == public
        True
    """

    def __init__(self, identity: str | bytes) -> None:
        seed = decode_identity(identity) if isinstance(identity, str) else bytes(identity)
        m, x = _expand(seed)
        self._sk = hpke.MLKEM768X25519PrivateKey(m, x)
        self._pk = _public_bytes(m, x)
        self._tag = xwing_tag(self._pk)

    @property
    def id(self) -> str:
        """The public recipient, shortened (never the secret)."""
        return shown_recipient(self._pk)

    @property
    def recipient(self) -> XWingRecipient:
        """The matching public recipient."""
        return XWingRecipient(self._pk)

    def unwrap(self, s: Stanza) -> bytes | None:
        if s.type != XWING_STANZA:
            return None
        tag, enc, ct = expect_fields(s, [TAG_SIZE, ENC_SIZE, 48])
        if not hmac.compare_digest(tag, self._tag):
            return None
        try:
            return _SUITE.decrypt(enc + ct, self._sk, _INFO_LABEL + tag)
        except TensorSealError:
            raise
        except Exception:  # InvalidTag or a malformed enc: one error
            fail("E_DECRYPT", f"{XWING_STANZA} stanza for {self.id} does not open: the header was modified")


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
    when = (created or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    recipient = encode_recipient(public_key_of(decode_identity(identity)))
    return f"# created: {when}\n# recipient: {recipient}\n{identity.upper()}\n"
