"""The shape of ``keystore.json`` (spec/KEYSTORE.md) and everything done to it with a known root
key: strict parsing (version 1 is migrated to version 2 in memory, as the TS keystore does), the
document MAC, KEK material sealing, and the lifecycle edits a writer makes (purging versions
whose destruction is due, adding a version). Mirrors ``src/keys/keystore-doc.ts``,
``keystore-store.ts`` and ``keystore-lifecycle.ts``.

The document is kept as the parsed JSON (version 2 form, without ``mac``): that is what the MAC
covers and what a writer writes back, so fields round-trip exactly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from datetime import datetime, timezone
from typing import Any, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import TensorSealError, fail
from ..format.hkdf import hkdf_expand
from ..format.metadata import metadata_problem
from .canonical_json import canonical_json

KEYSTORE_FORMAT = "tensorseal-keystore"
KEYSTORE_VERSION = 2
KEYSTORE_VERSIONS = (1, 2)
STATES = ("enabled", "disabled", "scheduled_for_destruction", "destroyed")
MAX_WRAPS = 2**53 - 1
MAX_VERSION = 0xFFFFFFFF
MAX_ROTATION_PERIOD = 100 * 366 * 86400
NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_MAC_LABEL = b"tensorseal.dev/v1 keystore mac"
_KEK_AAD_LABEL = b"tensorseal.dev/v1 keystore kek\x00"

Body = dict[str, Any]
"""The document without ``mac``, in version 2 form."""
Materials = dict[tuple[str, int], bytes]
"""(key name, version) -> 32-byte KEK material."""


class Doc:
    """Strict field access; every failure is ``E_KEYSTORE`` "damaged"."""

    def __init__(self, where: str) -> None:
        self.where = where

    def bad(self, why: str) -> NoReturn:
        fail("E_KEYSTORE", f"{self.where} is damaged ({why}): restore it from a backup")

    def obj(self, v: Any, what: str, fields: set[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
        if not isinstance(v, dict):
            self.bad(f"{what} is not an object")
        if set(v) != fields | (optional & set(v)):
            self.bad(f"{what} has fields {sorted(v)}, expected {sorted(fields)}")
        return v

    def str(self, v: Any, what: str) -> str:
        if not isinstance(v, str):
            self.bad(f"{what} is not a string")
        return v

    def int(self, v: Any, what: str, lo: int, hi: int) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.bad(f"{what} is not an integer in {lo}..{hi}")
        return v

    def bytes(self, v: Any, what: str, size: int) -> bytes:
        s = self.str(v, what)
        try:
            b = base64.b64decode(s, validate=True)
        except (binascii.Error, ValueError):
            self.bad(f"{what} is not {size} bytes of base64")
        if len(b) != size or base64.b64encode(b).decode() != s:
            self.bad(f"{what} is not {size} bytes of base64")
        return b

    def date(self, v: Any, what: str) -> str:
        s = self.str(v, what)
        try:
            parse_time(s)
        except ValueError:
            self.bad(f"{what} is not a date")
        return s


def parse_time(s: str) -> datetime:
    """An ISO-8601 time as the TS keystore writes it (``...Z``); no offset means UTC."""
    t = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def iso_time(t: datetime) -> str:
    """``t`` as JavaScript's ``Date.toISOString`` writes it: UTC, milliseconds, ``Z``."""
    u = t.astimezone(timezone.utc)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"non-finite number {name}")


def parse_envelope(d: Doc, data: bytes) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """First pass, before the MAC: (whole JSON, root document, stored MAC)."""
    try:
        top = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        d.bad("not valid JSON")
    if not isinstance(top, dict):
        d.bad("not an object")
    if top.get("format") != KEYSTORE_FORMAT:
        d.bad("not a tensorseal keystore")
    if top.get("version") not in KEYSTORE_VERSIONS or isinstance(top.get("version"), bool):
        fail("E_UNSUPPORTED", f"{d.where} has format version {top.get('version')!r}; this tensorseal reads versions 1 and 2: upgrade tensorseal")
    root = top.get("root")
    kind = root.get("kind") if isinstance(root, dict) else None
    if kind == "passphrase":
        r = d.obj(root, "root", {"kind", "kdf", "logN", "r", "p", "salt", "nonce", "sealed"})
        if r["kdf"] != "scrypt":
            d.bad("root.kdf is not scrypt")
        d.int(r["logN"], "root.logN", 1, 63)
        d.int(r["r"], "root.r", 1, 1024)
        d.int(r["p"], "root.p", 1, 1024)
        d.bytes(r["salt"], "root.salt", 16)
        d.bytes(r["nonce"], "root.nonce", 12)
        d.bytes(r["sealed"], "root.sealed", 48)
        # The field order JSON.stringify gives the TS RootDoc (the v1 migration id hashes it).
        doc = {k: r[k] for k in ("kind", "kdf", "logN", "r", "p", "salt", "nonce", "sealed")}
    elif kind == "key-file":
        r = d.obj(root, "root", {"kind", "check"})
        d.bytes(r["check"], "root.check", 32)
        doc = {"kind": kind, "check": r["check"]}
    else:
        d.bad("root.kind is neither passphrase nor key-file")
    return top, doc, d.bytes(top.get("mac"), "mac", 32)


