"""One exception hierarchy for the package, mirroring the TypeScript error codes.

Every failure raised by tensorseal is a :class:`TensorSealError` whose ``code`` is one of the
stable codes of ``spec/FORMAT.md`` §8 (and ``E_USAGE``, ``E_KEYSTORE``, ``E_SIGNATURE``,
``E_IO``). Each code also has its own subclass, so callers may catch either the base class and
look at ``code``, or one subclass. Messages say what failed and what to do; they never contain
key material, passphrases or plaintext.
"""

from __future__ import annotations

import os
from typing import Literal, NoReturn

ErrorCode = Literal[
    "E_USAGE",
    "E_NOT_TSEAL",
    "E_UNSUPPORTED",
    "E_MALFORMED",
    "E_NO_IDENTITY",
    "E_HEADER_MAC",
    "E_COMMITMENT",
    "E_CONTEXT",
    "E_DECRYPT",
    "E_NOT_ENCRYPTED",
    "E_TRUNCATED",
    "E_TRAILING",
    "E_KEY",
    "E_KEYSTORE",
    "E_KEY_STATE",
    "E_PROVIDER",
    "E_SIGNATURE",
    "E_IO",
]


def printable(text: str) -> str:
    r"""``text`` with control and other non-printable characters escaped (``\x1b``, ``\u202e``).

    Strings read from a file (a header's names, labels, a path in a checkpoint) go through it
    before they reach a message, so a hostile file cannot move a terminal's cursor or recolour
    what the user reads.

    Example:
        >>> printable("models/prod\x1b[2J")
        'models/prod\\x1b[2J'
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class TensorSealError(Exception):
    """Base class of every tensorseal error.

    Attributes:
        code: the stable error code, e.g. ``"E_DECRYPT"``.
        message: what failed and what to do (without the code and file).
        file: the sealed file being read when the error happened, or None.

    Errors pickle as themselves (code, message, file), so a failure on another rank or in a
    worker process reaches the caller intact.

    Example:
        >>> try:
        ...     fail("E_DECRYPT", "chunk 0 failed authentication")
        ... except TensorSealError as e:
        ...     print(e.code)
        E_DECRYPT
    """

    code: ErrorCode = "E_USAGE"
    file: str | None = None

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        where = f"{printable(self.file)}: " if self.file else ""
        return f"{self.code}: {where}{self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        # Exception's default rebuilds from args (the message only), which this __init__ refuses.
        return (type(self), (self.code, self.message), dict(self.__dict__))

    def naming(self, file: str | os.PathLike[str] | None) -> TensorSealError:
        """Records the file the error is about (the innermost one wins); returns ``self``."""
        if self.file is None and file is not None:
            self.file = os.fsdecode(file)
        return self


class UsageError(TensorSealError):
    """Bad arguments or options (``E_USAGE``)."""


class NotTsealError(TensorSealError):
    """The input does not start with the .tseal magic (``E_NOT_TSEAL``)."""


class UnsupportedError(TensorSealError):
    """A version, suite or parameter this reader does not implement (``E_UNSUPPORTED``)."""


class MalformedError(TensorSealError):
    """Header bytes violate the spec (``E_MALFORMED``)."""


class NoIdentityError(TensorSealError):
    """No stanza could be unwrapped by the identities given (``E_NO_IDENTITY``)."""


class HeaderMacError(TensorSealError):
    """The header was modified, or a stanza came from another file (``E_HEADER_MAC``)."""


class CommitmentError(TensorSealError):
    """Key commitment mismatch: wrong key or context (``E_COMMITMENT``)."""


class ContextError(TensorSealError):
    """The encryption context lacks an expected entry or holds another value (``E_CONTEXT``)."""


class DecryptError(TensorSealError):
    """A stanza or chunk failed authentication (``E_DECRYPT``)."""


class NotEncryptedError(TensorSealError):
    """A public (integrity-only) file where the caller requires encryption (``E_NOT_ENCRYPTED``)."""


class TruncatedError(TensorSealError):
    """The ciphertext ends before the final chunk (``E_TRUNCATED``)."""


class TrailingError(TensorSealError):
    """Data after the final chunk (``E_TRAILING``)."""


class InvalidKeyError(TensorSealError):
    """A key has the wrong size or encoding (``E_KEY``)."""


class KeystoreError(TensorSealError):
    """Keystore missing, locked, modified, or the key is unusable (``E_KEYSTORE``)."""


class KeyStateError(TensorSealError):
    """A key version exists but its lifecycle state forbids this use (``E_KEY_STATE``)."""


class ProviderError(TensorSealError):
    """An HSM or KMS failed or refused (``E_PROVIDER``)."""


class SignatureError(TensorSealError):
    """A required signer's signature is missing, foreign, or does not cover the files (``E_SIGNATURE``)."""


class StorageError(TensorSealError):
    """File system error (``E_IO``)."""


_CLASSES: dict[str, type[TensorSealError]] = {
    "E_USAGE": UsageError,
    "E_NOT_TSEAL": NotTsealError,
    "E_UNSUPPORTED": UnsupportedError,
    "E_MALFORMED": MalformedError,
    "E_NO_IDENTITY": NoIdentityError,
    "E_HEADER_MAC": HeaderMacError,
    "E_COMMITMENT": CommitmentError,
    "E_CONTEXT": ContextError,
    "E_DECRYPT": DecryptError,
    "E_NOT_ENCRYPTED": NotEncryptedError,
    "E_TRUNCATED": TruncatedError,
    "E_TRAILING": TrailingError,
    "E_KEY": InvalidKeyError,
    "E_KEYSTORE": KeystoreError,
    "E_KEY_STATE": KeyStateError,
    "E_PROVIDER": ProviderError,
    "E_SIGNATURE": SignatureError,
    "E_IO": StorageError,
}

ERROR_CODES: frozenset[str] = frozenset(_CLASSES)


def error(code: ErrorCode, message: str) -> TensorSealError:
    """Builds the subclass of :class:`TensorSealError` for ``code``.

    Args:
        code: one of :data:`ERROR_CODES`.
        message: what failed and what to do; never secrets.

    Returns:
        The exception, not raised.

    Example:
        >>> error("E_KEY", "bad key").code
        'E_KEY'
    """
    return _CLASSES[code](code, message)


def fail(code: ErrorCode, message: str) -> NoReturn:
    """Raises the :class:`TensorSealError` subclass for ``code``.

    Args:
        code: one of :data:`ERROR_CODES`.
        message: what failed and what to do; never secrets.

    Example:
        >>> fail("E_USAGE", "no recipient")
        Traceback (most recent call last):
        ...
        tensorseal.errors.UsageError: E_USAGE: no recipient
    """
    raise error(code, message)
