"""A PyTorch ``IterableDataset`` over sealed WebDataset-style tar shards (extra
``tensorseal[torch]``; importing :mod:`tensorseal` does not import torch, this module does).

Each shard is a tar file sealed with ``tensorseal seal`` (or :func:`tensorseal.seal_file`),
kept in S3, behind HTTP(S), on any fsspec store or on disk. Shards stream with ranged reads,
are decrypted in memory only, and each DataLoader worker (and each distributed rank) reads
its own share: every shard once per epoch (see :mod:`tensorseal.shards`).

Example:
    >>> from torch.utils.data import DataLoader  # doctest: +SKIP
    >>> ds = SealedWebDataset("s3://data/train/", identities=[ks], shuffle=True)  # doctest: +SKIP
    >>> for batch in DataLoader(ds, batch_size=32, num_workers=4):  # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .errors import fail
from .format.stanza import Identity
from .remote import url_scheme
from .sealed_stream import DEFAULT_WINDOW
from .shards import Sample, iter_tar_samples, list_shards, split_shards

try:
    import torch.distributed as _dist
    from torch.utils.data import IterableDataset, get_worker_info
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError("tensorseal.datasets needs PyTorch: pip install 'tensorseal[torch]'") from e

__all__ = ["SealedWebDataset"]


class SealedWebDataset(IterableDataset):  # type: ignore[type-arg]
    """Samples of sealed tar shards, split across DataLoader workers and ranks.

    Args:
        shards: the shards' paths or URLs, or one directory (URL) whose ``*.tseal`` files
            are the shards (``s3://bucket/train/``; listed once, here).
        identities: keys to try, or a function of no arguments that returns them, called
            once in each worker: DataLoader workers started with ``spawn`` or ``forkserver``
            (Python 3.14's default on Linux) receive the dataset pickled, and keys do not
            pickle, so pass e.g. ``functools.partial(read_identity_file, "partner.id")``.
        decode: applied to each sample dict (``{"__key__", "__url__", ext: bytes...}``)
            before it is yielded, in the worker.
        shuffle: shuffle the shard order each epoch (the same order on every worker, from
            ``seed`` and the epoch: call :meth:`set_epoch`).
        seed: shuffle seed.
        split_by_rank: with ``torch.distributed`` initialised, give each rank its own shards.
        source_options: for URLs (see :func:`tensorseal.remote.open_source`); for ``s3://``
            without a ``client``, each worker makes its own boto3 client.
        threads: fetch-and-decrypt threads per shard window.
        window: plaintext bytes fetched at a time per shard (bounded memory).
    """

    def __init__(
        self,
        shards: str | Sequence[str],
        *,
        identities: Identity | Sequence[Identity] | Callable[[], Sequence[Identity]],
        decode: Callable[[Sample], Any] | None = None,
        shuffle: bool = False,
        seed: int = 0,
        split_by_rank: bool = True,
        source_options: Mapping[str, Any] | None = None,
        threads: int | None = None,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        super().__init__()
        self.shards = list_shards(shards, source_options) if isinstance(shards, str) else list(shards)
        if not self.shards:
            fail("E_USAGE", "no shards given (or none ending in .tseal under the directory)")
        if isinstance(identities, Identity):
            identities = [identities]
        self._keys: Callable[[], Sequence[Identity]] | None = identities if callable(identities) else None
        self._identities: list[Identity] | None = None if callable(identities) else list(identities)
        if self._identities is not None and not self._identities:
            fail("E_NO_IDENTITY", "no key given: pass identities=[...]")
        self.decode = decode
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.split_by_rank = split_by_rank
        self.source_options = dict(source_options or {})
        self.threads, self.window = threads, window

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose shard order the next iteration uses (with ``shuffle``)."""
        self.epoch = epoch

    def my_shards(self) -> list[str]:
        """The shards this process (DataLoader worker, rank) reads this epoch."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rank, world = 0, 1
        if self.split_by_rank and _dist.is_available() and _dist.is_initialized():
            rank, world = _dist.get_rank(), _dist.get_world_size()
        return split_shards(self.shards, worker=worker, workers=workers, rank=rank, world=world,
                            shuffle=self.shuffle, seed=self.seed, epoch=self.epoch)  # fmt: skip

    @property
    def identities(self) -> list[Identity]:
        """The keys (from the factory, called once per process, when one was given)."""
        if self._identities is None:
            assert self._keys is not None
            keys = self._keys()
            self._identities = [keys] if isinstance(keys, Identity) else list(keys)
            if not self._identities:
                fail("E_NO_IDENTITY", "the identities function returned no key")
        return self._identities

    def __getstate__(self) -> dict[str, Any]:
        """What a ``spawn`` / ``forkserver`` worker receives: keys only as their factory."""
        if self._keys is None:
            fail("E_USAGE", "keys cannot be sent to a DataLoader worker process (spawn or forkserver "
                 "start method): pass identities=functools.partial(read_identity_file, PATH), "
                 "a function each worker calls, or use the fork start method")  # fmt: skip
        state = dict(self.__dict__)
        state["_identities"] = None
        return state

    def __iter__(self) -> Iterator[Any]:
        options = self._worker_options()
        identities = self.identities
        for shard in self.my_shards():
            for sample in iter_tar_samples(shard, identities, source_options=options,
                                           threads=self.threads, window=self.window):  # fmt: skip
                yield sample if self.decode is None else self.decode(sample)

    def _worker_options(self) -> dict[str, Any]:
        """One S3 client per worker process (never one shared across a fork)."""
        options = dict(self.source_options)
        if any(url_scheme(s) == "s3" for s in self.shards) and "client" not in options and "fs" not in options:
            from .remote.s3 import s3_client

            options["client"] = s3_client(endpoint_url=options.pop("endpoint_url", None),
                                          region=options.pop("region", None))  # fmt: skip
        return options
