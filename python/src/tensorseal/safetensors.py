"""Sealed safetensors with the safetensors library's names: ``load_file``, ``save_file``,
``load``, ``save`` and ``safe_open`` (NumPy arrays; see :mod:`tensorseal.torch` for PyTorch).

Plaintext never touches the disk: ``save_file`` builds the safetensors bytes in memory piece
by piece and seals them as they are produced; ``load_file`` decrypts the payload straight into
one preallocated buffer, on several threads (:mod:`tensorseal.chunk_pool`);
``safe_open(...).get_tensor`` and ``get_slice`` decrypt only the chunks that cover what they
read, and a handle keeps the chunks that tensors share (:mod:`tensorseal.chunk_cache`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, BinaryIO

import numpy as np

from .errors import error, fail
from .format.stanza import Identity, Recipient
from .chunk_cache import DEFAULT_CACHE_BYTES
from .data_buffer import DataBuffer
from .reader import SealedFile, naming
from .slices import SealedSlice
from .st_format import CONTENT_TYPE, Layout, build_header, header_size, parse_header
from .output import atomic_output
from .writer import DEFAULT_CHUNK_SIZE, Sealer

__all__ = ["load_file", "save_file", "load", "save", "safe_open", "CONTENT_TYPE"]

NP_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"), "U8": np.dtype("u1"), "I8": np.dtype("i1"),
    "I16": np.dtype("<i2"), "U16": np.dtype("<u2"), "F16": np.dtype("<f2"),
    "I32": np.dtype("<i4"), "U32": np.dtype("<u4"), "F32": np.dtype("<f4"),
    "I64": np.dtype("<i8"), "U64": np.dtype("<u8"), "F64": np.dtype("<f8"),
}  # fmt: skip
_ST_NAMES = {(d.kind, d.itemsize): name for name, d in NP_DTYPES.items()}


def np_dtype(dtype: str) -> np.dtype[Any]:
    """NumPy dtype of a safetensors dtype (``E_UNSUPPORTED`` for BF16 / F8 in NumPy)."""
    d = NP_DTYPES.get(dtype)
    if d is None:
        fail("E_UNSUPPORTED", f"dtype {dtype} has no NumPy equivalent: use framework='pt'")
    return d


def st_dtype(d: np.dtype[Any]) -> str:
    """safetensors dtype name of a NumPy dtype."""
    name = _ST_NAMES.get((d.kind, d.itemsize))
    if name is None:
        fail("E_USAGE", f"NumPy dtype {d} cannot be stored in safetensors")
    return name


class SealedSafetensors:
    """A sealed safetensors file opened for random access (shared by NumPy and torch APIs).

    Args:
        source: path or seekable binary file, or a :class:`~tensorseal.reader.SealedFile`
            already opened (and checked) by the caller, which this object then owns and closes.
        identities: keys to try (unused when ``source`` is a SealedFile).
        threads: decryption threads for long reads (see :class:`~tensorseal.reader.SealedFile`).
        cache_bytes: bound on the chunks kept for partial reads.
        require_encrypted: refuse a public (integrity-only, not encrypted) file with
            ``E_NOT_ENCRYPTED`` before any key is asked for.

    Attributes:
        layout: the parsed safetensors header.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO | SealedFile,
        identities: Sequence[Identity],
        *,
        threads: int | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        require_encrypted: bool = False,
    ) -> None:
        if isinstance(source, SealedFile):
            self.sealed = source
        else:
            self.sealed = SealedFile(
                source,
                _as_list(identities),
                threads=threads,
                cache_bytes=cache_bytes,
                require_encrypted=require_encrypted,
            )
        try:
            with naming(self.sealed.name):
                total = self.sealed.plaintext_length
                n = header_size(bytes(self.sealed.read_range(0, min(8, total))), total)
                header = bytes(self.sealed.read_range(8, n))
                self.layout: Layout = parse_header(header, total)
        except BaseException:
            self.sealed.close()
            raise

    @property
    def decrypted_bytes(self) -> int:
        """Plaintext bytes decrypted so far (header, final chunk and tensors read)."""
        return self.sealed.decrypted_bytes

    @property
    def chunks_decrypted(self) -> int:
        """Chunk openings so far (see :class:`~tensorseal.reader.SealedFile`)."""
        return self.sealed.chunks_decrypted

    def read_into(self, name: str, out: memoryview) -> None:
        """Decrypts tensor ``name``'s bytes into ``out`` (exactly its byte length)."""
        t = self._info(name)
        if t.end > t.begin:
            self.sealed.read_range(self.layout.data_offset + t.begin, t.end - t.begin, out)

    def read_data(self, out: memoryview) -> None:
        """Decrypts the whole data section into ``out``."""
        if self.layout.data_length:
            self.sealed.read_range(self.layout.data_offset, self.layout.data_length, out)

    def _info(self, name: str):  # type: ignore[no-untyped-def]
        t = self.layout.tensors.get(name)
        if t is None:
            raise error("E_USAGE", f"no tensor named {name!r} in this file").naming(self.sealed.name)
        return t

    def naming(self) -> AbstractContextManager[None]:
        """Errors raised inside name this file."""
        return naming(self.sealed.name)

    def close(self) -> None:
        self.sealed.close()


