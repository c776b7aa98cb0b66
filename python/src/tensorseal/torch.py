"""PyTorch integration (extra ``tensorseal[torch]``): sealed safetensors as torch tensors, and
sealed ``torch.save`` checkpoints. Plaintext only ever lives in memory.

Example:
    >>> import tensorseal.torch as tst  # doctest: +SKIP
    >>> tst.save_file(model.state_dict(), "model.tseal", recipients=[ks.recipient()])  # doctest: +SKIP
    >>> state = tst.load_file("model.tseal", identities=[ks])  # doctest: +SKIP
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import fail
from .format.stanza import Identity, Recipient
from .data_buffer import DataBuffer
from .safetensors import SealedSafetensors, _as_list, _options, _recipients, _signed, _signed_check, fill_data, seal_pieces
from .st_format import build_header
from .output import atomic_output
from .writer import DEFAULT_CHUNK_SIZE, Sealer

try:
    import torch as _torch
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError("tensorseal.torch needs PyTorch: pip install 'tensorseal[torch]'") from e

__all__ = ["load_file", "save_file", "load", "save", "TORCH_CONTENT_TYPE"]

TORCH_CONTENT_TYPE = "application/vnd.pytorch"
_DTYPES: dict[str, Any] = {
    "BOOL": _torch.bool, "U8": _torch.uint8, "I8": _torch.int8,
    "I16": _torch.int16, "F16": _torch.float16, "BF16": _torch.bfloat16,
    "I32": _torch.int32, "F32": _torch.float32, "I64": _torch.int64, "F64": _torch.float64,
}  # fmt: skip
for _name, _attr in (("U16", "uint16"), ("U32", "uint32"), ("U64", "uint64"),
                     ("F8_E5M2", "float8_e5m2"), ("F8_E4M3", "float8_e4m3fn")):  # fmt: skip
    if hasattr(_torch, _attr):
        _DTYPES[_name] = getattr(_torch, _attr)
_NAMES = {v: k for k, v in _DTYPES.items()}


def _torch_dtype(name: str) -> Any:
    d = _DTYPES.get(name)
    if d is None:
        fail("E_UNSUPPORTED", f"dtype {name} is not supported by this PyTorch")
    return d


def pt_empty(dtype: str, shape: tuple[int, ...]) -> tuple[Any, memoryview]:
    """A new CPU tensor and a writable byte view of it."""
    d = _torch_dtype(dtype)
    raw = _torch.empty(math.prod(shape) * _torch.empty((), dtype=d).element_size(), dtype=_torch.uint8)
    return raw.view(d).reshape(shape), memoryview(raw.numpy())


def _device_mover(device: Any) -> Any:
    return (lambda t: t) if str(device) == "cpu" else (lambda t: t.to(device))


def _read_tensor(f: SealedSafetensors, name: str, device: str) -> Any:
    with f.naming():
        t = f._info(name)
        out, view = pt_empty(t.dtype, t.shape)
        f.read_into(name, view)
    return _device_mover(device)(out)


def load_file(
    filename: str | os.PathLike[str],
    *,
    identities: Identity | Sequence[Identity],
    device: str | Any = "cpu",
    threads: int | None = None,
    require_signer: Any = None,
    require_encrypted: bool = False,
) -> dict[str, Any]:
    """Opens a sealed safetensors file into torch tensors (as ``safetensors.torch.load_file``).

    The data section is decrypted into one preallocated CPU buffer, on ``threads`` threads;
    each tensor is a storage of its own bytes in it (no copy), as the plaintext library's,
    moved to ``device`` if it is not the CPU. If any chunk fails to authenticate, nothing is
    returned and the buffer is wiped before the error propagates.

    Args:
        filename: the ``.tseal`` file.
        identities: keys to try.
        device: target device.
        threads: decryption threads (default: the usable CPUs, at most 8, with
            pyca/cryptography >= 50; 1 decrypts on the calling thread).
        require_signer: the producer's ECDSA public key (PEM path or bytes); as for
            :func:`tensorseal.safetensors.load_file`.
        require_encrypted: refuse a public (integrity-only) file with ``E_NOT_ENCRYPTED``; as
            for :func:`tensorseal.safetensors.load_file`.

    Returns:
        name -> tensor.

    Example:
        >>> state = load_file("model.tseal", identities=[ks], device="cuda:0")  # doctest: +SKIP
    """
    binding = _signed(filename, require_signer)
    f = SealedSafetensors(filename, _as_list(identities), threads=threads, require_encrypted=require_encrypted)
    try:
        check = _signed_check(binding, f)
    except BaseException:
        f.close()
        raise
    return _load_pt(f, device, check)


def _load_pt(f: SealedSafetensors, device: Any, check: Callable[[memoryview], None] | None = None) -> dict[str, Any]:
    """Every tensor of ``f`` (closed on return); ``check`` sees the decrypted data section
    before any tensor is made from it (tensorseal.hf checks a model file's digest there).

    One buffer holds the data section (as for NumPy), but each tensor gets a storage of its
    own bytes over it, as ``safetensors.torch.load_file`` returns them: ``torch.save`` of one
    tensor writes that tensor, not the whole model (a view would carry the shared storage)."""
    try:
        with f.naming():
            dtypes = {n: _torch_dtype(t.dtype) for n, t in f.layout.tensors.items()}
            data = DataBuffer(f.layout.data_length)
            fill_data(f, data, check)
    finally:
        f.close()
    out = {n: _own_storage(data.array[t.begin : t.end], dtypes[n], t.shape) for n, t in f.layout.tensors.items()}
    if str(device) != "cpu":
        out = {n: t.to(device) for n, t in out.items()}
    return out


def _own_storage(raw: np.ndarray, dtype: Any, shape: tuple[int, ...]) -> Any:
    """A tensor whose storage is exactly ``raw``'s bytes (``from_numpy`` keeps ``raw``, and so
    the buffer, alive); copied when ``raw`` does not start at a multiple of the element size
    (safetensors does not require alignment; the buffer itself is page-aligned)."""
    t = _torch.from_numpy(raw)
    if raw.ctypes.data % _torch.empty((), dtype=dtype).element_size():
        t = t.clone()
    return t.view(dtype).reshape(shape)


def _pieces(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None) -> tuple[int, Iterator[Any]]:
    flat: dict[str, Any] = {}
    entries = {}
    for name, t in tensors.items():
        if not isinstance(t, _torch.Tensor):
            fail("E_USAGE", f"{name!r} is not a torch.Tensor")
        if t.layout != _torch.strided:
            fail("E_USAGE", f"{name!r} is a sparse tensor: safetensors stores dense tensors only")
        dtype = _NAMES.get(t.dtype)
        if dtype is None:
            fail("E_USAGE", f"{name!r} has dtype {t.dtype}, which safetensors cannot store")
        c = t.detach().to("cpu").contiguous().reshape(-1)
        flat[name] = c.view(_torch.uint8) if c.numel() else _torch.empty(0, dtype=_torch.uint8)
        entries[name] = (dtype, tuple(t.shape), flat[name].numel())
    head, order = build_header(entries, metadata)
    total = len(head) + sum(b.numel() for b in flat.values())

    def gen() -> Iterator[Any]:
        yield head
        for n in order:
            if flat[n].numel():
                yield memoryview(flat[n].numpy())

    return total, gen()


def save_file(
    tensors: Mapping[str, Any],
    filename: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
    *,
    recipients: Recipient | Sequence[Recipient],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    context: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Writes torch tensors as a sealed safetensors file (as ``safetensors.torch.save_file``).

    Args:
        tensors: name -> dense tensor (any device; copied to CPU piece by piece).
        filename: destination, written atomically; no plaintext reaches the disk.
        metadata: optional ``__metadata__`` string map.
        recipients: who may open it.
        chunk_size: payload chunk size.
        context: encryption context.
        labels: public labels.

    Example:
        >>> save_file(model.state_dict(), "m.tseal", recipients=[ks.recipient()])  # doctest: +SKIP
    """
    total, pieces = _pieces(tensors, metadata)
    with atomic_output(filename) as out:
        seal_pieces(total, pieces, out, _recipients(recipients), _options(chunk_size, context, labels))


