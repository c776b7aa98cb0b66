"""Where a sealed model directory lies: a local path, or a URL prefix in object storage
(``s3://bucket/models/gpt2/``, ``https://host/models/gpt2/``, any fsspec URL).

Remote files are opened with ranged reads (:mod:`tensorseal.remote`) sharing one S3 client.
Listing (to refuse files added to the directory) works on S3 and fsspec stores; over plain
HTTP there is no listing, so only the manifest's own files are checked (an extra object on a
web server is never read).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import TensorSealError
from ..remote import is_url, join_url, open_source, redact_url, url_scheme
from .listing import list_files


class Location:
    """A model directory's root, local or remote.

    Args:
        root: a directory path or a directory URL.
        options: for :func:`tensorseal.remote.open_source` (``client``, ``endpoint_url``...).
    """

    def __init__(self, root: str | os.PathLike[str], options: dict[str, Any] | None = None) -> None:
        self.remote = is_url(root)
        self.root = root if self.remote else os.fsdecode(root)  # type: ignore[assignment]
        self.scheme = url_scheme(root)
        self.options = dict(options or {})
        if self.scheme == "s3" and "client" not in self.options and "fs" not in self.options:
            from ..remote.s3 import s3_client

            self.options["client"] = s3_client(
                endpoint_url=self.options.pop("endpoint_url", None), region=self.options.pop("region", None)
            )

    def join(self, rel: str) -> str:
        """The path or URL of ``rel`` inside the directory."""
        return join_url(self.root, rel) if self.remote else os.path.join(self.root, rel)

    def shown(self, rel: str | None = None) -> str:
        """As :meth:`join`, fit for a message (a URL without credentials or query)."""
        where = self.root if rel is None else self.join(rel)
        return redact_url(where) if self.remote else where

    def exists(self, rel: str) -> bool:
        if not self.remote:
            return os.path.exists(self.join(rel))
        try:
            open_source(self.join(rel), **self.options).close()
        except TensorSealError as e:
            if e.code == "E_IO" and "no such" in e.message:
                return False
            raise
        return True

    def list(self) -> list[str] | None:
        """Sorted relative paths of the files under the root, or None where the store cannot
        list (plain HTTP)."""
        if not self.remote:
            return list_files(self.root)
        if self.scheme in ("http", "https") and "fs" not in self.options and "storage_options" not in self.options:
            return None
        if self.scheme == "s3" and "client" in self.options:
            return self._list_s3()
        return self._list_fsspec()

    def _list_s3(self) -> list[str]:
        from ..remote.s3 import list_keys, split_s3_url

        bucket, prefix = split_s3_url(self.root)
        prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
        return sorted(k[len(prefix) :] for k in list_keys(self.options["client"], bucket, prefix))

    def _list_fsspec(self) -> list[str]:
        from ..remote.fsspec_source import list_under

        return list_under(self.root, self.options)
