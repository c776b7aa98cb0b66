"""Sealed files straight from object storage, with ranged reads and no local copy.

:func:`open_source` turns a URL into a :class:`RangeSource`: ``s3://`` (boto3, extra
``tensorseal[s3]``), ``http://`` / ``https://`` (the standard library, ``Range`` requests) and
any other scheme through fsspec. Every loader that takes a path also takes such a URL
(``SealedFile``, ``safe_open``, ``tensorseal.safetensors.load_file``,
``tensorseal.torch.load_file``, ``tensorseal.hf``), or a source made here with options. They
fetch only the sealed header and the chunks a read needs, on the decryption pool's threads;
each chunk is authenticated exactly as from a local file.

Example:
    >>> from tensorseal.safetensors import safe_open  # doctest: +SKIP
    >>> with safe_open("s3://models/gpt2.tseal", identities=[ks]) as f:  # doctest: +SKIP
    ...     wte = f.get_tensor("wte.weight")  # header + the chunks of one tensor
"""

from __future__ import annotations

from typing import Any

from .base import Pin, RangeSource
from .urls import is_url, join_url, redact_url, url_scheme


def open_source(url: str, **options: Any) -> RangeSource:
    """A ranged reader of ``url`` pinned to its current version.

    Args:
        url: ``s3://bucket/key``, ``https://...`` (presigned URLs work), ``http://...``, or
            any fsspec URL (``gs://``, ``memory://``...).
        options: for the source: ``retries`` (all), ``client`` / ``endpoint_url`` /
            ``region`` / ``version_id`` (S3), ``headers`` / ``timeout_s`` (HTTP),
            ``storage_options`` / ``fs`` (fsspec).

    Raises:
        TensorSealError: ``E_IO`` (missing, refused, unreachable after retries), naming the
            URL without credentials or query string.
    """
    from ..reader import naming

    scheme = url_scheme(url)
    with naming(redact_url(url)):
        if scheme == "s3" and "fs" not in options and "storage_options" not in options:
            from .s3 import S3Source

            return S3Source(url, **options)
        if scheme in ("http", "https") and "fs" not in options and "storage_options" not in options:
            from .http import HttpSource

            return HttpSource(url, **options)
        from .fsspec_source import FsspecSource

        return FsspecSource(url, **options)


__all__ = ["Pin", "RangeSource", "is_url", "join_url", "open_source", "redact_url", "url_scheme"]
