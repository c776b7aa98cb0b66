"""The ``x25519`` stanza (FORMAT.md §3.4): HPKE (RFC 9180) base mode, DHKEM(X25519,
HKDF-SHA256), HKDF-SHA256, AES-256-GCM, from pyca/cryptography's ``hpke`` module.

    fields = [tag (16), enc (32), ct (48)]
    tag    = SHA-256("tensorseal.dev/v1 x25519 tag\\0" || recipient public key)[0:16]
    info   = "tensorseal.dev/v1 x25519\\0" || tag, aad = empty

Key strings: ``tseal1…`` (public, lower case) and ``TSEAL-SECRET-KEY-1…`` (secret, upper case).
The framing, tags, key strings and wrap/unwrap are shared with ``mlkem768x25519`` (hpke_stanza.py);
this module says what is X25519's: the suite, the sizes and the key objects.
"""

from __future__ import annotations

import os
from datetime import datetime

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from ..errors import TensorSealError, fail
from .hpke_stanza import TAG_SIZE as TAG_SIZE  # public before the shared module existed
from .hpke_stanza import HpkeIdentity, HpkeKem, HpkeRecipient, identity_file_text
from .xwing import XWingIdentity

X25519_STANZA = "x25519"
RECIPIENT_HRP = "tseal"
IDENTITY_HRP = "tseal-secret-key-"
_KEM = HpkeKem(X25519_STANZA, hpke.KEM.X25519, enc_size=32, public_key_size=32, secret_size=32,
               recipient_hrp=RECIPIENT_HRP, identity_hrp=IDENTITY_HRP, key_name="X25519", secret_name="private key")  # fmt: skip


def x25519_tag(public_key: bytes) -> bytes:
    """The 16-byte recipient tag of a raw public key."""
    return _KEM.tag(public_key)


def public_key_of(private_key: bytes) -> bytes:
    """The raw public key of a raw private key (clamping is part of X25519)."""
    if len(private_key) != 32:
        fail("E_KEY", "X25519 private key must be 32 bytes")
    sk = X25519PrivateKey.from_private_bytes(private_key)
    return sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def encode_recipient(public_key: bytes) -> str:
    """``tseal1…`` of a raw public key."""
    return _KEM.encode_recipient(public_key)


def encode_identity(private_key: bytes) -> str:
    """``TSEAL-SECRET-KEY-1…`` of a raw private key (a secret)."""
    return _KEM.encode_identity(private_key)


def decode_recipient(s: str) -> bytes:
    """Raw public key of a ``tseal1…`` string (``E_KEY`` if invalid)."""
    return _KEM.decode_recipient(s)


def decode_identity(s: str) -> bytes:
    """Raw private key of a ``TSEAL-SECRET-KEY-1…`` string (``E_KEY`` if invalid)."""
    return _KEM.decode_identity(s)


class X25519Recipient(HpkeRecipient):
    """Wraps file keys for an X25519 public key.

    Args:
        recipient: a ``tseal1…`` string or 32 raw bytes.

    Example:
        >>> r = X25519Recipient(generate_identity()[1])
        >>> r.wrap(bytes(32)).type
        'x25519'
    """

    _kem = _KEM

    def _public_key(self, public_key: bytes) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(public_key)


class X25519Identity(HpkeIdentity):
    """Opens ``x25519`` stanzas addressed to one private key.

    Args:
        identity: a ``TSEAL-SECRET-KEY-1…`` string or 32 raw bytes.

    Example:
        >>> secret, public = generate_identity()
        >>> X25519Identity(secret).id == public
        True
    """

    _kem = _KEM

    def _key_pair(self, secret: bytes) -> tuple[X25519PrivateKey, bytes]:
        pk = public_key_of(secret)  # first: it refuses a wrong length with E_KEY
        return X25519PrivateKey.from_private_bytes(secret), pk

    @property
    def recipient(self) -> X25519Recipient:
        """The matching public recipient."""
        return X25519Recipient(self._pk)


def generate_identity() -> tuple[str, str]:
    """A new key pair as (``TSEAL-SECRET-KEY-1…``, ``tseal1…``).

    Example:
        >>> secret, public = generate_identity()
        >>> public.startswith("tseal1")
        True
    """
    sk = X25519PrivateKey.generate()
    raw = sk.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return encode_identity(raw), encode_recipient(public_key_of(raw))


def format_identity_file(identity: str, created: datetime | None = None) -> str:
    """An identity file as the TS CLI writes one: two comment lines, then the secret key."""
    return identity_file_text(identity, encode_recipient(public_key_of(decode_identity(identity))), created)


def parse_identity_file(text: str) -> list[X25519Identity | XWingIdentity]:
    """Identities of an identity file: ``#`` comments, blank lines, one key per line
    (``TSEAL-SECRET-KEY-1…`` or, post-quantum, ``TSEAL-SECRET-KEY-PQ-1…``).

    Errors name the line, never its content. An empty file is ``E_NO_IDENTITY``.

    Example:
        >>> len(parse_identity_file(format_identity_file(generate_identity()[0])))
        1
    """
    out = []
    for i, raw in enumerate(text.split("\n")):
        line = raw.removesuffix("\r").strip()
        if not line or line.startswith("#"):
            continue
        try:
            pq = line.upper().startswith("TSEAL-SECRET-KEY-PQ-1")
            out.append(XWingIdentity(line) if pq else X25519Identity(line))
        except TensorSealError:
            fail(
                "E_KEY",
                f"identity file line {i + 1} is not a TSEAL-SECRET-KEY-1... or TSEAL-SECRET-KEY-PQ-1... identity:"
                " fix or remove it",
            )
    if not out:
        fail("E_NO_IDENTITY", "the identity file holds no identity: create one with `tensorseal keygen`")
    return out


def read_identity_file(path: str | os.PathLike[str]) -> list[X25519Identity | XWingIdentity]:
    """Reads and parses an identity file (see :func:`parse_identity_file`)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        fail("E_IO", f"cannot read identity file {os.fspath(path)}: {getattr(e, 'strerror', None) or 'not UTF-8'}")
    return parse_identity_file(text)
