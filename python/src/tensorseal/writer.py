"""Sealing: a fresh file key wrapped for every recipient, a descriptor, the chunked payload.

Outputs go through :class:`~tensorseal.output.atomic_output` (an unnamed temporary file beside
the destination, fsynced, then linked or renamed into place), so a failed or interrupted seal
never leaves a partial file; only ciphertext ever reaches the disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, BinaryIO, ContextManager

from .errors import fail
from .format.chunked import payload_context
from .format.descriptor import (
    DEFAULT_CONTENT_TYPE,
    SUITE_COBBLESTONE_AES256GCM_SHA512,
    SUITE_PUBLIC_INTEGRITY,
    Descriptor,
    encode_descriptor,
)
from .format.filekey import FILE_KEY_SIZE, generate_file_key, payload_input_key
from .format.header import DEFAULT_SLOT_CAPACITY, encode_header
from .format.payload import PayloadSealer
from .format.public import public_stanza
from .format.stanza import Recipient, Stanza
from .output import atomic_output

DEFAULT_CHUNK_SIZE = 1 << 20
_PIECE = 8 << 20


class Sealer:
    """Streams one sealed file: call :meth:`header` first, then :meth:`push`, then :meth:`finish`.

    Args:
        recipients: who may open the file (at least one, at most 128).
        plaintext_length: the plaintext length if known (recorded in the descriptor).
        chunk_size: plaintext bytes per chunk (default 1 MiB; 16 KiB is Cobblestone-256).
        content_type: recorded in the descriptor.
        context: encryption context (public, authenticated, bound into the payload keys).
        labels: public labels.
        file_key: fixed file key, for deterministic test vectors only.
        salt: fixed 24-byte payload salt, for deterministic test vectors only.
        stanzas: extra pre-built stanzas placed before the recipients' (test vectors only).
        slot_capacity: header slot size (default 8192).
        public: seal a public (integrity-only, not encrypted) file of tier ``public``
            (FORMAT.md §2.5): readable by anyone with no key, tamper-evident; takes no
            recipients.
        suite: the descriptor suite (2 is ``public=True``; for test vectors).
    """

    def __init__(
        self,
        recipients: Sequence[Recipient],
        *,
        plaintext_length: int | None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        content_type: str = DEFAULT_CONTENT_TYPE,
        context: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        file_key: bytes | None = None,
        salt: bytes | None = None,
        stanzas: Sequence[Stanza] = (),
        slot_capacity: int = DEFAULT_SLOT_CAPACITY,
        public: bool = False,
        suite: int = SUITE_COBBLESTONE_AES256GCM_SHA512,
    ) -> None:
        if public:
            if recipients:
                fail("E_USAGE", "a public file is not encrypted: it takes no recipients")
            suite = SUITE_PUBLIC_INTEGRITY
            labels = {**dict(labels or {}), "tensorseal:tier": "public"}
        drawn = _draw_file_key(recipients) if file_key is None else None
        fk = drawn[1] if drawn else generate_file_key() if file_key is None else bytes(file_key)
        if len(fk) != FILE_KEY_SIZE:
            fail("E_KEY", "file key must be 32 bytes")
        if suite == SUITE_PUBLIC_INTEGRITY and not recipients and not stanzas:
            stanzas = [public_stanza(fk)]
        if not recipients and not stanzas:
            fail("E_USAGE", "a file needs at least one recipient")
        descriptor = Descriptor(
            chunk_size=chunk_size,
            plaintext_length=plaintext_length,
            content_type=content_type,
            context=dict(context or {}),
            labels=dict(labels or {}),
            suite=suite,
        )
        descriptor_bytes = encode_descriptor(descriptor)
        all_stanzas = list(stanzas) + [drawn[2] if drawn and r is drawn[0] else r.wrap(fk) for r in recipients]
        self.header = encode_header(fk, descriptor_bytes, all_stanzas, slot_capacity)
        self._payload = PayloadSealer(
            payload_input_key(fk), payload_context(descriptor_bytes), chunk_size, salt
        )
        self._expected = plaintext_length
        self._seen = 0

    def start(self) -> bytes:
        """Header and payload prefix (salt, commitment): the first bytes of the file."""
        return self.header + self._payload.prefix

    def push(self, plaintext: bytes | memoryview) -> list[bytes]:
        """Sealed chunks completed by this input."""
        self._seen += len(memoryview(plaintext).cast("B"))
        return self._payload.push(plaintext)

    def finish(self) -> bytes:
        """The final chunk; ``E_USAGE`` if the plaintext length differs from the one declared."""
        if self._expected is not None and self._seen != self._expected:
            fail("E_USAGE", f"plaintext was {self._seen} bytes, {self._expected} were declared")
        return self._payload.finish()


def _draw_file_key(recipients: Sequence[Recipient]) -> tuple[Recipient, bytes, Stanza] | None:
    """The first recipient that can draw the file key (an AWS KMS key: GenerateDataKey) does;
    the others then wrap it, as the CLI seals (src/engine/seal-header.ts)."""
    for r in recipients:
        generate = getattr(r, "generate", None)
        drawn = generate() if generate is not None else None
        if drawn is not None:
            fk, stanza = drawn
            if len(fk) != FILE_KEY_SIZE:
                fail("E_KEY", f"{r.id} generated a file key of the wrong size")
            return r, bytes(fk), stanza
    return None


def seal_bytes(
    plaintext: bytes | bytearray | memoryview,
    recipients: Sequence[Recipient],
    **options: object,
) -> bytes:
    """Seals an in-memory plaintext and returns the whole sealed file.

    Args:
        plaintext: the bytes to seal.
        recipients: who may open it.
        **options: as for :class:`Sealer` (chunk_size, content_type, context, labels, ...).

    Returns:
        The .tseal file bytes.

    Example:
        >>> from tensorseal.keys.passphrase import PassphraseRecipient
        >>> len(seal_bytes(b"x", [PassphraseRecipient("pw", work_factor=10)])) > 0
        True
    """
    view = memoryview(plaintext).cast("B")
    s = Sealer(recipients, plaintext_length=len(view), **options)  # type: ignore[arg-type]
    parts = [s.start(), *s.push(view), s.finish()]
    return b"".join(parts)


def seal_to_file(
    chunks: Iterable[bytes | memoryview],
    path: str | os.PathLike[str],
    recipients: Sequence[Recipient],
    *,
    plaintext_length: int | None,
    target_options: Mapping[str, Any] | None = None,
    **options: object,
) -> None:
    """Seals plaintext pieces into ``path`` atomically (see :class:`~tensorseal.output.atomic_output`).

    Args:
        chunks: the plaintext, in pieces of any size.
        path: destination; replaced atomically when the seal succeeds. An ``s3://bucket/key``
            URL streams a multipart upload (bounded memory) that appears only complete and is
            aborted on any failure (:mod:`tensorseal.remote.s3_upload`).
        recipients: who may open it.
        plaintext_length: the total length if known in advance (recorded and checked).
        target_options: for an ``s3://`` output: ``overwrite`` (an existing object is refused
            otherwise), ``client`` / ``endpoint_url`` / ``region``, ``part_size``, ``queue``.
        **options: as for :class:`Sealer`.

    Example:
        >>> seal_to_file([b"hello"], "out.tseal", [recipient], plaintext_length=5)  # doctest: +SKIP
    """
    s = Sealer(recipients, plaintext_length=plaintext_length, **options)  # type: ignore[arg-type]
    with _output(path, target_options) as out:
        out.write(s.start())
        for piece in chunks:
            for sealed in s.push(piece):
                out.write(sealed)
        out.write(s.finish())


def seal_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    recipients: Sequence[Recipient],
    *,
    target_options: Mapping[str, Any] | None = None,
    **options: object,
) -> None:
    """Seals the file ``src`` into ``dst``: a path or an ``s3://`` URL (see :func:`seal_to_file`)."""
    try:
        f = open(src, "rb")
    except OSError as e:
        fail("E_IO", f"cannot open {os.fspath(src)}: {e.strerror}")
    with f:
        size = os.fstat(f.fileno()).st_size
        pieces = iter(lambda: f.read(_PIECE), b"")
        seal_to_file(pieces, dst, recipients, plaintext_length=size, target_options=target_options, **options)


def _output(path: str | os.PathLike[str], target_options: Mapping[str, Any] | None) -> ContextManager[BinaryIO]:
    """The destination: an atomic local file, or an S3 multipart upload for ``s3://``."""
    from .remote.urls import redact_url, url_scheme

    scheme = url_scheme(path)
    if scheme == "s3":
        from .remote.s3_upload import s3_output

        return s3_output(os.fspath(path), **dict(target_options or {}))  # type: ignore[return-value]
    if scheme is not None:
        fail("E_USAGE", f"cannot seal to {redact_url(os.fspath(path))}: the outputs are local paths and s3:// URLs")
    if target_options:
        fail("E_USAGE", "target_options are for s3:// outputs")
    return atomic_output(path)