def compute_mac(root: bytes, body: dict[str, Any]) -> bytes | None:
    """The document MAC, or None for a document tensorseal could not have written."""
    try:
        text = canonical_json(body).encode("utf-8")
    except (TensorSealError, UnicodeEncodeError):
        return None
    h = crypto_hmac.HMAC(hkdf_expand("sha512", root, _MAC_LABEL, 32), hashes.SHA256())
    h.update(text)
    return h.finalize()


def serialise(root: bytes, body: Body) -> bytes:
    """The file's bytes: the body plus its MAC, indented as the TS keystore writes it."""
    mac = compute_mac(root, body)
    if mac is None:
        fail("E_KEYSTORE", "the keystore document cannot be encoded (a bug): nothing was written")
    doc = {**body, "mac": base64.b64encode(mac).decode("ascii")}
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _kek_aad(name: str, version: int) -> bytes:
    return _KEK_AAD_LABEL + name.encode("utf-8") + version.to_bytes(4, "big")


def seal_material(root: bytes, name: str, version: int, material: bytes) -> dict[str, str]:
    """``nonce`` and ``material`` fields for one version (random 96-bit nonce)."""
    nonce = os.urandom(12)
    sealed = AESGCM(root).encrypt(nonce, material, _kek_aad(name, version))
    return {"nonce": base64.b64encode(nonce).decode("ascii"), "material": base64.b64encode(sealed).decode("ascii")}


