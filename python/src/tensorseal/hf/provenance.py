"""Signed provenance of sealed model directories (``tensorseal seal-dir --sign``), checked in
process: the Python side of src/integrations/provenance (see docs/PROVENANCE.md).

``model.sig`` in the sealed directory is an OpenSSF model-signing bundle (Sigstore bundle v0.3,
DSSE envelope, in-toto statement with the ``https://model_signing/signature/v1.0`` predicate)
signed with an ECDSA key. Its ``predicate.tensorseal`` field binds the model id, every file's
plaintext size and SHA-256 and every sealed file's *sealed digest*: SHA-256 over its prefix,
descriptor, payload salt and key commitment, which ``rewrap`` never changes.

:func:`verify_sealed_dir` checks, with no decryption key and before anything is decrypted:
the signature against the required signer's public key, that the directory holds exactly the
signed files, and each sealed digest. :func:`check_signed_manifest` then ties the decrypted
manifest to the signature. Every failure is ``E_SIGNATURE``. Crypto: pyca/cryptography only.

A directory (or one file) in object storage is checked by the same functions: the signature
and each file's header are read through :mod:`tensorseal.remote` with ranged reads, the
signature refused over 64 MiB before it is fetched, and never a payload byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..errors import TensorSealError, fail
from ..reader import naming, read_header
from ..remote import RangeSource, is_url, open_source, redact_url
from .location import Location
from .manifest import MANIFEST_NAME, SEALED_SUFFIX, Manifest, _utf16

SIGNATURE_NAME = "model.sig"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
IGNORE_PATHS = (".github", ".gitattributes", ".gitignore", ".git", SIGNATURE_NAME)
_MAX_SIGNATURE_BYTES = 64 << 20
_PAYLOAD_IDENTITY = 56  # salt (24) + commitment (32)
_REMOTE_PARALLEL = 8  # header fetches in flight while checking a remote directory
_HASHES = {"secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384, "secp521r1": hashes.SHA512}
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")

SignerKey = Union[str, os.PathLike, bytes, ec.EllipticCurvePublicKey]


@dataclass(frozen=True)
class SignedFile:
    path: str
    size: int
    sha256: str
    sealed: str


@dataclass(frozen=True)
class Binding:
    model: str
    manifest: str
    files: tuple[SignedFile, ...]


@dataclass(frozen=True)
class FileBinding:
    """One sealed file (``tensorseal seal --sign``): its signature is ``FILE.sig``."""

    size: int
    sha256: str
    sealed: str


def load_signer(key: SignerKey) -> ec.EllipticCurvePublicKey:
    """The required signer: a PEM public key (path or bytes) or a loaded EC public key.

    A private key is refused: verifying needs only the public one.
    """
    if isinstance(key, ec.EllipticCurvePublicKey):
        pub = key
    else:
        pem = bytes(key) if isinstance(key, (bytes, bytearray, memoryview)) else _read(os.fspath(key))
        if b"PRIVATE KEY" in pem:
            fail("E_KEY", "require_signer: give the signer's PUBLIC key (openssl ec -in KEY -pubout), not the private key")
        try:
            loaded = serialization.load_pem_public_key(pem)
        except ValueError:
            fail("E_KEY", "require_signer: not a PEM public key")
        if not isinstance(loaded, ec.EllipticCurvePublicKey):
            fail("E_KEY", "require_signer: not an ECDSA public key")
        pub = loaded
    _hash_for(pub)
    return pub


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(1 << 20)
    except OSError as e:
        fail("E_IO", f"require_signer: cannot read the public key file: {e.strerror}")


def _hash_for(pub: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    h = _HASHES.get(pub.curve.name)
    if h is None:
        fail("E_KEY", "require_signer: not an ECDSA P-256, P-384 or P-521 key")
    return h()


def key_hint(pub: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 (hex) of the key's SubjectPublicKeyInfo PEM, as model-signing records it."""
    pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def pae(payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of an in-toto payload."""
    t = IN_TOTO_PAYLOAD_TYPE.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def verify_bundle(doc: Any, pub: ec.EllipticCurvePublicKey) -> bytes:
    """Checks a model-signing bundle against ``pub``; returns the signed payload bytes."""
    if not isinstance(doc, dict) or doc.get("mediaType") != BUNDLE_MEDIA_TYPE:
        fail("E_SIGNATURE", f"signature is not a {BUNDLE_MEDIA_TYPE} bundle")
    env = doc.get("dsseEnvelope")
    if not isinstance(env, dict) or env.get("payloadType") != IN_TOTO_PAYLOAD_TYPE:
        fail("E_SIGNATURE", "signature bundle holds no in-toto DSSE envelope")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        fail("E_SIGNATURE", "signature bundle must hold exactly one signature")
    material = doc.get("verificationMaterial")
    hint = material.get("publicKey", {}).get("hint") if isinstance(material, dict) else None
    if isinstance(hint, str) and hint and hint != key_hint(pub):
        fail("E_SIGNATURE", "the model was signed by another key than require_signer names")
    try:
        payload = base64.b64decode(env.get("payload"), validate=True)
        sig = base64.b64decode(sigs[0].get("sig"), validate=True)
    except (TypeError, ValueError, binascii.Error):
        fail("E_SIGNATURE", "signature bundle: payload or signature is not base64 text")
    try:
        pub.verify(sig, pae(payload), ec.ECDSA(_hash_for(pub)))
    except InvalidSignature:
        fail("E_SIGNATURE", "the signature does not verify with the require_signer key (modified, or signed by another key)")
    return payload


def _ignored(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in IGNORE_PATHS)


def _resources(b: Binding | FileBinding) -> list[dict[str, str]]:
    if isinstance(b, FileBinding):  # model-signing names a single-file model's resource "."
        return [{"name": ".", "digest": b.sha256, "algorithm": "sha256"}]
    kept = sorted((f for f in b.files if not _ignored(f.path)), key=lambda f: f.path.split("/"))
    return [{"name": f.path, "digest": f.sha256, "algorithm": "sha256"} for f in kept]


def parse_statement(payload: bytes) -> Binding | FileBinding:
    """The TensorSeal binding of a verified statement, checked against its resources."""
    try:
        doc = json.loads(payload)
    except ValueError:
        fail("E_SIGNATURE", "signed payload is not JSON")
    if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE or doc.get("predicateType") != PREDICATE_TYPE:
        fail("E_SIGNATURE", f"signed payload is not a {PREDICATE_TYPE} in-toto statement")
    pred = doc.get("predicate")
    binding = _parse_binding(pred.get("tensorseal") if isinstance(pred, dict) else None)
    resources = _resources(binding)
    signed = pred.get("resources")
    if not isinstance(signed, list) or [
        {k: r.get(k) for k in ("name", "digest", "algorithm")} if isinstance(r, dict) else None for r in signed
    ] != resources:
        fail("E_SIGNATURE", "signed resources and TensorSeal binding disagree")
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    subject = doc.get("subject")
    ok = isinstance(subject, list) and len(subject) == 1 and isinstance(subject[0], dict)
    if not ok or (subject[0].get("digest") or {}).get("sha256") != root:
        fail("E_SIGNATURE", "signed statement's root digest does not match its resources")
    return binding


def _hex(s: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(s, str) and pattern.fullmatch(s) is not None


def _file_fields_ok(f: dict[str, Any]) -> bool:
    """A signed file's size (a safe integer) and its plaintext and sealed SHA-256 are well formed."""
    return (
        type(f.get("size")) is int
        and 0 <= f["size"] <= 2**53 - 1
        and _hex(f.get("sha256"), _HEX64)
        and _hex(f.get("sealed"), _HEX64)
    )


def _parse_binding(b: Any) -> Binding | FileBinding:
    if not isinstance(b, dict):
        fail("E_SIGNATURE", "the signature does not bind sealed files (made by another tool?)")
    if "file" in b:
        f = b["file"]
        if not (b.get("version") == 1 and isinstance(f, dict) and _file_fields_ok(f)):
            fail("E_SIGNATURE", "signed TensorSeal file binding is malformed")
        return FileBinding(f["size"], f["sha256"], f["sealed"])
    hex_ = _hex

    files_doc = b.get("files")
    if b.get("version") != 1 or not hex_(b.get("model"), _HEX32) or not hex_(b.get("manifest"), _HEX64):
        fail("E_SIGNATURE", "signed TensorSeal binding is malformed")
    if not isinstance(files_doc, list):
        fail("E_SIGNATURE", "signed TensorSeal binding is malformed")
    files: list[SignedFile] = []
    prev = b""
    for f in files_doc:
        ok = (
            isinstance(f, dict)
            and isinstance(f.get("path"), str)
            and _utf16(f["path"]) > prev
            and _file_fields_ok(f)
        )
        if not ok:
            fail("E_SIGNATURE", "signed TensorSeal binding: bad or unsorted file entry")
        prev = _utf16(f["path"])
        files.append(SignedFile(f["path"], f["size"], f["sha256"], f["sealed"]))
    return Binding(b["model"], b["manifest"], tuple(files))


def _read_bundle(sig_path: str, unsigned: str) -> Any:
    try:
        size = os.path.getsize(sig_path)
    except OSError:
        fail("E_SIGNATURE", unsigned)
    if size > _MAX_SIGNATURE_BYTES:
        fail("E_SIGNATURE", f"{sig_path} is over 64 MiB")
    try:
        with open(sig_path, "rb") as f:
            return _parse_bundle(f.read(_MAX_SIGNATURE_BYTES + 1), sig_path)
    except OSError as e:
        fail("E_IO", f"cannot read {sig_path}: {e.strerror}")


def _parse_bundle(data: bytes, shown: str) -> Any:
    # Re-checked on the bytes read: a file or object grown since its size was taken is refused.
    if len(data) > _MAX_SIGNATURE_BYTES:
        fail("E_SIGNATURE", f"{shown} is over 64 MiB")
    try:
        return json.loads(data)
    except ValueError:
        fail("E_SIGNATURE", f"{shown} is not a JSON signature bundle")


def _read_remote_bundle(url: str, options: dict[str, Any], unsigned: str) -> Any:
    """A remote signature bundle through the same ranged sources as the sealed files (its size
    is known before a byte is fetched, so an oversized one is never downloaded)."""
    shown = redact_url(url)
    try:
        src = open_source(url, **options)
    except TensorSealError as e:
        if e.code == "E_IO" and "no such" in e.message:
            fail("E_SIGNATURE", unsigned)
        raise
    with src:
        if src.size > _MAX_SIGNATURE_BYTES:
            fail("E_SIGNATURE", f"{shown} is over 64 MiB")
        return _parse_bundle(src.read(0, src.size), shown)


def verify_sealed_file(
    path: str | os.PathLike[str], signer: SignerKey, *, source_options: dict[str, Any] | None = None
) -> FileBinding:
    """Checks ``FILE.sig`` (``tensorseal seal --sign``) against ``signer`` and the sealed digest of
    ``path``, without a key. The plaintext is checked by :func:`plaintext_check` when read.

    ``path`` may be a URL (``s3://``, ``https://``, fsspec): ``URL.sig`` and the header are then
    fetched by ranged reads (``source_options`` as for :func:`tensorseal.remote.open_source`);
    a URL with a query string (a presigned URL) cannot name its ``.sig`` and is refused."""
    pub = load_signer(signer)
    sealed = os.fspath(path)
    remote = is_url(sealed)
    if remote and "?" in sealed:
        fail("E_USAGE", "require_signer: a presigned URL cannot name its .sig; verify the file where it is stored")
    shown = redact_url(sealed) if remote else sealed
    sig_path, sig_shown = sealed + ".sig", shown + ".sig"
    unsigned = f"{shown} is unsigned (no {sig_shown}): a signer is required"
    options = dict(source_options or {})
    doc = _read_remote_bundle(sig_path, options, unsigned) if remote else _read_bundle(sig_path, unsigned)
    binding = parse_statement(verify_bundle(doc, pub))
    if not isinstance(binding, FileBinding):
        fail("E_SIGNATURE", f"{sig_shown} signs a model directory, not one file")
    if remote:
        with open_source(sealed, **options) as src:
            digest = sealed_digest(src)
    else:
        digest = sealed_digest(sealed)
    if not hmac.compare_digest(digest, binding.sealed):
        fail("E_SIGNATURE", f"{shown} is not the signed file (replaced or re-sealed)")
    return binding


def plaintext_check(binding: FileBinding, header: bytes) -> Any:
    """A loader ``check`` (see tensorseal.safetensors._load_np): the safetensors header bytes and
    the decrypted data section must hash to the signed plaintext."""

    def check(data: memoryview) -> None:
        h = hashlib.sha256(header)
        h.update(data)
        if len(header) + len(data) != binding.size or h.hexdigest() != binding.sha256:
            fail("E_SIGNATURE", "the plaintext is not the signed one")

    return check


def sealed_digest(path: str | RangeSource) -> str:
    """SHA-256 over a sealed file's prefix, descriptor, payload salt and commitment (no key).

    ``path`` is a local file or a remote source (:func:`tensorseal.remote.open_source`): then
    only the header and the 56 bytes after it are fetched, with ranged reads."""
    if isinstance(path, RangeSource):
        h = read_header(path)
        with naming(path.name):
            if path.size < h.header_length + _PAYLOAD_IDENTITY:
                fail("E_TRUNCATED", "file ends before its payload salt and commitment")
            ident = path.read(h.header_length, _PAYLOAD_IDENTITY)
    else:
        with open(path, "rb") as f:
            h = read_header(f)
            f.seek(h.header_length)
            ident = f.read(_PAYLOAD_IDENTITY)
        if len(ident) != _PAYLOAD_IDENTITY:
            fail("E_TRUNCATED", f"{path}: file ends before its payload salt and commitment")
    return hashlib.sha256(h.prefix_bytes + h.descriptor_bytes + ident).hexdigest()


def _digest_at(loc: Location, rel: str) -> str:
    if not loc.remote:
        return sealed_digest(loc.join(rel))
    try:
        src = open_source(loc.join(rel), **loc.options)
    except TensorSealError as e:
        if e.code == "E_IO" and "no such" in e.message:
            fail("E_SIGNATURE", f"{loc.shown(rel)} is signed but missing")
        raise
    with src:
        return sealed_digest(src)


def verify_sealed_dir(
    root: str | os.PathLike[str] | Location, signer: SignerKey, *, source_options: dict[str, Any] | None = None
) -> Binding:
    """Checks ``root``'s ``model.sig`` against ``signer`` without decrypting (see module doc).

    ``root`` is a local directory or a directory URL (``s3://``, ``https://``, any fsspec URL;
    ``source_options`` as for :func:`tensorseal.remote.open_source`): the same checks, with
    ``model.sig`` (at most 64 MiB) and each file's header fetched by ranged reads. Over plain
    HTTP, which cannot list, files added beside the signed ones cannot be seen; they are never
    read either (only the signed manifest's files are opened)."""
    pub = load_signer(signer)
    loc = root if isinstance(root, Location) else Location(root, source_options)
    sig_shown = loc.shown(SIGNATURE_NAME)
    unsigned = f"{loc.shown()} is unsigned (no {SIGNATURE_NAME}): a signer is required"
    if loc.remote:
        doc = _read_remote_bundle(loc.join(SIGNATURE_NAME), loc.options, unsigned)
    else:
        doc = _read_bundle(sig_shown, unsigned)
    binding = parse_statement(verify_bundle(doc, pub))
    if not isinstance(binding, Binding):
        fail("E_SIGNATURE", f"{sig_shown} signs a single file, not this directory")
    expected = {f.path + SEALED_SUFFIX: f.sealed for f in binding.files}
    expected[MANIFEST_NAME + SEALED_SUFFIX] = binding.manifest
    listed = loc.list()
    if listed is not None:  # None: plain HTTP, no listing (see above)
        present = [p for p in listed if p != SIGNATURE_NAME]
        for p in present:
            if p not in expected:
                fail("E_SIGNATURE", f"{loc.shown(p)} is not in the signed model (added or renamed)")
        have = set(present)
        for p in expected:
            if p not in have:
                fail("E_SIGNATURE", f"{loc.shown(p)} is signed but missing")
    for p, got in zip(expected, _digests(loc, list(expected))):
        if not hmac.compare_digest(got, expected[p]):
            fail("E_SIGNATURE", f"{loc.shown(p)} is not the signed file (replaced, swapped or re-sealed)")
    return binding


def _digests(loc: Location, rels: list[str]) -> Iterator[str]:
    """Sealed digests in ``rels`` order. Remote headers are fetched a few at a time (each is a
    few round trips; a many-shard model would otherwise wait for them one by one); the first
    failure in order is the one raised, as locally."""
    if not loc.remote or len(rels) < 2:
        return (_digest_at(loc, p) for p in rels)
    pool = ThreadPoolExecutor(max_workers=min(_REMOTE_PARALLEL, len(rels)), thread_name_prefix="tensorseal-sig")
    try:
        return iter(list(pool.map(lambda p: _digest_at(loc, p), rels)))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def check_signed_manifest(m: Manifest, binding: Binding) -> None:
    """The decrypted manifest must list exactly the signed files, model id, sizes and digests."""
    mine = [(f.path, f.size, f.sha256) for f in m.files]
    signed = [(f.path, f.size, f.sha256) for f in binding.files]
    if m.model != binding.model or mine != signed:
        fail("E_SIGNATURE", "the sealed manifest does not match the signed one")