def _as_list(identities: Identity | Sequence[Identity] | None) -> list[Identity]:
    if identities is None:
        fail("E_NO_IDENTITY", "no key given: pass identities=[...]")
    if isinstance(identities, Identity):
        return [identities]
    return list(identities)


def _array(buf: np.ndarray, begin: int, end: int, dtype: np.dtype[Any], shape: tuple[int, ...]) -> np.ndarray:
    return buf[begin:end].view(dtype).reshape(shape)


def np_empty(dtype: str, shape: tuple[int, ...]) -> tuple[np.ndarray, memoryview]:
    """A new array and a writable byte view of it."""
    arr = np.empty(shape, dtype=np_dtype(dtype))
    return arr, memoryview(arr.reshape(-1).view(np.uint8))


class safe_open:
    """Lazy access to a sealed safetensors file, as ``safetensors.safe_open``.

    Args:
        filename: the ``.tseal`` file (or a SealedFile opened by the caller, then owned here).
        framework: ``"np"`` (NumPy) or ``"pt"`` (PyTorch).
        device: ``"cpu"``, or a torch device for ``framework="pt"``.
        identities: keys to try (a list, or one identity / keystore).
        threads: decryption threads for a large tensor (default: the usable CPUs, at most 8).
        cache_bytes: bound on the authenticated chunks the handle keeps (default 32 MiB).

    A handle decrypts a chunk that several tensors share (the one where one tensor ends and
    the next begins, or chunk 0 with the header) once and keeps it, least recently used first
    out, within ``cache_bytes``; chunks inside one tensor go straight into that tensor and
    are not kept. Reading every tensor in file order (:meth:`offset_keys`, and :meth:`keys`
    for single-dtype files) decrypts each chunk exactly once; in any order it does so while the
    shared chunks fit the bound (32 MiB holds 32 chunks of the default 1 MiB). A chunk that
    fails authentication is never kept: it fails again on every read.

    Example:
        >>> with safe_open("model.tseal", framework="np", identities=[ks]) as f:  # doctest: +SKIP
        ...     w = f.get_tensor("layer.0.weight")   # decrypts only the chunks it covers
        ...     rows = f.get_slice("embed")[:128]     # only the chunks of those rows
    """

    def __init__(
        self,
        filename: str | os.PathLike[str] | SealedFile,
        framework: str = "np",
        device: str = "cpu",
        *,
        identities: Identity | Sequence[Identity],
        threads: int | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        if framework not in ("np", "numpy", "pt", "torch"):
            fail("E_USAGE", f"framework {framework!r} is not supported (np or pt)")
        if framework in ("np", "numpy") and device != "cpu":
            fail("E_USAGE", "framework='np' only supports device='cpu'")
        self._pt = framework in ("pt", "torch")
        self._device = device
        self._file = SealedSafetensors(filename, _as_list(identities), threads=threads, cache_bytes=cache_bytes)

    def __enter__(self) -> safe_open:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def keys(self) -> list[str]:
        """Tensor names, sorted."""
        return sorted(self._file.layout.tensors)

    def offset_keys(self) -> list[str]:
        """Tensor names in data order."""
        return list(self._file.layout.tensors)

    def metadata(self) -> dict[str, str] | None:
        """The ``__metadata__`` map, or None."""
        m = self._file.layout.metadata
        return None if m is None else dict(m)

    @property
    def decrypted_bytes(self) -> int:
        """Plaintext bytes decrypted so far."""
        return self._file.decrypted_bytes

    @property
    def chunks_decrypted(self) -> int:
        """Chunk openings so far: each cached chunk counts once."""
        return self._file.chunks_decrypted

    def get_tensor(self, name: str) -> Any:
        """Decrypts one tensor (only the chunks covering it) into a new array or tensor."""
        if self._pt:
            from .torch import _read_tensor

            return _read_tensor(self._file, name, self._device)
        with self._file.naming():
            t = self._file._info(name)
            arr, view = np_empty(t.dtype, t.shape)
            self._file.read_into(name, view)
        return arr

    def get_slice(self, name: str) -> SealedSlice:
        """Tensor ``name`` to slice before decrypting, as safetensors' ``get_slice``:
        ``get_shape()``, ``get_dtype()`` and ``[rows, ...]`` indexing, which decrypts only
        the chunks covering the selected rows of the first dimension (see
        :mod:`tensorseal.slices`)."""
        with self._file.naming():
            if self._pt:
                from .torch import _device_mover, pt_empty

                return SealedSlice(self._file, name, pt_empty, _device_mover(self._device))
            return SealedSlice(self._file, name, np_empty, lambda a: a)

    def close(self) -> None:
        self._file.close()


def load_file(
    filename: str | os.PathLike[str],
    *,
    identities: Identity | Sequence[Identity],
    device: str = "cpu",
    threads: int | None = None,
    require_signer: Any = None,
    require_encrypted: bool = False,
) -> dict[str, np.ndarray]:
    """Opens a sealed safetensors file into NumPy arrays.

    The data section is decrypted chunk by chunk straight into one preallocated buffer, on
    ``threads`` threads; the arrays are views into it (no further copy). If any chunk fails to
    authenticate, nothing is returned and the buffer is wiped before the error propagates.

    Args:
        filename: the ``.tseal`` file.
        identities: keys to try.
        device: only ``"cpu"`` for NumPy.
        threads: decryption threads (default: the usable CPUs, at most 8, with
            pyca/cryptography >= 50; 1 decrypts on the calling thread).
        require_signer: the producer's ECDSA public key (PEM path or bytes): ``FILE.sig``
            (``tensorseal seal --sign``) must be its signature of this sealed file, checked
            before decrypting, and the plaintext the signed one (``E_SIGNATURE`` otherwise).
        require_encrypted: refuse a public (integrity-only, not encrypted) file with
            ``E_NOT_ENCRYPTED`` (spec/FORMAT.md §2.5): where weights are expected to be secret,
            a public file put in their place is an attack, not a model.

    Returns:
        name -> array.

    Example:
        >>> tensors = load_file("model.tseal", identities=[ks])  # doctest: +SKIP
    """
    if device != "cpu":
        fail("E_USAGE", "NumPy arrays live on the CPU: use tensorseal.torch.load_file for devices")
    binding = _signed(filename, require_signer)
    f = SealedSafetensors(filename, _as_list(identities), threads=threads, require_encrypted=require_encrypted)
    try:
        with f.naming():
            return _load_np(f, _signed_check(binding, f))
    finally:
        f.close()


def _signed(filename: str | os.PathLike[str], require_signer: Any) -> Any:
    """The signed binding of ``filename`` when a signer is required (keyless check), else None."""
    if require_signer is None:
        return None
    from .hf.provenance import verify_sealed_file

    return verify_sealed_file(filename, require_signer)


def _signed_check(binding: Any, f: SealedSafetensors) -> Callable[[memoryview], None] | None:
    if binding is None:
        return None
    from .hf.provenance import plaintext_check

    return plaintext_check(binding, f.sealed.read_range(0, f.layout.data_offset))


def _load_np(f: SealedSafetensors, check: Callable[[memoryview], None] | None = None) -> dict[str, np.ndarray]:
    """Every tensor of ``f``; ``check`` sees the decrypted data section before any array is
    made from it (tensorseal.hf checks a model file's digest there)."""
    dtypes = {n: np_dtype(t.dtype) for n, t in f.layout.tensors.items()}
    data = DataBuffer(f.layout.data_length)
    fill_data(f, data, check)
    buf = data.array
    return {n: _array(buf, t.begin, t.end, dtypes[n], t.shape) for n, t in f.layout.tensors.items()}


def fill_data(f: SealedSafetensors, data: DataBuffer, check: Callable[[memoryview], None] | None) -> None:
    """Decrypts ``f``'s data section into ``data`` and runs ``check`` on it; on any failure
    the buffer is wiped (:meth:`DataBuffer.discard`) before the error propagates."""
    try:
        f.read_data(memoryview(data.array))
        if check is not None:
            check(memoryview(data.array))
    except BaseException:
        data.discard()
        raise


def load(data: bytes, *, identities: Identity | Sequence[Identity], threads: int | None = None) -> dict[str, np.ndarray]:
    """As :func:`load_file`, from the sealed file's bytes in memory."""
    f = SealedSafetensors(io.BytesIO(data), _as_list(identities), threads=threads)
    try:
        return _load_np(f)
    finally:
        f.close()


def _pieces(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None) -> tuple[int, Iterator[memoryview | bytes]]:
    arrays = {}
    shapes = {}
    for name, a in tensors.items():
        if not isinstance(name, str):
            fail("E_USAGE", "tensor names must be strings")
        a = np.asarray(a)
        shapes[name] = tuple(a.shape)  # ascontiguousarray would turn a 0-d array into 1-d
        dtype = a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype
        arrays[name] = np.ascontiguousarray(a, dtype=dtype).reshape(-1)
    entries = {n: (st_dtype(a.dtype), shapes[n], a.nbytes) for n, a in arrays.items()}
    head, order = build_header(entries, metadata)
    total = len(head) + sum(a.nbytes for a in arrays.values())

    def gen() -> Iterator[memoryview | bytes]:
        yield head
        for n in order:
            if arrays[n].nbytes:
                yield memoryview(arrays[n].view(np.uint8))

    return total, gen()


def seal_pieces(
    total: int,
    pieces: Iterator[memoryview | bytes],
    out: BinaryIO,
    recipients: Sequence[Recipient],
    options: Mapping[str, Any],
) -> None:
    """Seals safetensors pieces to ``out`` with the safetensors content type."""
    s = Sealer(list(recipients), plaintext_length=total, content_type=CONTENT_TYPE, **options)
    out.write(s.start())
    for p in pieces:
        for c in s.push(p):
            out.write(c)
    out.write(s.finish())


def _options(chunk_size: int, context: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> dict[str, Any]:
    return {"chunk_size": chunk_size, "context": context, "labels": labels}


def _recipients(recipients: Recipient | Sequence[Recipient] | None) -> list[Recipient]:
    if recipients is None:
        fail("E_USAGE", "a sealed file needs at least one recipient: pass recipients=[...]")
    if isinstance(recipients, Recipient):
        return [recipients]
    return list(recipients)


def save_file(
    tensors: Mapping[str, np.ndarray],
    filename: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
    *,
    recipients: Recipient | Sequence[Recipient],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    context: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Writes a sealed safetensors file; no plaintext reaches the disk.

    Args:
        tensors: name -> array (stored little-endian, C order).
        filename: destination, written atomically.
        metadata: optional ``__metadata__`` string map (inside the encryption).
        recipients: who may open it (e.g. ``[ks.recipient("default")]``, ``[X25519Recipient(...)]``).
        chunk_size: payload chunk size (default 1 MiB).
        context: encryption context (public, authenticated).
        labels: public labels.

    Example:
        >>> save_file({"w": np.zeros(3, np.float32)}, "w.tseal", recipients=[r])  # doctest: +SKIP
    """
    total, pieces = _pieces(tensors, metadata)
    with atomic_output(filename) as out:
        seal_pieces(total, pieces, out, _recipients(recipients), _options(chunk_size, context, labels))


def save(
    tensors: Mapping[str, np.ndarray],
    metadata: Mapping[str, str] | None = None,
    *,
    recipients: Recipient | Sequence[Recipient],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    context: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> bytes:
    """As :func:`save_file`, returning the sealed file's bytes."""
    total, pieces = _pieces(tensors, metadata)
    out = io.BytesIO()
    seal_pieces(total, pieces, out, _recipients(recipients), _options(chunk_size, context, labels))
    return out.getvalue()
