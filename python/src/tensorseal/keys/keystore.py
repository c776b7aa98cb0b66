"""Read-only access to the TypeScript CLI's local keystore (spec/KEYSTORE.md).

The file's MAC is verified (constant time) with the unlocked root key before any key or
metadata is used; an edited file is ``E_KEYSTORE``. This package never writes the keystore.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import TensorSealError, fail
from ..format.hkdf import hkdf_expand
from ..format.stanza import Stanza
from .canonical_json import canonical_json
from .kek import KekIdentity, KekRecipient
from .scrypt import MAX_WORK_FACTOR, MIN_WORK_FACTOR, passphrase_bytes, scrypt

KEYSTORE_FILE = "keystore.json"
KEYSTORE_FORMAT = "tensorseal-keystore"
KEYSTORE_VERSION = 2
KEYSTORE_VERSIONS = (1, 2)
_STATES = ("enabled", "disabled", "scheduled_for_destruction", "destroyed")
_MAX_WRAPS = 2**53 - 1
_MAX_ROTATION_PERIOD = 100 * 366 * 86400
_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_MAX_VERSION = 0xFFFFFFFF
_KDF_SALT_LABEL = b"tensorseal.dev/v1 keystore passphrase\x00"
_ROOT_AAD = b"tensorseal.dev/v1 keystore root\x00"
_CHECK_LABEL = b"tensorseal.dev/v1 keystore check"
_MAC_LABEL = b"tensorseal.dev/v1 keystore mac"
_KEK_AAD_LABEL = b"tensorseal.dev/v1 keystore kek\x00"


def default_home() -> Path:
    """``$TENSORSEAL_HOME``, else ``~/.tensorseal``."""
    env = os.environ.get("TENSORSEAL_HOME")
    return Path(env).resolve() if env else Path.home() / ".tensorseal"


@dataclass(frozen=True)
class KeyInfo:
    """Metadata of one KEK (never material)."""

    name: str
    created: str
    primary_version: int
    versions: tuple[int, ...]
    min_decryption_version: int = 1
    min_encryption_version: int = 1
    states: tuple[str, ...] = ()


class _Doc:
    """Strict field access; every failure is ``E_KEYSTORE`` "damaged"."""

    def __init__(self, where: str) -> None:
        self.where = where

    def bad(self, why: str) -> NoReturn:
        fail("E_KEYSTORE", f"{self.where} is damaged ({why}): restore it from a backup")

    def obj(self, v: Any, what: str, fields: set[str], optional: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
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
            datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)
        except ValueError:
            self.bad(f"{what} is not a date")
        return s


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"non-finite number {name}")


def read_root_key_file(path: str | os.PathLike[str]) -> bytes:
    """A root key file: exactly 32 raw bytes, or 64 hex characters and an optional newline."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        fail("E_KEYSTORE", f"cannot read the root key file {os.fspath(path)} ({e.strerror}): check TENSORSEAL_ROOT_KEY_FILE")
    if len(data) == 32:
        return data
    text = data.removesuffix(b"\r\n") if data.endswith(b"\r\n") else data.removesuffix(b"\n")
    if re.fullmatch(rb"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text.decode("ascii"))
    fail(
        "E_KEY",
        f"root key file {os.fspath(path)} must hold 32 raw bytes or 64 hex characters (it has {len(data)} bytes)",
    )


def _mac(root: bytes, body: dict[str, Any]) -> bytes | None:
    try:
        text = canonical_json(body).encode("utf-8")
    except (TensorSealError, UnicodeEncodeError):
        return None  # not canonicalisable: cannot have been written by tensorseal
    h = crypto_hmac.HMAC(hkdf_expand("sha512", root, _MAC_LABEL, 32), hashes.SHA256())
    h.update(text)
    return h.finalize()


class Keystore:
    """The local keystore, opened read-only; an Identity for every KEK version it holds.

    Use :meth:`open`. As an identity it unwraps ``kek`` stanzas of any key and version it holds
    (None for others); :meth:`recipient` wraps under a key's primary version.

    Example:
        >>> ks = Keystore.open("/home/me/.tensorseal", root_key_file="/run/secrets/root")  # doctest: +SKIP
        >>> tensors = load_file("model.tseal", identities=[ks])  # doctest: +SKIP
    """

    def __init__(self, home: Path, keys: dict[str, KeyInfo], materials: dict[tuple[str, int], bytes]) -> None:
        self.home = home
        self._keys = keys
        self._materials = materials

    @classmethod
    def open(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        passphrase: str | None = None,
        root_key_file: str | os.PathLike[str] | None = None,
    ) -> Keystore:
        """Reads, authenticates and decrypts ``keystore.json``.

        Args:
            home: the keystore directory (default ``$TENSORSEAL_HOME`` or ``~/.tensorseal``).
            passphrase: for a passphrase-sealed keystore.
            root_key_file: for a key-file keystore. With neither given, the environment's
                ``TENSORSEAL_ROOT_KEY_FILE`` or ``TENSORSEAL_KEYSTORE_PASSPHRASE`` is used.

        Returns:
            The keystore.

        Raises:
            TensorSealError: ``E_KEYSTORE`` for a missing, damaged or edited file, a wrong
                passphrase or root key file; ``E_UNSUPPORTED`` for unknown versions or
                scrypt parameters out of bounds.
        """
        home_path = Path(home) if home is not None else default_home()
        if passphrase is None and root_key_file is None:
            root_key_file = os.environ.get("TENSORSEAL_ROOT_KEY_FILE") or None
            if root_key_file is None:
                passphrase = os.environ.get("TENSORSEAL_KEYSTORE_PASSPHRASE")
        where = str(home_path / KEYSTORE_FILE)
        try:
            data = (home_path / KEYSTORE_FILE).read_bytes()
        except FileNotFoundError:
            fail("E_KEYSTORE", f"no keystore in {home_path}: run `tensorseal init`")
        except OSError as e:
            fail("E_KEYSTORE", f"cannot read {where}: {e.strerror}")
        d = _Doc(where)
        top, root_doc, stored_mac = _parse_envelope(d, data)
        root = _unlock_root(home_path, root_doc, passphrase, root_key_file)
        body = {k: v for k, v in top.items() if k != "mac"}
        expected = _mac(root, body)
        if expected is None or not hmac.compare_digest(expected, stored_mac):
            fail(
                "E_KEYSTORE",
                f"keystore.json was modified outside tensorseal (its MAC does not match): restore {where} from a backup",
            )
        keys, materials = _parse_keys(d, top, root)
        return cls(home_path, keys, materials)

    @property
    def id(self) -> str:
        return f"keystore:{self.home}"

    def list_keys(self) -> list[KeyInfo]:
        """Metadata of every key."""
        return list(self._keys.values())

    def recipient(self, name: str = "default") -> KekRecipient:
        """Wraps under the primary version of ``name`` (``E_KEYSTORE`` if unknown)."""
        k = self._keys.get(name)
        if k is None:
            fail("E_KEYSTORE", f"no key named {name!r} in the keystore in {self.home}: list keys with `tensorseal keys list`")
        p = k.primary_version
        if p < k.min_encryption_version:
            fail("E_KEY_STATE", f"primary version {p} of key {name} is below its min_encryption_version: rotate it with `tensorseal keys rotate {name}`")
        return KekRecipient(name, p, self._materials[(name, p)])

    def unwrap(self, s: Stanza) -> bytes | None:
        """Unwraps ``kek`` stanzas of this keystore's keys; None for other keys and versions.

        A version whose state forbids decryption (disabled, scheduled for destruction,
        destroyed, below min_decryption_version) is ``E_KEY_STATE``, as in the TS keystore.
        """
        return KekIdentity(self._lookup, self.id).unwrap(s)

    def _lookup(self, name: str, version: int) -> bytes | None:
        k = self._keys.get(name)
        if k is None or version not in k.versions:
            return None
        state = k.states[k.versions.index(version)] if k.states else "enabled"
        what = f"version {version} of key {name}"
        if state != "enabled":
            fail("E_KEY_STATE", f"{what} is {state.replace('_', ' ')}: it cannot open files (see `tensorseal keys show {name}`)")
        if version < k.min_decryption_version:
            fail("E_KEY_STATE", f"{what} is below its min_decryption_version {k.min_decryption_version}: rewrap the file with `tensorseal rewrap --to-latest`")
        return self._materials.get((name, version))


def _parse_envelope(d: _Doc, data: bytes) -> tuple[dict[str, Any], dict[str, Any], bytes]:
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
        doc = {
            "kind": kind,
            "logN": d.int(r["logN"], "root.logN", 1, 63),
            "r": d.int(r["r"], "root.r", 1, 1024),
            "p": d.int(r["p"], "root.p", 1, 1024),
            "salt": d.bytes(r["salt"], "root.salt", 16),
            "nonce": d.bytes(r["nonce"], "root.nonce", 12),
            "sealed": d.bytes(r["sealed"], "root.sealed", 48),
        }
    elif kind == "key-file":
        r = d.obj(root, "root", {"kind", "check"})
        doc = {"kind": kind, "check": d.bytes(r["check"], "root.check", 32)}
    else:
        d.bad("root.kind is neither passphrase nor key-file")
    return top, doc, d.bytes(top.get("mac"), "mac", 32)


def _unlock_root(home: Path, root: dict[str, Any], passphrase: str | None, key_file: str | os.PathLike[str] | None) -> bytes:
    if root["kind"] == "passphrase":
        if passphrase is None:
            fail("E_KEYSTORE", f"the keystore in {home} is sealed by a passphrase: give the passphrase")
        # Bounded before scrypt: these fields are read before the file is authenticated.
        if not MIN_WORK_FACTOR <= root["logN"] <= MAX_WORK_FACTOR:
            fail("E_UNSUPPORTED", f"keystore work factor 2^{root['logN']} is outside 2^10..2^20")
        if root["r"] != 8 or root["p"] != 1:
            fail("E_UNSUPPORTED", f"keystore scrypt parameters r={root['r']} p={root['p']} are not supported (r=8, p=1)")
        key = scrypt(passphrase_bytes(passphrase), _KDF_SALT_LABEL + root["salt"], root["logN"], 8, 1)
        try:
            return AESGCM(key).decrypt(root["nonce"], root["sealed"], _ROOT_AAD)
        except InvalidTag:
            fail("E_KEYSTORE", f"wrong passphrase for the keystore in {home}: try again")
    if key_file is None:
        fail("E_KEYSTORE", f"the keystore in {home} uses a root key file: set TENSORSEAL_ROOT_KEY_FILE to it")
    key = read_root_key_file(key_file)
    h = crypto_hmac.HMAC(key, hashes.SHA256())
    h.update(_CHECK_LABEL)
    if not hmac.compare_digest(h.finalize(), root["check"]):
        fail("E_KEYSTORE", f"root key file {os.fspath(key_file)} does not match the keystore in {home}: use the file the keystore was created with")
    return key


def _parse_keys(d: _Doc, top: dict[str, Any], root: bytes) -> tuple[dict[str, KeyInfo], dict[tuple[str, int], bytes]]:
    v1 = top["version"] == 1
    d.obj(top, "the document", {"format", "version", "root", "keys", "mac"} | (set() if v1 else {"id"}))
    if not v1 and not (isinstance(top["id"], str) and re.fullmatch(r"[0-9a-f]{32}", top["id"])):
        d.bad("id is not 32 hex digits")
    if not isinstance(top["keys"], list):
        d.bad("keys is not an array")
    keys: dict[str, KeyInfo] = {}
    materials: dict[tuple[str, int], bytes] = {}
    for i, k in enumerate(top["keys"]):
        what = f"keys[{i}]"
        if v1:
            k = d.obj(k, what, {"name", "created", "primary", "versions"})
        else:
            k = d.obj(
                k, what, {"name", "created", "primary", "min_decryption_version", "min_encryption_version", "versions"},
                {"rotation_period"},
            )
        name = d.str(k["name"], f"{what}.name")
        if not _NAME.fullmatch(name):
            d.bad(f"{what}.name is not a valid key name")
        if name in keys:
            d.bad("a key name appears twice")
        if not isinstance(k["versions"], list) or not k["versions"]:
            d.bad(f"{what}.versions is empty")
        versions: list[int] = []
        states: list[str] = []
        for j, v in enumerate(k["versions"]):
            number, state = _parse_version(d, v, f"{what}.versions[{j}]", v1, name, root, materials)
            if versions and number <= versions[-1]:
                d.bad(f"{what}.versions are not ascending")
            versions.append(number)
            states.append(state)
        primary = d.int(k["primary"], f"{what}.primary", 1, _MAX_VERSION)
        if primary not in versions:
            d.bad(f"{what}.primary names no version")
        if states[versions.index(primary)] != "enabled":
            d.bad(f"{what}.primary is not enabled")
        min_dec = 1 if v1 else d.int(k["min_decryption_version"], f"{what}.min_decryption_version", 1, primary)
        min_enc = 1 if v1 else d.int(k["min_encryption_version"], f"{what}.min_encryption_version", 1, primary)
        if "rotation_period" in k:
            d.int(k["rotation_period"], f"{what}.rotation_period", 1, _MAX_ROTATION_PERIOD)
        created = d.date(k["created"], f"{what}.created")
        keys[name] = KeyInfo(name, created, primary, tuple(versions), min_dec, min_enc, tuple(states))
    return keys, materials


def _parse_version(
    d: _Doc, v: Any, what: str, v1: bool, name: str, root: bytes, materials: dict[tuple[str, int], bytes]
) -> tuple[int, str]:
    if v1:
        v = d.obj(v, what, {"version", "created", "nonce", "material"})
        state = "enabled"
    else:
        state = v.get("state") if isinstance(v, dict) else None
        if state not in _STATES:
            d.bad(f"{what}.state is not a known state")
        extra = {
            "destroyed": {"destroyed"},
            "scheduled_for_destruction": {"nonce", "material", "destroy_after"},
        }.get(state, {"nonce", "material"})
        v = d.obj(v, what, {"version", "created", "state", "wraps"} | extra)
        d.int(v["wraps"], f"{what}.wraps", 0, _MAX_WRAPS)
    number = d.int(v["version"], f"{what}.version", 1, _MAX_VERSION)
    d.date(v["created"], f"{what}.created")
    if state == "destroyed":
        d.date(v["destroyed"], f"{what}.destroyed")
        return number, state
    if state == "scheduled_for_destruction":
        d.date(v["destroy_after"], f"{what}.destroy_after")
    nonce = d.bytes(v["nonce"], f"{what}.nonce", 12)
    sealed = d.bytes(v["material"], f"{what}.material", 48)
    aad = _KEK_AAD_LABEL + name.encode("utf-8") + number.to_bytes(4, "big")
    try:
        materials[(name, number)] = AESGCM(root).decrypt(nonce, sealed, aad)
    except InvalidTag:
        # Unreachable unless a forged file passed the MAC check: fail closed anyway.
        fail("E_KEYSTORE", f"key {name} v{number} does not decrypt: restore the keystore from a backup")
    return number, state
