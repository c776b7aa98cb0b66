"""The ``x25519`` stanza (FORMAT.md §3.4): HPKE (RFC 9180) base mode, DHKEM(X25519,
HKDF-SHA256), HKDF-SHA256, AES-256-GCM, from pyca/cryptography's ``hpke`` module.

    fields = [tag (16), enc (32), ct (48)]
    tag    = SHA-256("tensorseal.dev/v1 x25519 tag\\0" || recipient public key)[0:16]
    info   = "tensorseal.dev/v1 x25519\\0" || tag, aad = empty

Key strings: ``tseal1…`` (public, lower case) and ``TSEAL-SECRET-KEY-1…`` (secret, upper case).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import datetime, timezone

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from ..errors import TensorSealError, fail
from ..format.stanza import Stanza, expect_fields
from . import bech32
from .xwing import XWingIdentity

X25519_STANZA = "x25519"
RECIPIENT_HRP = "tseal"
IDENTITY_HRP = "tseal-secret-key-"
TAG_SIZE = 16
_TAG_LABEL = b"tensorseal.dev/v1 x25519 tag\x00"
_INFO_LABEL = b"tensorseal.dev/v1 x25519\x00"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def x25519_tag(public_key: bytes) -> bytes:
    """The 16-byte recipient tag of a raw public key."""
    if len(public_key) != 32:
        fail("E_KEY", "X25519 public key must be 32 bytes")
    return hashlib.sha256(_TAG_LABEL + public_key).digest()[:TAG_SIZE]


def public_key_of(private_key: bytes) -> bytes:
    """The raw public key of a raw private key (clamping is part of X25519)."""
    if len(private_key) != 32:
        fail("E_KEY", "X25519 private key must be 32 bytes")
    sk = X25519PrivateKey.from_private_bytes(private_key)
    return sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def encode_recipient(public_key: bytes) -> str:
    """``tseal1…`` of a raw public key."""
    if len(public_key) != 32:
        fail("E_KEY", "X25519 public key must be 32 bytes")
    return bech32.encode(RECIPIENT_HRP, public_key)


def encode_identity(private_key: bytes) -> str:
    """``TSEAL-SECRET-KEY-1…`` of a raw private key (a secret)."""
    if len(private_key) != 32:
        fail("E_KEY", "X25519 private key must be 32 bytes")
    return bech32.encode(IDENTITY_HRP, private_key).upper()


def decode_recipient(s: str) -> bytes:
    """Raw public key of a ``tseal1…`` string (``E_KEY`` if invalid)."""
    return bech32.decode(s, RECIPIENT_HRP, 32, "recipient")


def decode_identity(s: str) -> bytes:
    """Raw private key of a ``TSEAL-SECRET-KEY-1…`` string (``E_KEY`` if invalid)."""
    return bech32.decode(s, IDENTITY_HRP, 32, "identity (secret key)")


class X25519Recipient:
    """Wraps file keys for an X25519 public key.

    Args:
        recipient: a ``tseal1…`` string or 32 raw bytes.

    Example:
        >>> r = X25519Recipient(generate_identity()[1])
        >>> r.wrap(bytes(32)).type
        'x25519'
    """

    def __init__(self, recipient: str | bytes) -> None:
        pk = decode_recipient(recipient) if isinstance(recipient, str) else bytes(recipient)
        self._tag = x25519_tag(pk)
        self._pk = pk

    @property
    def id(self) -> str:
        return encode_recipient(self._pk)

    def wrap(self, file_key: bytes) -> Stanza:
        if len(file_key) != 32:
            fail("E_KEY", "file key must be 32 bytes")
        sealed = _SUITE.encrypt(bytes(file_key), X25519PublicKey.from_public_bytes(self._pk), _INFO_LABEL + self._tag)
        return Stanza(X25519_STANZA, (self._tag, sealed[:32], sealed[32:]))


class X25519Identity:
    """Opens ``x25519`` stanzas addressed to one private key.

    Args:
        identity: a ``TSEAL-SECRET-KEY-1…`` string or 32 raw bytes.

    Example:
        >>> secret, public = generate_identity()
        >>> X25519Identity(secret).id == public
        True
    """

    def __init__(self, identity: str | bytes) -> None:
        sk = decode_identity(identity) if isinstance(identity, str) else bytes(identity)
        self._pk = public_key_of(sk)
        self._sk = X25519PrivateKey.from_private_bytes(sk)
        self._tag = x25519_tag(self._pk)

    @property
    def id(self) -> str:
        return encode_recipient(self._pk)

    @property
    def recipient(self) -> X25519Recipient:
        """The matching public recipient."""
        return X25519Recipient(self._pk)

    def unwrap(self, s: Stanza) -> bytes | None:
        if s.type != X25519_STANZA:
            return None
        tag, enc, ct = expect_fields(s, [TAG_SIZE, 32, 48])
        if not hmac.compare_digest(tag, self._tag):
            return None
        try:
            return _SUITE.decrypt(enc + ct, self._sk, _INFO_LABEL + tag)
        except TensorSealError:
            raise
        except Exception:  # InvalidTag, an all-zero shared secret, a bad enc: one error
            fail("E_DECRYPT", f"x25519 stanza for {self.id} does not open: the header was modified")


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
    when = (created or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    recipient = encode_recipient(public_key_of(decode_identity(identity)))
    return f"# created: {when}\n# recipient: {recipient}\n{identity.upper()}\n"


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
