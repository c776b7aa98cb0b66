"""A sealed model directory (``tensorseal seal-dir``) opened in process, with the checks of
``tensorseal open-dir`` (src/integrations/model-dir/open-dir.ts) and no plaintext on disk.

:func:`open_model_dir` opens and authenticates the manifest, requires the directory to hold
exactly the manifest's files, and opens every file's header with the context that binds it to
its path and to this model, checking its plaintext size. A shard swapped in from another
sealed model, a file renamed, added or removed, or a manifest from elsewhere is refused there,
naming the file. Each file's SHA-256 is checked against the manifest when the file is read,
before any of its bytes or tensors are returned.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from typing import Any

from ..errors import TensorSealError, error, fail
from ..format.stanza import Identity
from ..reader import SealedFile, naming
from ..safetensors import SealedSafetensors, _as_list, _load_np, safe_open
from .location import Location
from .provenance import SIGNATURE_NAME, SignerKey, check_signed_manifest, verify_sealed_dir
from .manifest import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    MODEL_CONTEXT,
    PATH_CONTEXT,
    SEALED_SUFFIX,
    Manifest,
    ManifestEntry,
    context_for,
    parse_manifest,
)


def _location(where: str | os.PathLike[str] | Location) -> Location:
    return where if isinstance(where, Location) else Location(where)


def manifest_path(sealed_dir: str | os.PathLike[str]) -> str:
    """Where the sealed manifest of ``sealed_dir`` (a path or a directory URL) lies."""
    return _location(sealed_dir).join(MANIFEST_NAME + SEALED_SUFFIX)


def is_sealed_model_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (a directory or a directory URL) holds a sealed manifest (a
    ``seal-dir`` output)."""
    return _location(path).exists(MANIFEST_NAME + SEALED_SUFFIX)


def read_manifest(sealed_dir: str | os.PathLike[str] | Location, identities: Sequence[Identity]) -> Manifest:
    """Opens and authenticates the manifest; its own context must name it and its model id."""
    loc = _location(sealed_dir)
    name = MANIFEST_NAME + SEALED_SUFFIX
    if not loc.exists(name):
        fail("E_USAGE", f"{loc.shown()} has no {name}: not a sealed model directory")
    path, expect = loc.join(name), {PATH_CONTEXT: MANIFEST_NAME}
    # The manifest is the directory's root of authenticity: only its recipients can write it, so
    # a public one (anyone can write it, listing anything) is refused (FORMAT.md §2.5).
    with SealedFile(path, identities, expect_context=expect, require_encrypted=True,
                    source_options=loc.options) as sf, naming(sf.name):  # fmt: skip
        if sf.plaintext_length > MAX_MANIFEST_BYTES:
            fail("E_MALFORMED", "model manifest is over 64 MiB")
        m = parse_manifest(sf.read_all())
        if sf.descriptor.context.get(MODEL_CONTEXT) != m.model:
            fail("E_DECRYPT", "manifest model id does not match its encryption context")
    return m


