"""Opening a sealed file: header, unlock, length check, commitment, then chunks.

:class:`SealedFile` is the random-access reader: before serving any byte it authenticates the
header (MAC), the payload keys (commitment) and the length (by opening the final chunk), then
:meth:`SealedFile.read_range` decrypts only the chunks that cover the requested range.
:meth:`SealedFile.iter_chunks` streams the whole plaintext chunk by chunk.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO

from .chunk_cache import DEFAULT_CACHE_BYTES, ChunkCache
from .chunk_pool import check_threads, default_threads, open_whole_chunks
from .errors import TensorSealError, fail
from .format.chunked import PAYLOAD_PREFIX_SIZE, SALT_SIZE, ChunkCipher, Geometry, payload_context
from .format.descriptor import Descriptor
from .format.filekey import payload_input_key
from .format.header import PREFIX_SIZE, ParsedHeader, check_magic, parse_header, parse_prefix
from .format.stanza import Identity
from .format.unlock import unlock_file_key
from .remote import RangeSource, is_url, open_source

MIN_REMOTE_THREADS = 4
"""Default fetch-and-decrypt threads for a remote source: the local default (the usable CPUs,
at most 8) but at least 4, since its reads wait on the network and overlap even on fewer
cores (more than that on 2 cores measured slower on loopback: python/bench/remote_bench.py)."""


def read_header(f: BinaryIO | RangeSource) -> ParsedHeader:
    """Parses the header of an open binary file (no key needed).

    Args:
        f: a seekable binary file positioned anywhere, or a remote source
            (:func:`tensorseal.remote.open_source`): two ranged reads.

    Returns:
        The parsed header.

    Raises:
        TensorSealError: naming the file (``f.name``) when it has a path.

    Example:
        >>> with open("model.tseal", "rb") as f:  # doctest: +SKIP
        ...     print(read_header(f).descriptor.content_type)
        application/vnd.safetensors
    """
    if isinstance(f, RangeSource):
        with naming(f.name):
            head = f.read(0, min(PREFIX_SIZE, f.size))
            check_magic(head)
            prefix = parse_prefix(head)
            return parse_header(head + f.read(PREFIX_SIZE, min(prefix.header_length, f.size) - PREFIX_SIZE))
    with naming(_name_of(f)):
        try:
            f.seek(0)
            head = f.read(PREFIX_SIZE)
            check_magic(head)
            prefix = parse_prefix(head)
            rest = f.read(prefix.header_length - PREFIX_SIZE)
        except OSError as e:
            fail("E_IO", f"cannot read the header: {e.strerror}")
        return parse_header(head + rest)


@contextmanager
def naming(file: str | None) -> Generator[None, None, None]:
    """Every TensorSealError raised inside names ``file`` (the innermost name wins)."""
    try:
        yield
    except TensorSealError as e:
        raise e.naming(file)


def _name_of(source: object) -> str | None:
    """The path of a file given by path, or of a file object opened from one; a URL without
    credentials or query string."""
    if isinstance(source, RangeSource):
        return source.name
    if isinstance(source, (str, bytes, os.PathLike)):
        return os.fsdecode(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else None


class SealedFile:
    """A sealed file opened for authenticated random access.

    Args:
        source: a path, a URL (``s3://``, ``https://``, any fsspec URL: see
            :mod:`tensorseal.remote`), a :class:`~tensorseal.remote.RangeSource`, or a seekable
            binary file object (a file object or source given here is not closed by this class;
            one opened here from a path or URL is).
        identities: the keys to try (kek, passphrase, x25519 identities, a keystore...);
            none are needed for a public (integrity-only) file (FORMAT.md §2.5).
        expect_context: entries the descriptor's encryption context must hold exactly.
        require_encrypted: refuse a public (integrity-only) file with ``E_NOT_ENCRYPTED``
            before reading its payload (a reader that expects ciphertext; see
            ``descriptor.encrypted``).
        threads: threads that decrypt long ranges (default: the usable CPUs, at most 8, when
            pyca/cryptography releases the GIL; see :mod:`tensorseal.chunk_pool`). From a
            remote source they also fetch the chunks, in parallel (default: as locally, at least 4).
        cache_bytes: bound on the authenticated chunks kept for partial reads (default
            32 MiB; 0 keeps none): see :mod:`tensorseal.chunk_cache`.
        source_options: options for :func:`tensorseal.remote.open_source` when ``source``
            is a URL (``client``, ``endpoint_url``, ``headers``, ``retries``...).

    Every :class:`~tensorseal.errors.TensorSealError` it raises names the file (``e.file``,
    and in the message) when it has a path: tampering, truncation, a wrong key, a malformed
    header. Messages never hold key bytes or plaintext.

    Attributes:
        name: the file's path (a URL without credentials or query string), or None for an
            in-memory or anonymous file object.
        source: the remote source read from, or None for a local file or file object (its
            ``bytes_fetched`` and ``requests`` count the network traffic).
        header: the parsed, authenticated header.
        descriptor: the descriptor.
        plaintext_length: the authenticated plaintext length.
        decrypted_bytes: plaintext bytes decrypted so far (tests assert laziness with it).
        chunks_decrypted: chunk openings so far, failed ones included (a cached chunk is
            not opened again).

    Example:
        >>> with SealedFile("model.tseal", identities=[ident]) as sf:  # doctest: +SKIP
        ...     first = sf.read_range(0, 16)
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO | RangeSource,
        identities: Sequence[Identity] = (),
        *,
        expect_context: Mapping[str, str] | None = None,
        require_encrypted: bool = False,
        threads: int | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        source_options: Mapping[str, Any] | None = None,
    ) -> None:
        remote = is_url(source) or isinstance(source, RangeSource)
        if remote and threads is None:
            threads = max(MIN_REMOTE_THREADS, default_threads())
        self.threads = check_threads(threads)
        self._cache = ChunkCache(cache_bytes)
        self._owns = isinstance(source, (str, os.PathLike))
        self.source: RangeSource | None = None
        if is_url(source):
            source = open_source(source, **dict(source_options or {}))  # type: ignore[arg-type]
        if isinstance(source, RangeSource):
            self.source = source
        self.name = _name_of(source)
        with naming(self.name):
            try:
                if self.source is not None:
                    self._f = self.source  # type: ignore[assignment]
                else:
                    self._f: BinaryIO = open(source, "rb") if self._owns else source  # type: ignore[arg-type,no-redef]
            except OSError as e:
                fail("E_IO", f"cannot open the file: {e.strerror}")
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.decrypted_bytes = 0
        self.chunks_decrypted = 0
        try:
            with naming(self.name):
                self._open(identities, expect_context, require_encrypted)
        except BaseException:
            self.close()
            raise

    def _open(
        self, identities: Sequence[Identity], expect: Mapping[str, str] | None, require_encrypted: bool = False
    ) -> None:
        self.header = read_header(self._f)
        self.descriptor: Descriptor = self.header.descriptor
        if expect:
            for k, v in expect.items():
                if self.descriptor.context.get(k) != v:
                    fail("E_CONTEXT", f"encryption context {k!r} does not have the expected value")
        file_key = unlock_file_key(self.header, identities, require_encrypted=require_encrypted)
        size = self.source.size if self.source is not None else self._f.seek(0, io.SEEK_END)
        self._payload_at = self.header.header_length
        self._geo = Geometry(self.descriptor.chunk_size)
        self.plaintext_length = self._check_length(size - self._payload_at)
        prefix = self._pread(self._payload_at, PAYLOAD_PREFIX_SIZE)
        context = payload_context(self.header.descriptor_bytes)
        self._cipher = ChunkCipher(payload_input_key(file_key), prefix[:SALT_SIZE], context,
                                   self.descriptor.chunk_size)
        self._cipher.check_commitment(prefix[SALT_SIZE:])
        # Random access authenticates the length first by opening the final chunk (§4.3).
        last = self._geo.chunk_count(self.plaintext_length) - 1
        self._last_index = last
        self._last_plain = self._decrypt_chunk(last)

    def _check_length(self, payload_length: int) -> int:
        length = self._geo.plaintext_length(payload_length)
        recorded = self.descriptor.plaintext_length
        if recorded is not None and recorded != length:
            fail(
                "E_TRUNCATED" if recorded > length else "E_TRAILING",
                f"payload holds {length} bytes but the descriptor records {recorded}",
            )
        return length

    def _fd(self) -> int:
        if not hasattr(self._f, "fileno"):
            return -1
        try:
            return self._f.fileno()
        except (OSError, io.UnsupportedOperation):
            return -1

    def _pread(self, offset: int, n: int) -> bytearray:
        buf = bytearray(n)
        self._pread_into(offset, memoryview(buf))
        return buf  # not copied into bytes: the AEAD reads any buffer

    def _pread_into(self, offset: int, buf: memoryview) -> None:
        """Fills ``buf`` from ``offset``; safe from several threads (positional reads, or
        seek+read under a lock for file objects without a descriptor)."""
        if self.source is not None:
            self.source.read_into(offset, buf)
            return
        n, got = len(buf), 0
        try:
            fd = self._fd()
            if fd >= 0 and hasattr(os, "preadv"):
                while got < n:
                    k = os.preadv(fd, [buf[got:]], offset + got)
                    if k == 0:
                        break
                    got += k
            else:
                with self._lock:
                    self._f.seek(offset)
                    readinto = getattr(self._f, "readinto", None)
                    while got < n:
                        if readinto is not None:
                            k = readinto(buf[got:])
                        else:  # a file object with read() only
                            part = self._f.read(n - got)
                            k = len(part)
                            buf[got : got + k] = part
                        if not k:
                            break
                        got += k
        except OSError as e:
            fail("E_IO", f"cannot read the sealed file: {e.strerror}")
        if got != n:
            fail("E_TRUNCATED", "the file changed size while being read")

    def _sealed_length(self, index: int) -> int:
        return self._geo.chunk_plaintext_length(index, self.plaintext_length) + 16

    def _count(self, chunks: int, nbytes: int) -> None:
        with self._count_lock:
            self.chunks_decrypted += chunks
            self.decrypted_bytes += nbytes

    def _decrypt_chunk(self, index: int) -> bytes:
        at = self._payload_at + self._geo.chunk_offset(index)
        sealed = self._pread(at, self._sealed_length(index))
        self._count(1, len(sealed) - 16)
        return self._cipher.open(index, sealed)

    def _plain_chunk(self, index: int, keep: bool = True) -> bytes:
        """One authenticated chunk: the final chunk (kept since opening), a cached one, or
        decrypted now and, if ``keep``, cached (only once it has authenticated)."""
        if index == self._last_index:
            return self._last_plain
        pt = self._cache.get(index)
        if pt is None:
            pt = self._decrypt_chunk(index)
            if keep:
                self._cache.put(index, pt)
        return pt

    @property
    def chunk_size(self) -> int:
        return self.descriptor.chunk_size

    @property
    def cache(self) -> ChunkCache:
        """The authenticated chunks kept for partial reads."""
        return self._cache

    def read_range(self, offset: int, length: int, out: memoryview | bytearray | None = None) -> memoryview:
        """Authenticated plaintext bytes ``[offset, offset + length)``.

        Only the chunks that cover the range are read and decrypted. Whole chunks inside the
        range are decrypted straight into the output buffer, on :attr:`threads` threads when
        there are many; chunks the range covers only in part come from the chunk cache, or are
        decrypted and cached.

        Args:
            offset: first plaintext byte.
            length: number of bytes; the range must lie inside the plaintext.
            out: optional writable buffer of exactly ``length`` bytes to fill.

        Returns:
            A memoryview of the bytes (over ``out`` when given).

        Example:
            >>> bytes(sf.read_range(10, 4))  # doctest: +SKIP
            b'\\x0a\\x0b\\x0c\\x0d'
        """
        with naming(self.name):
            return self._read_range(offset, length, out)

    def _read_range(self, offset: int, length: int, out: memoryview | bytearray | None) -> memoryview:
        if offset < 0 or length < 0 or offset + length > self.plaintext_length:
            fail("E_USAGE", f"range {offset}+{length} is outside the plaintext ({self.plaintext_length} bytes)")
        buf = memoryview(bytearray(length) if out is None else out).cast("B")
        if len(buf) != length:
            fail("E_USAGE", f"output buffer holds {len(buf)} bytes, range needs {length}")
        if length == 0:
            return buf
        c, end = self.chunk_size, offset + length
        first, last = offset // c, (end - 1) // c
        # Chunks wholly inside the range, but never the final chunk (opened at open time).
        lo = first if offset % c == 0 else first + 1
        hi = last + 1 if end == last * c + self._geo.chunk_plaintext_length(last, self.plaintext_length) else last
        hi = min(hi, self._last_index)
        for index in sorted({first, last}):
            if lo <= index < hi:
                continue
            start = index * c
            a, b = max(offset, start), min(end, start + c)
            buf[a - offset : b - offset] = self._plain_chunk(index)[a - start : b - start]
        if hi > lo:
            open_whole_chunks(
                self._cipher, self._pread_into, self._payload_at + self._geo.chunk_offset(0), c,
                lo, hi, buf[lo * c - offset : hi * c - offset], self.threads, self._count,
            )  # fmt: skip
        return buf

    def read_all(self) -> bytes:
        """The whole authenticated plaintext."""
        return bytes(self.read_range(0, self.plaintext_length))

    def iter_chunks(self) -> Iterator[bytes]:
        """Streams the plaintext, chunk by chunk, each authenticated before it is yielded.

        From a remote source, chunks are fetched 8 MiB at a time in parallel (one request per
        chunk would wait on the network for each)."""
        if self.source is not None and self._last_index > 0:
            yield from self._iter_windows()
            return
        for index in range(self._last_index):
            with naming(self.name):
                chunk = self._plain_chunk(index, keep=False)  # a stream reads each chunk once
            yield chunk
        yield self._last_plain

    def _iter_windows(self, window: int = 8 << 20) -> Iterator[bytes]:
        c = self.chunk_size
        step = max(1, window // c) * c
        end = self._last_index * c  # the final chunk is already open
        for at in range(0, end, step):
            with naming(self.name):
                buf = self.read_range(at, min(step, end - at))
            for k in range(0, len(buf), c):
                yield bytes(buf[k : k + c])
        yield self._last_plain

    def close(self) -> None:
        """Closes the underlying file if this object opened it."""
        if self._owns and not self._f.closed:
            self._f.close()

    def __enter__(self) -> SealedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_bytes(data: bytes, identities: Sequence[Identity] = (), *, require_encrypted: bool = False) -> bytes:
    """Opens a whole sealed file held in memory.

    Args:
        data: the sealed file.
        identities: the keys to try (none for a public file).
        require_encrypted: refuse a public (integrity-only) file (``E_NOT_ENCRYPTED``).

    Returns:
        The authenticated plaintext.

    Example:
        >>> open_bytes(seal_bytes(b"hi", [recipient]), [identity])  # doctest: +SKIP
        b'hi'
    """
    with SealedFile(io.BytesIO(data), identities, require_encrypted=require_encrypted) as sf:
        return sf.read_all()


def open_file(
    path: str | os.PathLike[str], identities: Sequence[Identity] = (), *, require_encrypted: bool = False
) -> bytes:
    """Opens a sealed file on disk and returns its whole plaintext (see :class:`SealedFile`)."""
    with SealedFile(path, identities, require_encrypted=require_encrypted) as sf:
        return sf.read_all()


__all__ = ["SealedFile", "naming", "open_bytes", "open_file", "read_header", "TensorSealError"]
