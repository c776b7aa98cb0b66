"""``torch.distributed.checkpoint`` (DCP) storage that seals every file it writes.

:class:`SealedFileSystemWriter` and :class:`SealedFileSystemReader` are DCP's own
``FileSystemWriter`` / ``FileSystemReader`` with a different file system underneath
(:class:`SealedFileSystem`): DCP plans, shards and serializes exactly as usual, but every
stream it opens for writing seals what it receives, and every stream it opens for reading
decrypts only the byte ranges it asks for. Shards (``__0_0.distcp``...) and the ``.metadata``
file (tensor names, shapes, storage offsets: secret too) are all ``.tseal`` files.

Writing: plaintext is sealed as it is written, one chunk at a time, into a temporary file
beside the destination (:class:`~tensorseal.output.atomic_output`: anonymous where the file
system allows); closing the stream seals the final chunk, fsyncs, and links or renames it into
place (and fsyncs the directory). A failed write removes the temporary file. Only
ciphertext reaches the disk, and memory holds at most one pending chunk per open stream.

Reading: each file is opened with :class:`~tensorseal.reader.SealedFile` (header, keys,
commitment and length authenticated before any byte is served); DCP's seeks and reads become
:meth:`~tensorseal.reader.SealedFile.read_range` calls, with the last chunk touched kept so the
many small reads ``torch.load`` makes stay cheap. Reads of a chunk or more go straight into the
caller's buffer.

Binding: each file's encryption context records its name in the checkpoint (``dcp.file``) and
the save's id (``dcp.save_id``, also in the metadata). The reader checks both, so a shard
swapped for another shard, or for the same shard of another checkpoint sealed to the same key,
fails (``E_CONTEXT`` naming the context entry) instead of loading the wrong weights. With several
ranks, the save id is the coordinator's: it travels to every rank inside its plan (every value
the ranks must agree on comes from the coordinator, never drawn per rank).

Example:
    >>> import torch.distributed.checkpoint as dcp  # doctest: +SKIP
    >>> from tensorseal.dcp import SealedFileSystemWriter, SealedFileSystemReader  # doctest: +SKIP
    >>> dcp.save(model.state_dict(), storage_writer=SealedFileSystemWriter("ckpt", recipients=[r]))  # doctest: +SKIP
    >>> state = model.state_dict()  # doctest: +SKIP
    >>> dcp.load(state, storage_reader=SealedFileSystemReader("ckpt", identities=[ks]))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from .errors import TensorSealError, fail
from .format.stanza import Identity, Recipient
from .reader import SealedFile, naming
from .output import atomic_output, fsync_dir
from .writer import DEFAULT_CHUNK_SIZE, Sealer

try:
    import torch.distributed.checkpoint as _dcp
    from torch.distributed.checkpoint.api import CheckpointException
    from torch.distributed.checkpoint.filesystem import FileSystem, _StoragePrefix
    from torch.distributed.checkpoint.metadata import Metadata, StorageMeta
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError("tensorseal.dcp needs PyTorch: pip install 'tensorseal[torch]'") from e

__all__ = [
    "DCP_CONTENT_TYPE",
    "SealedFileSystem",
    "SealedFileSystemReader",
    "SealedFileSystemWriter",
    "load",
    "save",
]

DCP_CONTENT_TYPE = "application/vnd.pytorch.distcp"
_FILE_KEY = "dcp.file"
_SAVE_ID_KEY = "dcp.save_id"


def _list(items: Any) -> list[Any]:
    if items is None:
        return []
    if isinstance(items, (Recipient, Identity)):
        return [items]
    return list(items)


def _checkpoint_name(path: str | os.PathLike[str]) -> str:
    """The name a file is bound to: DCP writes ``.metadata.tmp`` and renames it ``.metadata``."""
    name = os.path.basename(os.fspath(path))
    return name[: -len(".tmp")] if name.endswith(".tmp") else name


class _SealingStream(io.RawIOBase):
    """A write-only stream that seals what it receives into ``path`` (atomic, on close)."""

    def __init__(self, path: str | os.PathLike[str], sealer: Sealer) -> None:
        super().__init__()
        self._sealer = sealer
        self._atomic = atomic_output(path)
        self._out = self._atomic.__enter__()
        self._pos = 0
        self._done = False
        try:
            self._out.write(sealer.start())
        except BaseException as e:
            self.abort(e)
            raise

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def fileno(self) -> int:
        # The temporary file holds ciphertext only and is fsynced on close; DCP must not
        # fsync a half-written file itself.
        raise io.UnsupportedOperation("sealed DCP streams are fsynced when they are closed")

    def write(self, b: Any) -> int:
        if self._done:
            raise ValueError("write to a closed sealed stream")
        view = memoryview(b).cast("B")
        for sealed in self._sealer.push(view):
            self._out.write(sealed)
        self._pos += len(view)
        return len(view)

    def close(self) -> None:
        """Seals the final chunk, fsyncs, puts the file in place (once)."""
        if not self._done:
            self._done = True
            try:
                self._out.write(self._sealer.finish())
            except BaseException as e:
                self._atomic.__exit__(type(e), e, None)
                raise
            self._atomic.__exit__(None, None, None)
        super().close()

    def abort(self, exc: BaseException | None = None) -> None:
        """Drops the temporary file; nothing is renamed."""
        if not self._done:
            self._done = True
            err = exc or RuntimeError("aborted")
            try:
                self._atomic.__exit__(type(err), err, None)
            except TensorSealError:
                pass
        super().close()


class _SealedReadStream(io.RawIOBase):
    """A seekable read-only stream over the plaintext of a :class:`SealedFile`."""

    def __init__(self, sealed: SealedFile) -> None:
        super().__init__()
        self._sf = sealed
        self._pos = 0
        self._size = sealed.plaintext_length
        self._chunk = sealed.chunk_size
        self._cached_index = -1
        self._cached = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def _chunk_bytes(self, index: int) -> bytes:
        if index != self._cached_index:
            start = index * self._chunk
            n = min(self._chunk, self._size - start)
            self._cached = bytes(self._sf.read_range(start, n))
            self._cached_index = index
        return self._cached

    def readinto(self, b: Any) -> int:
        out = memoryview(b).cast("B")
        n = max(0, min(len(out), self._size - self._pos))
        done = 0
        while done < n:
            pos = self._pos + done
            index, within = divmod(pos, self._chunk)
            left = n - done
            if within == 0 and left >= self._chunk:
                # Whole chunks: decrypt straight into the caller's buffer.
                whole = left - left % self._chunk
                self._sf.read_range(pos, whole, out[done : done + whole])
                done += whole
                continue
            data = self._chunk_bytes(index)
            take = min(left, len(data) - within)
            out[done : done + take] = data[within : within + take]
            done += take
        self._pos += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self._size - self._pos)
        buf = bytearray(min(size, max(0, self._size - self._pos)))
        n = self.readinto(buf)
        return bytes(buf[:n]) if n != len(buf) else bytes(buf)

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        self._cached = b""
        self._cached_index = -1
        super().close()


class SealedFileSystem(FileSystem):
    """DCP's local ``FileSystem`` whose streams seal on write and decrypt on read.

    Args:
        recipients: who may open what is written (needed to write).
        identities: keys to open what is read (needed to read).
        chunk_size: payload chunk size of sealed files (default 1 MiB).
        context: extra encryption context recorded in every file (public, authenticated).
        labels: public labels recorded in every file.
    """

    def __init__(
        self,
        *,
        recipients: Sequence[Recipient] | None = None,
        identities: Sequence[Identity] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        context: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.recipients = list(recipients or [])
        self.identities = list(identities or [])
        self.chunk_size = chunk_size
        self.context = dict(context or {})
        for k in (_FILE_KEY, _SAVE_ID_KEY):
            if k in self.context:
                fail("E_USAGE", f"context key {k!r} is reserved for the checkpoint binding")
        self.labels = dict(labels or {})
        self.save_id: str | None = None
        """The save id bound into files written (writer) or expected in files read (reader)."""

    def _write_context(self, path: str | os.PathLike[str]) -> dict[str, str]:
        ctx = {**self.context, _FILE_KEY: _checkpoint_name(path)}
        if self.save_id is not None:
            ctx[_SAVE_ID_KEY] = self.save_id
        return ctx

    def expected_context(self, path: str | os.PathLike[str]) -> dict[str, str]:
        """The context a file read at ``path`` must carry."""
        return self._write_context(path)

    @contextmanager
    def create_stream(self, path: str | os.PathLike[str], mode: str) -> Generator[io.IOBase, None, None]:
        if mode in ("wb", "w+b") or (mode.startswith("w") and "b" in mode):
            if not self.recipients:
                fail("E_USAGE", "writing a sealed checkpoint needs recipients=[...]")
            sealer = Sealer(
                self.recipients,
                plaintext_length=None,
                chunk_size=self.chunk_size,
                content_type=DCP_CONTENT_TYPE,
                context=self._write_context(path),
                labels=self.labels,
            )
            stream = _SealingStream(path, sealer)
            try:
                yield cast(io.IOBase, stream)
            except BaseException as e:
                stream.abort(e)
                raise
            stream.close()
        elif mode == "rb":
            if not self.identities:
                fail("E_NO_IDENTITY", "reading a sealed checkpoint needs identities=[...]")
            with SealedFile(path, self.identities, expect_context=self.expected_context(path)) as sf:
                stream = _SealedReadStream(sf)
                try:
                    yield cast(io.IOBase, stream)
                finally:
                    stream.close()
        else:
            fail("E_USAGE", f"sealed checkpoint streams open with 'rb' or 'wb', not {mode!r}")

    def rename(self, path: str | os.PathLike[str], new_path: str | os.PathLike[str]) -> None:
        super().rename(path, new_path)
        fsync_dir(os.path.dirname(os.path.abspath(os.fspath(new_path))))


@dataclasses.dataclass
class _SealedStoragePrefix(_StoragePrefix):
    """DCP's per-rank file prefix plus the coordinator's save id, sent to each rank in its plan."""

    save_id: str = ""


class SealedFileSystemWriter(_dcp.FileSystemWriter):
    """``FileSystemWriter`` that seals every file of the checkpoint to ``recipients``.

    Args:
        path: the checkpoint directory.
        recipients: who may open the checkpoint (a list, or one recipient).
        chunk_size: payload chunk size (default 1 MiB).
        context: extra encryption context (public, authenticated) for every file.
        labels: public labels for every file.
        **kwargs: as for ``FileSystemWriter`` (``single_file_per_rank``, ``thread_count``,
            ``overwrite``...). ``sync_files`` is ignored: every sealed file is fsynced and
            renamed into place when it is complete.

    Example:
        >>> dcp.save(state, storage_writer=SealedFileSystemWriter("ckpt", recipients=[r]))  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        recipients: Recipient | Sequence[Recipient],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        context: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs["sync_files"] = False
        super().__init__(path, **kwargs)
        rs = _list(recipients)
        if not rs:
            fail("E_USAGE", "a sealed checkpoint needs at least one recipient: pass recipients=[...]")
        self.fs = SealedFileSystem(recipients=rs, chunk_size=chunk_size, context=context, labels=labels)
        self.path = self.fs.init_path(path)
        self.fs.save_id = self.save_id

    def reset(self, checkpoint_id: str | os.PathLike[str] | None = None) -> None:
        super().reset(checkpoint_id)
        self.fs.save_id = self.save_id  # type: ignore[attr-defined]

    def prepare_global_plan(self, plans: list[Any]) -> list[Any]:
        # Runs on the coordinator only: its save id is the checkpoint's, for every rank.
        plans = super().prepare_global_plan(plans)
        return [
            dataclasses.replace(p, storage_data=_SealedStoragePrefix(p.storage_data.prefix, self.save_id))
            for p in plans
        ]

    def write_data(self, plan: Any, planner: Any) -> Any:
        storage = plan.storage_data
        if not isinstance(storage, _SealedStoragePrefix) or not storage.save_id:
            fail("E_USAGE", "the checkpoint plan carries no save id: use SealedFileSystemWriter on every rank")
        self.save_id = storage.save_id
        self.fs.save_id = storage.save_id  # type: ignore[attr-defined]
        return super().write_data(plan, planner)


