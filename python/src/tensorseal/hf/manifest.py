"""The sealed manifest of a model directory, read with the rules of the TypeScript reader
(src/integrations/model-dir/manifest.ts): every relative path with the size and SHA-256 of its
plaintext, and the random model id that every file's encryption context carries.

Example:
    >>> m = parse_manifest(b'{"version": 1, "model": "' + b"ab" * 16 + b'", "files": '
    ...                    b'[{"path": "config.json", "size": 2, "sha256": "' + b"0" * 64 + b'"}]}')
    >>> m.files[0].path, m.files[0].size
    ('config.json', 2)
    >>> check_relative_path("../etc/passwd")
    Traceback (most recent call last):
    ...
    tensorseal.errors.MalformedError: E_MALFORMED: model directory: unsafe relative path '../etc/passwd'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..errors import fail, printable

MANIFEST_NAME = "tensorseal-manifest.json"
SEALED_SUFFIX = ".tseal"
PATH_CONTEXT = "tensorseal.path"
MODEL_CONTEXT = "tensorseal.model"
MANIFEST_CONTENT_TYPE = "application/vnd.tensorseal.manifest+json"
MAX_FILES = 100_000
MAX_MANIFEST_BYTES = 64 << 20
_MAX_SAFE_INTEGER = 2**53 - 1
_MODEL_ID = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ManifestEntry:
    """One file of the model: its relative ``/`` path, plaintext size and hex SHA-256."""

    path: str
    size: int
    sha256: str
    #: False only for a public (integrity-only) file (FORMAT.md §2.5); every other entry must be
    #: an encrypted file, so a public file put in its place is refused (``E_NOT_ENCRYPTED``).
    encrypted: bool = True


@dataclass(frozen=True)
class Manifest:
    """The manifest: ``model`` is the 32-hex-digit model id, ``files`` sorted by path."""

    model: str
    files: tuple[ManifestEntry, ...]

    def entry(self, path: str) -> ManifestEntry | None:
        """The entry for ``path``, or None."""
        for f in self.files:
            if f.path == path:
                return f
        return None


def check_relative_path(p: str) -> str:
    """Relative, ``/``-separated, no empty, ``.`` or ``..`` segments, no NUL or backslash."""
    bad = (
        not p
        or len(p) > 4096
        or p.startswith("/")
        or "\\" in p
        or "\0" in p
        or any(s in ("", ".", "..") for s in p.split("/"))
    )
    if bad:
        fail("E_MALFORMED", f"model directory: unsafe relative path {printable(repr(p))}")
    return p


def context_for(model: str, path: str) -> dict[str, str]:
    """The encryption context entries that bind a file to its path and to its model."""
    return {PATH_CONTEXT: path, MODEL_CONTEXT: model}


def _utf16(p: str) -> bytes:
    # The TS reader compares paths as JavaScript strings (UTF-16 code units), so does this one.
    return p.encode("utf-16-be", "surrogatepass")


def parse_manifest(data: bytes) -> Manifest:
    """Parses a manifest's JSON strictly (``E_MALFORMED`` for anything off): version 1, a
    32-hex-digit model id, at most 100 000 files with safe relative paths, sorted and unique,
    never the manifest itself, each with a non-negative integer size and a hex SHA-256."""
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError):
        fail("E_MALFORMED", "model manifest is not valid JSON")
    if not isinstance(doc, dict) or doc.get("version") != 1 or isinstance(doc.get("version"), bool):
        fail("E_MALFORMED", "model manifest: not a version 1 manifest object")
    model = doc.get("model")
    if not isinstance(model, str) or not _MODEL_ID.fullmatch(model):
        fail("E_MALFORMED", "model manifest: model id is not 32 hex digits")
    files = doc.get("files")
    if not isinstance(files, list) or len(files) > MAX_FILES:
        fail("E_MALFORMED", f"model manifest: files is not a list of at most {MAX_FILES}")
    out: list[ManifestEntry] = []
    prev = b""
    for f in files:
        path = f.get("path") if isinstance(f, dict) else None
        if not isinstance(path, str):
            fail("E_MALFORMED", "model manifest: entry without a path")
        check_relative_path(path)
        shown = printable(path)
        if path == MANIFEST_NAME:
            fail("E_MALFORMED", "model manifest lists itself")
        if _utf16(path) <= prev:
            fail("E_MALFORMED", f"model manifest: {shown} is duplicated or unsorted")
        size, digest = f.get("size"), f.get("sha256")
        ok_size = isinstance(size, int) and not isinstance(size, bool) and 0 <= size <= _MAX_SAFE_INTEGER
        if not ok_size or not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            fail("E_MALFORMED", f"model manifest: bad size or sha256 for {shown}")
        encrypted = f.get("encrypted", True)
        if "encrypted" in f and encrypted is not False:
            fail("E_MALFORMED", f"model manifest: encrypted of {shown} must be false or absent")
        prev = _utf16(path)
        out.append(ManifestEntry(path, size, digest, encrypted))
    return Manifest(model, tuple(out))


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: JSON.parse refuses them too
