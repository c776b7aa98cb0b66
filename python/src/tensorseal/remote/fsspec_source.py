"""Sealed files on any fsspec filesystem (``gs://``, ``az://``, ``hf://``, ``memory://``,
``sftp://``...), read with ``fs.cat_file(path, start, end)``.

Opening calls ``fs.info(path)`` for the size and, when the filesystem reports one, an ETag,
version id or modification time. fsspec has no conditional read, so the pin is checked on
every answer's length only; what a store replaced mid-read can do is still bounded by the
format: a chunk from another sealing fails authentication (``E_DECRYPT``), and a changed
length fails ``E_TRUNCATED``. For S3 and HTTP(S) prefer the ``s3://`` and ``https://``
sources, which pin the version at the server.
"""

from __future__ import annotations

from typing import Any

from ..errors import fail
from .base import DEFAULT_RETRIES, Pin, RangeSource, Transient
from .urls import redact_url

_TRANSIENT = (ConnectionError, TimeoutError)


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError:
        fail("E_USAGE", "this URL needs fsspec: pip install fsspec (and the filesystem's package)")
    return fsspec


class FsspecSource(RangeSource):
    """One file of an fsspec filesystem.

    Args:
        url_or_path: a URL fsspec understands (``memory://m.tseal``), or a path on ``fs``.
        fs: an fsspec filesystem instance (default: from the URL).
        storage_options: options for the filesystem made from the URL.
        retries: attempts after the first for a transient failure.

    Example:
        >>> import fsspec  # doctest: +SKIP
        >>> src = FsspecSource("bucket/m.tseal", fs=fsspec.filesystem("gcs"))  # doctest: +SKIP
    """

    def __init__(
        self,
        url_or_path: str,
        *,
        fs: Any = None,
        storage_options: dict[str, Any] | None = None,
        retries: int = DEFAULT_RETRIES,
        backoff_s: float | None = None,
    ) -> None:
        super().__init__(retries=retries, **({} if backoff_s is None else {"backoff_s": backoff_s}))
        if fs is None:
            fs, path = _fsspec().core.url_to_fs(url_or_path, **(storage_options or {}))
        else:
            path = url_or_path
        self.fs, self.path = fs, path
        self.name = redact_url(url_or_path) if "://" in url_or_path else url_or_path
        try:
            info = self.retrying(lambda: self._info(path))
        except FileNotFoundError:
            fail("E_IO", "no such file")
        except PermissionError:
            fail("E_IO", "access denied")
        except OSError as e:
            fail("E_IO", f"cannot stat the file: {e.strerror or type(e).__name__}")
        if info.get("type", "file") != "file":
            fail("E_USAGE", "not a file")
        etag = info.get("ETag") or info.get("etag")
        version = info.get("VersionId") or info.get("version_id") or info.get("generation")
        self.pin = Pin(size=int(info["size"]), etag=None if etag is None else str(etag),
                       version=None if version is None else str(version))  # fmt: skip

    def _info(self, path: str) -> dict[str, Any]:
        try:
            return dict(self.fs.info(path))
        except _TRANSIENT as e:
            raise Transient(type(e).__name__) from None

    def _fetch(self, offset: int, n: int) -> bytes:
        try:
            return bytes(self.fs.cat_file(self.path, start=offset, end=offset + n))
        except _TRANSIENT as e:
            raise Transient(type(e).__name__) from None
        except FileNotFoundError:
            fail("E_IO", "the file disappeared while being read")
        except OSError as e:
            fail("E_IO", f"cannot read the file: {e.strerror or type(e).__name__}")


def list_under(root: str, options: dict[str, Any]) -> list[str]:
    """Relative paths of the files under the directory URL ``root``."""
    fs = options.get("fs")
    if fs is None:
        fs, path = _fsspec().core.url_to_fs(root, **(options.get("storage_options") or {}))
    else:
        path = root
    base = path.rstrip("/")
    try:
        found = fs.find(base)
    except OSError as e:
        fail("E_IO", f"cannot list the directory: {e.strerror or type(e).__name__}")
    out = []
    for p in found:
        p = p if isinstance(p, str) else str(p)
        rel = p[len(base) :].lstrip("/") if p.startswith(base) else p.split(base + "/", 1)[-1]
        out.append(rel)
    return sorted(out)
