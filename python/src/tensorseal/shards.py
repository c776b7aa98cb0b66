"""Sealed WebDataset-style shards (tar files sealed with ``tensorseal seal``), streamed.

- :func:`iter_tar_samples`: one sealed tar shard (a path or URL) as samples, decrypted in
  memory as the shard streams in (``tarfile`` in stream mode over a
  :class:`~tensorseal.sealed_stream.SealedStream`); nothing is written to disk.
- :func:`split_shards`: which shards one DataLoader worker of one rank reads in an epoch, so
  that every shard is read exactly once across all workers and ranks.
- :func:`list_shards`: the ``.tseal`` files under a directory or a directory URL.

A sample groups the consecutive tar members that share a key, WebDataset's convention: the
member path up to the first dot of its file name (``train/000042.jpg`` and
``train/000042.cls`` make ``{"__key__": "train/000042", "jpg": b"...", "cls": b"..."}``), with
``"__url__"``, the shard's path or URL without credentials. :mod:`tensorseal.datasets` wraps
these in a PyTorch ``IterableDataset``.
"""

from __future__ import annotations

import io
import random
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .errors import error
from .format.stanza import Identity
from .reader import SealedFile, naming
from .sealed_stream import DEFAULT_WINDOW, SealedStream

Sample = dict[str, Any]
SEALED_SUFFIX = ".tseal"


def _key_ext(name: str) -> tuple[str, str]:
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    return (name, "") if dot < 0 else (name[:dot], name[dot + 1 :])


def iter_tar_samples(
    shard: str,
    identities: Sequence[Identity],
    *,
    source_options: Mapping[str, Any] | None = None,
    threads: int | None = None,
    window: int = DEFAULT_WINDOW,
) -> Iterator[Sample]:
    """The samples of one sealed tar shard, in tar order.

    Args:
        shard: the sealed tar file's path or URL.
        identities: keys to try.
        source_options: for a URL (see :func:`tensorseal.remote.open_source`).
        threads: fetch-and-decrypt threads per window.
        window: plaintext bytes fetched and decrypted at a time (whole chunks).

    Raises:
        TensorSealError: tampering (``E_DECRYPT``) fails at the chunk it is in, naming the
            shard; samples yielded before it came from chunks that authenticated. A tar the
            stream cannot parse is ``E_MALFORMED``.
    """
    sf = SealedFile(shard, list(identities), threads=threads, source_options=source_options)
    name = sf.name or shard
    with SealedStream(sf, window) as raw, naming(name):
        try:
            tar = tarfile.open(fileobj=io.BufferedReader(raw, buffer_size=1 << 20), mode="r|")
        except tarfile.TarError:
            raise error("E_MALFORMED", "the plaintext is not a tar archive") from None
        sample: Sample | None = None
        try:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = _key_ext(member.name)
                f = tar.extractfile(member)
                data = f.read() if f is not None else b""
                if sample is not None and sample["__key__"] != key:
                    yield sample
                    sample = None
                if sample is None:
                    sample = {"__key__": key, "__url__": name}
                sample[ext] = data
        except tarfile.TarError as e:
            raise error("E_MALFORMED", f"the tar archive is malformed: {type(e).__name__}") from None
        if sample is not None:
            yield sample


def split_shards(
    shards: Sequence[str],
    *,
    worker: int = 0,
    workers: int = 1,
    rank: int = 0,
    world: int = 1,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
) -> list[str]:
    """The shards of worker ``worker`` (of ``workers``) on rank ``rank`` (of ``world``).

    Every worker of every rank computes the same order (shuffled with ``seed + epoch`` when
    ``shuffle``) and takes every ``world * workers``-th shard from its own position: together
    they read each shard exactly once per epoch. With fewer shards than readers some read none.

    Example:
        >>> split_shards(["a", "b", "c", "d", "e"], worker=1, workers=2)
        ['b', 'd']
    """
    order = list(shards)
    if shuffle:
        random.Random(seed + epoch).shuffle(order)
    slot, total = rank * workers + worker, world * workers
    return order[slot::total]


def list_shards(root: str, options: Mapping[str, Any] | None = None) -> list[str]:
    """Paths or URLs of the sealed files (``*.tseal``) under the directory or URL ``root``."""
    from .hf.location import Location

    loc = Location(root, dict(options or {}))
    names = loc.list()
    if names is None:
        raise error("E_USAGE", "cannot list an http(s):// directory: pass the shard URLs").naming(loc.shown())
    return [loc.join(n) for n in names if n.endswith(SEALED_SUFFIX)]