class SealedFileSystemReader(_dcp.FileSystemReader):
    """``FileSystemReader`` for a checkpoint written by :class:`SealedFileSystemWriter`.

    Args:
        path: the checkpoint directory.
        identities: keys to try (a list, one identity, or a keystore).
        **kwargs: as for ``FileSystemReader``.

    Example:
        >>> dcp.load(state, storage_reader=SealedFileSystemReader("ckpt", identities=[ks]))  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        identities: Identity | Sequence[Identity],
        **kwargs: Any,
    ) -> None:
        super().__init__(path, **kwargs)
        ids = _list(identities)
        if not ids:
            fail("E_NO_IDENTITY", "no key given: pass identities=[...]")
        self.fs = SealedFileSystem(identities=ids)
        self.path = self.fs.init_path(path)
        self.metadata_error: TensorSealError | None = None
        """The first sealing error met reading the metadata (DCP reports it as text only)."""

    def reset(self, checkpoint_id: str | os.PathLike[str] | None = None) -> None:
        super().reset(checkpoint_id)
        self.metadata_error = None

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        # DCP tries the global .metadata, then the rank-local one, and reports a failure of
        # both as an AssertionError with their messages. The first TensorSealError is kept in
        # ``metadata_error`` (load() below re-raises it), and when the global file exists but
        # does not open, a missing rank-local file reports that error rather than E_IO.
        try:
            return self._read_metadata(kwargs.get("rank"))
        except TensorSealError as e:
            if self.metadata_error is not None and e.code == "E_IO":
                raise self.metadata_error from None
            if self.metadata_error is None:
                self.metadata_error = e
            raise

    def _read_metadata(self, rank: int | None) -> Metadata:
        fs = cast(SealedFileSystem, self.fs)
        path = self._get_metadata_path(rank)
        expect = {_FILE_KEY: _checkpoint_name(path)}
        with naming(os.fspath(path)):
            with SealedFile(path, fs.identities, expect_context=expect) as sf:
                save_id = sf.descriptor.context.get(_SAVE_ID_KEY)
                data = sf.read_all()
            metadata = pickle.loads(data)
            recorded = getattr(getattr(metadata, "storage_meta", None), "save_id", None)
            if save_id is None or (recorded is not None and recorded != save_id):
                fail("E_USAGE", "the checkpoint metadata is not bound to its save id: files from different saves were mixed")
        fs.save_id = save_id
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata


def _unwrap(e: CheckpointException) -> TensorSealError | None:
    for failure in e.failures.values():
        exc = failure[0] if isinstance(failure, tuple) else failure
        if isinstance(exc, TensorSealError):
            return exc
    return None


def save(
    state_dict: dict[str, Any],
    checkpoint_id: str | os.PathLike[str],
    *,
    recipients: Recipient | Sequence[Recipient],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    context: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    """``dcp.save`` into a sealed checkpoint directory.

    A :class:`TensorSealError` raised on any rank is re-raised as itself (DCP wraps storage
    errors in ``CheckpointException``, kept as ``__cause__``).

    Args:
        state_dict: as for ``dcp.save``.
        checkpoint_id: the checkpoint directory.
        recipients: who may open it.
        chunk_size: payload chunk size.
        context: extra encryption context.
        labels: public labels.
        **kwargs: passed to ``dcp.save`` (``process_group``, ``planner``, ``no_dist``...).

    Returns:
        What ``dcp.save`` returns.
    """
    writer = SealedFileSystemWriter(
        checkpoint_id, recipients=recipients, chunk_size=chunk_size, context=context, labels=labels
    )
    try:
        return _dcp.save(state_dict, checkpoint_id=checkpoint_id, storage_writer=writer, **kwargs)
    except CheckpointException as e:
        inner = _unwrap(e)
        if inner is None:
            raise
        raise inner from e


def load(
    state_dict: dict[str, Any],
    checkpoint_id: str | os.PathLike[str],
    *,
    identities: Identity | Sequence[Identity],
    **kwargs: Any,
) -> None:
    """``dcp.load`` (in place) from a sealed checkpoint directory.

    Args:
        state_dict: tensors to load into, as for ``dcp.load``.
        checkpoint_id: the checkpoint directory.
        identities: keys to try.
        **kwargs: passed to ``dcp.load``.

    Raises:
        TensorSealError: the first failure of any rank (``E_DECRYPT`` for a modified shard,
            ``E_NO_IDENTITY`` for a wrong key...).
    """
    reader = SealedFileSystemReader(checkpoint_id, identities=identities)
    try:
        _dcp.load(state_dict, checkpoint_id=checkpoint_id, storage_reader=reader, **kwargs)
    except CheckpointException as e:
        inner = _unwrap(e) or reader.metadata_error
        if inner is None:
            raise
        raise inner from e