def migrated_id(root_doc: dict[str, Any]) -> str:
    """The id a version 1 document gets: derived from its root object, as the TS keystore does."""
    text = "tensorseal keystore id\x00" + json.dumps(root_doc, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def parse_document(d: Doc, top: dict[str, Any], root_doc: dict[str, Any], root: bytes) -> tuple[Body, Materials]:
    """Second pass, after the MAC: the whole document strictly, as a version 2 body, and the
    decrypted material of every version that still has one."""
    v1 = top["version"] == 1
    d.obj(top, "the document", {"format", "version", "root", "keys", "mac"} | (set() if v1 else {"id"}))
    if v1:
        doc_id = migrated_id(root_doc)
    elif not (isinstance(top["id"], str) and re.fullmatch(r"[0-9a-f]{32}", top["id"])):
        d.bad("id is not 32 hex digits")
    else:
        doc_id = top["id"]
    if not isinstance(top["keys"], list):
        d.bad("keys is not an array")
    keys: list[dict[str, Any]] = []
    materials: Materials = {}
    for i, k in enumerate(top["keys"]):
        key = _parse_key(d, k, f"keys[{i}]", v1, root, materials)
        if any(x["name"] == key["name"] for x in keys):
            d.bad("a key name appears twice")
        keys.append(key)
    body = {"format": KEYSTORE_FORMAT, "version": KEYSTORE_VERSION, "id": doc_id, "root": top["root"], "keys": keys}
    return body, materials


def _parse_key(d: Doc, k: Any, what: str, v1: bool, root: bytes, materials: Materials) -> dict[str, Any]:
    if v1:
        k = dict(d.obj(k, what, {"name", "created", "primary", "versions"}))
        k["min_decryption_version"] = k["min_encryption_version"] = 1
    else:
        d.obj(
            k, what, {"name", "created", "primary", "min_decryption_version", "min_encryption_version", "versions"},
            frozenset({"rotation_period", "owner", "purpose", "tier"}),
        )
    name = d.str(k["name"], f"{what}.name")
    if not NAME.fullmatch(name):
        d.bad(f"{what}.name is not a valid key name")
    if not isinstance(k["versions"], list) or not k["versions"]:
        d.bad(f"{what}.versions is empty")
    versions = [_parse_version(d, v, f"{what}.versions[{j}]", v1, name, root, materials) for j, v in enumerate(k["versions"])]
    for a, b in zip(versions, versions[1:]):
        if b["version"] <= a["version"]:
            d.bad(f"{what}.versions are not ascending")
    primary = d.int(k["primary"], f"{what}.primary", 1, MAX_VERSION)
    p = next((v for v in versions if v["version"] == primary), None)
    if p is None:
        d.bad(f"{what}.primary names no version")
    if p["state"] != "enabled":
        d.bad(f"{what}.primary is not enabled")
    d.int(k["min_decryption_version"], f"{what}.min_decryption_version", 1, primary)
    d.int(k["min_encryption_version"], f"{what}.min_encryption_version", 1, primary)
    if "rotation_period" in k:
        d.int(k["rotation_period"], f"{what}.rotation_period", 1, MAX_ROTATION_PERIOD)
    for field in ("owner", "purpose", "tier"):  # governance metadata (KEYSTORE.md)
        if field in k and metadata_problem(field, d.str(k[field], f"{what}.{field}")) is not None:
            d.bad(f"{what}.{field} is not valid")
    d.date(k["created"], f"{what}.created")
    return {**k, "versions": versions}


def _parse_version(d: Doc, v: Any, what: str, v1: bool, name: str, root: bytes, materials: Materials) -> dict[str, Any]:
    if v1:
        v = {**d.obj(v, what, {"version", "created", "nonce", "material"}), "state": "enabled", "wraps": 0}
    else:
        state = v.get("state") if isinstance(v, dict) else None
        if state not in STATES:
            d.bad(f"{what}.state is not a known state")
        extra = {
            "destroyed": {"destroyed"},
            "scheduled_for_destruction": {"nonce", "material", "destroy_after"},
        }.get(state, {"nonce", "material"})
        d.obj(v, what, {"version", "created", "state", "wraps"} | extra)
        d.int(v["wraps"], f"{what}.wraps", 0, MAX_WRAPS)
    number = d.int(v["version"], f"{what}.version", 1, MAX_VERSION)
    d.date(v["created"], f"{what}.created")
    if v["state"] == "destroyed":
        d.date(v["destroyed"], f"{what}.destroyed")
        return dict(v)
    if v["state"] == "scheduled_for_destruction":
        d.date(v["destroy_after"], f"{what}.destroy_after")
    nonce = d.bytes(v["nonce"], f"{what}.nonce", 12)
    sealed = d.bytes(v["material"], f"{what}.material", 48)
    try:
        materials[(name, number)] = AESGCM(root).decrypt(nonce, sealed, _kek_aad(name, number))
    except InvalidTag:
        # Unreachable unless a forged file passed the MAC check: fail closed anyway.
        fail("E_KEYSTORE", f"key {name} v{number} does not decrypt: restore the keystore from a backup")
    return dict(v)


# -- lifecycle edits a writer makes (keystore-lifecycle.ts) ---------------------------------------


def find_version(k: dict[str, Any], version: int) -> dict[str, Any] | None:
    return next((v for v in k["versions"] if v["version"] == version), None)


def check_encryptable(k: dict[str, Any]) -> dict[str, Any]:
    """The primary version, if it may wrap new file keys; otherwise ``E_KEY_STATE``."""
    p = find_version(k, k["primary"])
    assert p is not None  # the parser guarantees it
    if p["state"] != "enabled":
        fail("E_KEY_STATE", f"primary version {p['version']} of key {k['name']} is {p['state']}: rotate it")
    if p["version"] < k["min_encryption_version"]:
        fail(
            "E_KEY_STATE",
            f"primary version {p['version']} of key {k['name']} is below its min_encryption_version"
            f" {k['min_encryption_version']}: rotate it with `tensorseal keys rotate {k['name']}`",
        )
    return p


def purge_due(body: Body, materials: Materials, now: datetime) -> list[tuple[str, int]]:
    """Destroys versions whose waiting period has passed (material erased); returns them."""
    out: list[tuple[str, int]] = []
    for k in body["keys"]:
        for v in k["versions"]:
            if v["state"] != "scheduled_for_destruction" or parse_time(v["destroy_after"]) > now:
                continue
            for field in ("destroy_after", "nonce", "material"):
                del v[field]
            v["state"] = "destroyed"
            v["destroyed"] = iso_time(now)
            materials.pop((k["name"], v["version"]), None)
            out.append((k["name"], v["version"]))
    return out


def add_version(k: dict[str, Any], root: bytes, materials: Materials, now: datetime) -> None:
    """Rotation: a new enabled version (max + 1) with fresh material becomes primary."""
    version = k["versions"][-1]["version"] + 1
    if version > MAX_VERSION:
        fail("E_KEYSTORE", f"key {k['name']} has run out of version numbers")
    material = os.urandom(32)
    materials[(k["name"], version)] = material
    k["versions"].append(
        {
            "version": version,
            "created": iso_time(now),
            "state": "enabled",
            "wraps": 0,
            **seal_material(root, k["name"], version, material),
        }
    )
    k["primary"] = version