def save(
    obj: Any,
    f: str | os.PathLike[str],
    *,
    recipients: Recipient | Sequence[Recipient],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    context: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> None:
    """``torch.save(obj)`` into memory, sealed to ``f`` (no plaintext on disk).

    Args:
        obj: anything ``torch.save`` accepts.
        f: destination path, written atomically.
        recipients: who may open it.
        chunk_size: payload chunk size.
        context: encryption context.
        labels: public labels.

    Example:
        >>> save({"step": 10, "model": model.state_dict()}, "ckpt.tseal", recipients=[r])  # doctest: +SKIP
    """
    buf = io.BytesIO()
    _torch.save(obj, buf)
    view = buf.getbuffer()
    try:
        s = Sealer(
            _recipients(recipients),
            plaintext_length=len(view),
            content_type=TORCH_CONTENT_TYPE,
            **_options(chunk_size, context, labels),
        )
        with atomic_output(f) as out:
            out.write(s.start())
            for c in s.push(view):
                out.write(c)
            out.write(s.finish())
    finally:
        view.release()


def load(
    f: str | os.PathLike[str],
    *,
    identities: Identity | Sequence[Identity],
    map_location: Any = None,
    weights_only: bool = True,
) -> Any:
    """Opens a sealed ``torch.save`` checkpoint with ``torch.load`` on an in-memory buffer.

    Args:
        f: the ``.tseal`` file.
        identities: keys to try.
        map_location: as for ``torch.load``.
        weights_only: as for ``torch.load`` (default True: no arbitrary unpickling).

    Returns:
        The loaded object.

    Example:
        >>> ckpt = load("ckpt.tseal", identities=[ks])  # doctest: +SKIP
    """
    from .reader import SealedFile

    with SealedFile(f, _as_list(identities)) as sf:
        buf = bytearray(sf.plaintext_length)
        sf.read_range(0, sf.plaintext_length, buf)
    return _torch.load(io.BytesIO(buf), map_location=map_location, weights_only=weights_only)