class ModelDir:
    """A sealed model directory whose manifest, listing and file headers have been checked.

    Made by :func:`open_model_dir`. Holds every file open (one descriptor each) until
    :meth:`close`, or the end of a ``with`` block.

    Attributes:
        path: the sealed directory.
        manifest: the authenticated manifest.
        model: the model id (32 hex digits) every file is bound to.
    """

    def __init__(self, path: str, manifest: Manifest, files: dict[str, SealedFile], threads: int | None,
                 location: Location | None = None) -> None:  # fmt: skip
        self.path = path
        self._loc = location or Location(path)
        self.manifest = manifest
        self.model = manifest.model
        self._files = files
        self._threads = threads

    def __enter__(self) -> ModelDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes every file still open."""
        for sf in self._files.values():
            sf.close()

    def names(self) -> list[str]:
        """The model's relative paths (``config.json``, ``model-00001-of-00002.safetensors``...)."""
        return [f.path for f in self.manifest.files]

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and path in self._files

    def entry(self, path: str) -> ManifestEntry:
        """The manifest's entry for ``path`` (``E_USAGE`` if the model has no such file)."""
        e = self.manifest.entry(path)
        if e is None:
            fail("E_USAGE", f"the sealed model has no file {path!r}")
        return e

    def _file(self, path: str) -> SealedFile:
        self.entry(path)
        sf = self._files[path]
        if sf._f.closed:
            fail("E_USAGE", f"{path!r} is closed: loaded once already, or the ModelDir was closed")
        return sf

    def sealed_path(self, path: str) -> str:
        """The ``.tseal`` file of ``path`` on disk (or its URL, without credentials)."""
        return self._loc.shown(path + SEALED_SUFFIX)

    def read_bytes(self, path: str) -> bytes:
        """The whole plaintext of ``path`` (config, tokenizer...), in memory, checked against
        the manifest's SHA-256 before it is returned."""
        sf = self._file(path)
        data = sf.read_all()
        self._check_digest(path, hashlib.sha256(data))
        return data

    def read_json(self, path: str) -> Any:
        """:meth:`read_bytes` parsed as JSON (``E_MALFORMED`` if it is not)."""
        try:
            return json.loads(self.read_bytes(path).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise error("E_MALFORMED", "not valid JSON").naming(self.sealed_path(path)) from None

    def load_file(self, path: str, *, framework: str = "pt", device: Any = "cpu") -> dict[str, Any]:
        """Every tensor of the sealed safetensors file ``path`` (torch tensors with
        ``framework="pt"``, NumPy arrays with ``"np"``), decrypted once into one buffer whose
        SHA-256 (with the safetensors header) is checked against the manifest before any
        tensor is made from it. The file is closed afterwards: a file is loaded once."""
        pt = framework in ("pt", "torch")
        if not pt and (framework not in ("np", "numpy") or str(device) != "cpu"):
            fail("E_USAGE", "framework must be 'pt', or 'np' on device 'cpu'")
        f = SealedSafetensors(self._take(path), [], threads=self._threads)
        check = self._data_check(path, f)
        if pt:
            from ..torch import _load_pt

            return _load_pt(f, device, check)
        try:
            with f.naming():
                return _load_np(f, check)
        finally:
            f.close()

    def safe_open(self, path: str, *, framework: str = "pt", device: str = "cpu") -> safe_open:
        """A :class:`tensorseal.safetensors.safe_open` handle on ``path`` for tensor-by-tensor
        reads. The whole file is decrypted once first to check its SHA-256 (a digest covers
        every byte), so this costs a full pass more than :meth:`load_file`."""
        sf = self._file(path)
        h = hashlib.sha256()
        with naming(sf.name):
            for chunk in sf.iter_chunks():
                h.update(chunk)
        self._check_digest(path, h)
        return safe_open(self._take(path), framework, device, identities=[])

    def _take(self, path: str) -> SealedFile:
        """Hands the open file over to a reader that closes it (a shard is loaded once)."""
        return self._file(path)

    def _data_check(self, path: str, f: SealedSafetensors) -> Any:
        def check(data: memoryview) -> None:
            h = hashlib.sha256(f.sealed.read_range(0, f.layout.data_offset))
            h.update(data)
            self._check_digest(path, h)

        return check

    def _check_digest(self, path: str, h: Any) -> None:
        e = self.entry(path)
        if not hmac.compare_digest(h.hexdigest(), e.sha256):
            raise error("E_DECRYPT", "plaintext SHA-256 does not match the manifest").naming(self.sealed_path(path))


def open_model_dir(
    path: str | os.PathLike[str],
    *,
    identities: Identity | Sequence[Identity],
    threads: int | None = None,
    source_options: dict[str, Any] | None = None,
    require_signer: SignerKey | None = None,
) -> ModelDir:
    """Opens a sealed model directory (``tensorseal seal-dir`` output) for reading in memory.

    Checks, as ``tensorseal open-dir`` does, before anything is returned:

    - the manifest opens with ``identities`` and is bound to its own name and model id;
    - the directory holds exactly the manifest's files: an extra file is
      ``E_DECRYPT ... not in the sealed manifest (added or renamed)``, a missing one
      ``E_DECRYPT ... missing from the model``;
    - every file's encryption context names its path and this model (a shard from another
      sealed model, or two shards swapped, is ``E_DECRYPT ... belongs to another path or model``)
      and its plaintext size is the manifest's.

    Every error names the file (``e.file``). Each file's SHA-256 is checked when it is read.

    With ``require_signer`` (the producer's ECDSA public key: a PEM path or bytes), the
    directory's ``model.sig`` (``tensorseal seal-dir --sign``) must be that key's signature and
    bind exactly the files present, by their sealed digests, before anything is decrypted, and
    the decrypted manifest must be the signed one: an unsigned model, another signer, or a file
    replaced, added or removed is ``E_SIGNATURE`` (:mod:`tensorseal.hf.provenance`).

    Args:
        path: the sealed directory, or its URL in object storage (``s3://bucket/prefix/``,
            ``https://host/prefix/``, any fsspec URL): files are then read with ranged
            requests, without a local copy (see :mod:`tensorseal.remote`).
        identities: keys to try (identity file entries, a keystore, a KEK...).
        threads: decryption threads for large files (see :class:`~tensorseal.reader.SealedFile`).
        source_options: for remote files (``client``, ``endpoint_url``, ``headers``...): see
            :func:`tensorseal.remote.open_source`.
        require_signer: refuse the model unless signed by this public key (see above), from a
            local directory or a URL alike (``model.sig`` and each file's header are then
            fetched with ranged reads).

    Returns:
        A :class:`ModelDir`, to close (or use in ``with``).

    Example:
        >>> with open_model_dir("gpt2.sealed", identities=read_identity_file("id.txt")) as md:  # doctest: +SKIP
        ...     config = md.read_json("config.json")
        ...     state = md.load_file("model.safetensors")
    """
    loc = Location(path, source_options)
    ids = _as_list(identities)
    binding = None
    if require_signer is not None:  # local or remote alike: nothing is decrypted before this
        binding = verify_sealed_dir(loc, require_signer)
    manifest = read_manifest(loc, ids)
    if binding is not None:
        check_signed_manifest(manifest, binding)
    _check_listing(loc, manifest)
    files: dict[str, SealedFile] = {}
    try:
        for entry in manifest.files:
            files[entry.path] = _open_one(loc, manifest.model, entry, ids, threads)
    except BaseException:
        for sf in files.values():
            sf.close()
        raise
    return ModelDir(loc.shown(), manifest, files, threads, loc)


def _check_listing(loc: Location, m: Manifest) -> None:
    expected = {f.path + SEALED_SUFFIX for f in m.files} | {MANIFEST_NAME + SEALED_SUFFIX}
    listed = loc.list()
    if listed is None:  # plain HTTP cannot list: a missing file fails when it is opened
        return
    # model.sig is checked by verify_sealed_dir when a signer is required, ignored otherwise.
    present = [p for p in listed if p != SIGNATURE_NAME]
    for p in present:
        if p not in expected:
            raise error("E_DECRYPT", "not in the sealed manifest (added or renamed)").naming(loc.shown(p))
    have = set(present)
    for p in sorted(expected):
        if p not in have:
            missing = error("E_DECRYPT", "missing from the model (listed in the sealed manifest)")
            raise missing.naming(loc.shown(p))


def _open_one(loc: Location, model: str, entry: ManifestEntry, ids: list[Identity], threads: int | None) -> SealedFile:
    src = loc.join(entry.path + SEALED_SUFFIX)
    try:
        # The manifest says which files are public; any other must be encrypted (FORMAT.md §2.5).
        sf = SealedFile(src, ids, expect_context=context_for(model, entry.path), threads=threads,
                        require_encrypted=entry.encrypted, source_options=loc.options)  # fmt: skip
    except TensorSealError as e:
        if e.code == "E_CONTEXT":
            swapped = error("E_DECRYPT", f"belongs to another path or model (swapped or renamed): {e.message}")
            raise swapped.naming(loc.shown(entry.path + SEALED_SUFFIX)) from None
        raise
    if sf.plaintext_length != entry.size:
        sf.close()
        raise error("E_DECRYPT", "plaintext size does not match the manifest").naming(sf.name)
    if not entry.encrypted and sf.descriptor.encrypted:
        sf.close()
        raise error("E_DECRYPT", "the manifest lists a public file, but this one is encrypted").naming(sf.name)
    return sf
