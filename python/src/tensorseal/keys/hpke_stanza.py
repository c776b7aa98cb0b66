"""What the HPKE recipient stanzas (``x25519``, ``mlkem768x25519``; FORMAT.md §3.4, §3.7) share,
as src/keys/hpke-stanza.ts does on the TypeScript side: the framing ``[tag, enc, ct]`` with

    tag  = SHA-256(tag label || recipient public key)[0:16]
    info = info label || tag, aad = empty

the bech32 key strings (public lower case, secret upper case), a recipient that recognises its
stanzas by tag in constant time, and the one E_DECRYPT for a stanza that does not open. Only the
KEM (its id, key sizes and key objects) differs: each KEM's module holds one :class:`HpkeKem` and
subclasses :class:`HpkeRecipient` and :class:`HpkeIdentity` with how its keys are built.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, ClassVar

from cryptography.hazmat.primitives import hpke

from ..errors import TensorSealError, fail
from ..format.stanza import Stanza, expect_fields
from . import bech32

TAG_SIZE = 16
CT_SIZE = 48  # AES-256-GCM seal of the 32-byte file key: key and tag
FILE_KEY_SIZE = 32


@dataclass(frozen=True)
class HpkeKem:
    """One HPKE stanza type: its KEM, key sizes and key-string prefixes (the KDF and AEAD are the
    same for all: HKDF-SHA256, AES-256-GCM; the labels derive from the stanza type).

    ``key_name`` and ``secret_name`` name the keys in size errors ("X25519", "private key");
    ``described`` qualifies the key strings in bech32's errors ("post-quantum ").
    """

    stanza: str
    kem: hpke.KEM
    enc_size: int
    public_key_size: int
    secret_size: int
    recipient_hrp: str
    identity_hrp: str
    key_name: str
    secret_name: str
    described: str = ""

    @cached_property
    def suite(self) -> hpke.Suite:
        return hpke.Suite(self.kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)

    @property
    def tag_label(self) -> bytes:
        return f"tensorseal.dev/v1 {self.stanza} tag\x00".encode("ascii")

    @property
    def info_label(self) -> bytes:
        return f"tensorseal.dev/v1 {self.stanza}\x00".encode("ascii")

    def check_public(self, public_key: bytes) -> None:
        if len(public_key) != self.public_key_size:
            fail("E_KEY", f"{self.key_name} public key must be {self.public_key_size} bytes")

    def tag(self, public_key: bytes) -> bytes:
        """The 16-byte recipient tag of a raw public key."""
        self.check_public(public_key)
        return hashlib.sha256(self.tag_label + public_key).digest()[:TAG_SIZE]

    def encode_recipient(self, public_key: bytes) -> str:
        self.check_public(public_key)
        return bech32.encode(self.recipient_hrp, public_key)

    def encode_identity(self, secret: bytes) -> str:
        if len(secret) != self.secret_size:
            fail("E_KEY", f"{self.key_name} {self.secret_name} must be {self.secret_size} bytes")
        return bech32.encode(self.identity_hrp, secret).upper()

    def decode_recipient(self, s: str) -> bytes:
        return bech32.decode(s, self.recipient_hrp, self.public_key_size, f"{self.described}recipient")

    def decode_identity(self, s: str) -> bytes:
        return bech32.decode(s, self.identity_hrp, self.secret_size, f"{self.described}identity (secret key)")

    def wrap(self, public_key: Any, tag: bytes, file_key: bytes) -> Stanza:
        """Seals the file key to ``public_key`` (the suite's key object) as a stanza."""
        if len(file_key) != FILE_KEY_SIZE:
            fail("E_KEY", "file key must be 32 bytes")
        sealed = self.suite.encrypt(bytes(file_key), public_key, self.info_label + tag)
        return Stanza(self.stanza, (tag, sealed[: self.enc_size], sealed[self.enc_size :]))

    def unwrap(self, s: Stanza, private_key: Any, tag: bytes, who: str) -> bytes | None:
        """The file key in ``s`` if it is addressed to ``tag``; None if it is not; E_DECRYPT
        (naming the stanza type and ``who``, a public string) if it is but does not open."""
        if s.type != self.stanza:
            return None
        got, enc, ct = expect_fields(s, [TAG_SIZE, self.enc_size, CT_SIZE])
        if not hmac.compare_digest(got, tag):
            return None
        try:
            return self.suite.decrypt(enc + ct, private_key, self.info_label + got)
        except TensorSealError:
            raise
        except Exception:  # InvalidTag, a bad enc, an all-zero shared secret: one error
            fail("E_DECRYPT", f"{self.stanza} stanza for {who} does not open: the header was modified")


def identity_file_text(identity: str, recipient: str, created: datetime | None) -> str:
    """An identity file as the TS CLI's ``keygen`` writes one: two comment lines, then the key."""
    when = (created or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"# created: {when}\n# recipient: {recipient}\n{identity.upper()}\n"


class HpkeRecipient:
    """Wraps file keys for one public key of ``_kem``; a subclass says how its KEM builds the
    public key object (and which raw keys it refuses)."""

    _kem: ClassVar[HpkeKem]

    def __init__(self, recipient: str | bytes) -> None:
        pk = self._kem.decode_recipient(recipient) if isinstance(recipient, str) else bytes(recipient)
        self._tag = self._kem.tag(pk)
        self._public_key(pk)  # refuses a key the KEM rejects now, not at the first wrap
        self._pk = pk  # raw bytes only: the recipient stays picklable (DataLoader workers)

    def _public_key(self, public_key: bytes) -> Any:
        raise NotImplementedError

    @property
    def id(self) -> str:
        return self._kem.encode_recipient(self._pk)

    def wrap(self, file_key: bytes) -> Stanza:
        return self._kem.wrap(self._public_key(self._pk), self._tag, file_key)


class HpkeIdentity:
    """Opens ``_kem``'s stanzas addressed to one secret; a subclass says how its KEM turns the
    secret into (private key object, raw public key)."""

    _kem: ClassVar[HpkeKem]

    def __init__(self, identity: str | bytes) -> None:
        secret = self._kem.decode_identity(identity) if isinstance(identity, str) else bytes(identity)
        self._sk, self._pk = self._key_pair(secret)
        self._tag = self._kem.tag(self._pk)

    def _key_pair(self, secret: bytes) -> tuple[Any, bytes]:
        raise NotImplementedError

    @property
    def id(self) -> str:
        return self._kem.encode_recipient(self._pk)

    def unwrap(self, s: Stanza) -> bytes | None:
        return self._kem.unwrap(s, self._sk, self._tag, self.id)
