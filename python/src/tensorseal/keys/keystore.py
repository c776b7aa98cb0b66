"""The TypeScript CLI's local keystore (spec/KEYSTORE.md), from Python: unwrapping with every
version it holds, and wrapping under a key's primary version with the usage counter kept as the
TS keystore keeps it.

The file's MAC is verified (constant time) with the unlocked root key before any key or
metadata is used; an edited file is ``E_KEYSTORE``.

Usage counters: a writer counts each wrap durably before releasing its stanza. As in
``src/keys/keystore.ts``, a process reserves a block of wraps (1, 2, 4, … up to 4096) in one
locked, atomic write and hands them out from memory; :meth:`Keystore.flush` (or closing the
keystore) gives back what was not used. A crash loses no count: the file over-counts by at most
the unused block, never under-counts. At the wrap limit (2^31) the key is rotated first.
Every write reloads the file under ``keystore.lock`` (another process may have changed it) and
destroys versions whose waiting period has passed, exactly as a TS writer does.
"""

from __future__ import annotations

import base64
import hmac
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import fail
from ..format.stanza import Stanza
from .kek import KEK_STANZA, KekIdentity, wrap_kek
from .keystore_doc import (
    Body,
    Doc,
    Materials,
    add_version,
    check_encryptable,
    compute_mac,
    find_version,
    parse_document,
    parse_envelope,
    purge_due,
    serialise,
)
from .keystore_file import KEYSTORE_FILE, keystore_lock, keystore_path, write_keystore_file
from .scrypt import MAX_WORK_FACTOR, MIN_WORK_FACTOR, passphrase_bytes, scrypt

DEFAULT_WRAP_LIMIT = 2**31
"""Wraps per KEK version before a forced rotation: half of the 2^32 random 96-bit nonces NIST
SP 800-38D §8.3 allows per GCM key."""
_MAX_LEASE_BLOCK = 4096
_KDF_SALT_LABEL = b"tensorseal.dev/v1 keystore passphrase\x00"
_ROOT_AAD = b"tensorseal.dev/v1 keystore root\x00"
_CHECK_LABEL = b"tensorseal.dev/v1 keystore check"


def default_home() -> Path:
    """``$TENSORSEAL_HOME``, else ``~/.tensorseal``."""
    env = os.environ.get("TENSORSEAL_HOME")
    return Path(env).resolve() if env else Path.home() / ".tensorseal"


@dataclass(frozen=True)
class KeyInfo:
    """Metadata of one KEK (never material); per-version tuples are in ``versions`` order."""

    name: str
    created: str
    primary_version: int
    versions: tuple[int, ...]
    min_decryption_version: int = 1
    min_encryption_version: int = 1
    states: tuple[str, ...] = ()
    wraps: tuple[int, ...] = ()
    #: Governance metadata (KEYSTORE.md; ``tensorseal keys set --owner --purpose --tier``).
    owner: str | None = None
    purpose: str | None = None
    tier: str | None = None


def _info(k: dict[str, Any]) -> KeyInfo:
    vs = k["versions"]
    return KeyInfo(
        k["name"],
        k["created"],
        k["primary"],
        tuple(v["version"] for v in vs),
        k["min_decryption_version"],
        k["min_encryption_version"],
        tuple(v["state"] for v in vs),
        tuple(v["wraps"] for v in vs),
        k.get("owner"),
        k.get("purpose"),
        k.get("tier"),
    )


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


@dataclass
class _Lease:
    version: int
    remaining: int
    next_block: int


class Keystore:
    """The local keystore; an Identity for every KEK version it holds.

    Use :meth:`open`. As an identity it unwraps ``kek`` stanzas of any key and version it holds
    (None for others; ``E_KEY_STATE`` for a version whose state forbids it). :meth:`recipient`
    wraps under a key's primary version and counts each wrap in ``keystore.json`` before the
    stanza is released. Call :meth:`flush` (or :meth:`close`, or use ``with``) when done
    sealing, to give back reserved wraps.

    Example:
        >>> with Keystore.open("/home/me/.tensorseal", root_key_file="/run/secrets/root") as ks:  # doctest: +SKIP
        ...     save_file(tensors, "model.tseal", recipients=[ks.recipient("default")])
        ...     tensors = load_file("model.tseal", identities=[ks])
    """

    def __init__(
        self,
        home: Path,
        root: bytes,
        body: Body,
        materials: Materials,
        *,
        now: Callable[[], datetime] | None = None,
        wrap_limit: int = DEFAULT_WRAP_LIMIT,
    ) -> None:
        if isinstance(wrap_limit, bool) or not isinstance(wrap_limit, int) or not 1 <= wrap_limit <= DEFAULT_WRAP_LIMIT:
            fail("E_USAGE", f"wrap limit must be an integer from 1 to 2^31, got {wrap_limit!r}")
        self.home = home
        self._root = root
        self._body = body
        self._materials = materials
        self._now = now or (lambda: datetime.now(timezone.utc))
        self._wrap_limit = wrap_limit
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.RLock()
        self._seen = _file_stamp(home)

    @classmethod
    def open(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        passphrase: str | None = None,
        root_key_file: str | os.PathLike[str] | None = None,
        now: Callable[[], datetime] | None = None,
        wrap_limit: int = DEFAULT_WRAP_LIMIT,
    ) -> Keystore:
        """Reads, authenticates and decrypts ``keystore.json``.

        Args:
            home: the keystore directory (default ``$TENSORSEAL_HOME`` or ``~/.tensorseal``).
            passphrase: for a passphrase-sealed keystore.
            root_key_file: for a key-file keystore. With neither given, the environment's
                ``TENSORSEAL_ROOT_KEY_FILE`` or ``TENSORSEAL_KEYSTORE_PASSPHRASE`` is used.
            now: the clock for lifecycle decisions (tests); default the system clock (UTC).
            wrap_limit: wraps per version before a forced rotation (at most 2^31, the
                default); lower it for tests.

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
        data = _read(home_path)
        d = Doc(str(keystore_path(home_path)))
        _, root_doc, _ = parse_envelope(d, data)
        root = _unlock_root(home_path, root_doc, passphrase, root_key_file)
        body, materials = _load(home_path, data, root)
        return cls(home_path, root, body, materials, now=now, wrap_limit=wrap_limit)

    @property
    def id(self) -> str:
        return f"keystore:{self.home}"

    def list_keys(self) -> list[KeyInfo]:
        """Metadata of every key (as of the last read or write of the file)."""
        return [_info(k) for k in self._body["keys"]]

    def recipient(self, name: str = "default") -> KeystoreRecipient:
        """Wraps under the primary version of ``name`` as it is at each wrap, counting each wrap.

        Raises:
            TensorSealError: ``E_KEYSTORE`` for an unknown key, ``E_KEY_STATE`` when its primary
                may not wrap new file keys.
        """
        self._check_open()
        check_encryptable(self._key(self._body, name))
        return KeystoreRecipient(self, name)

    def unwrap(self, s: Stanza) -> bytes | None:
        """Unwraps ``kek`` stanzas of this keystore's keys; None for other keys and versions.

        A version whose state forbids decryption (disabled, scheduled for destruction,
        destroyed, below min_decryption_version) is ``E_KEY_STATE``, as in the TS keystore;
        the unlock goes on to the file's other stanzas.
        """
        if s.type != KEK_STANZA:
            return None
        return KekIdentity(self._lookup, self.id).unwrap(s)

    def refresh(self) -> None:
        """Re-reads ``keystore.json`` (authenticated with the root key) and adopts it.

        Raises:
            TensorSealError: ``E_KEYSTORE`` when the file is missing, damaged or was edited
                outside tensorseal; this object keeps its state.
        """
        self._check_open()
        with self._lock:
            self._adopt_file()

    def _refresh_if_changed(self) -> None:
        """One stat per wrap or unwrap: re-read only when another process rewrote the file."""
        with self._lock:
            if _file_stamp(self.home) != self._seen:
                self._adopt_file()

    def _adopt_file(self) -> None:
        stamp = _file_stamp(self.home)
        body, materials = _load(self.home, _read(self.home), self._root)
        self._body, self._materials, self._seen = body, materials, stamp

    def flush(self) -> None:
        """Gives back reserved but unused wraps (one write). Call it when done sealing."""
        with self._lock:
            open_leases = {n: l for n, l in self._leases.items() if l.remaining > 0}
            if open_leases:

                def give_back(body: Body, materials: Materials) -> None:
                    for name, lease in open_leases.items():
                        k = next((x for x in body["keys"] if x["name"] == name), None)
                        v = k and find_version(k, lease.version)
                        if v and v["wraps"] >= lease.remaining:
                            v["wraps"] -= lease.remaining

                self._mutate(give_back)
            self._leases.clear()

    def close(self) -> None:
        """Flushes, then forgets the root key and all material; the object is unusable after."""
        try:
            self.flush()
        finally:
            self._root = b""
            self._materials = {}
            self._body = {**self._body, "keys": []}
            self._leases.clear()

    def __enter__(self) -> Keystore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take_wrap(self, name: str) -> tuple[int, bytes]:
        """One counted wrap of ``name``'s primary: (version, material). From the lease, or
        after reserving a new block durably (the count is on disk before this returns)."""
        with self._lock:
            self._check_open()
            self._refresh_if_changed()  # rotated elsewhere: the lease's version is no longer primary
            lease = self._leases.get(name)
            if lease is None or lease.remaining == 0 or lease.version != self._key(self._body, name)["primary"]:
                lease = self._reserve(name, lease)
                self._leases[name] = lease
            lease.remaining -= 1
            return lease.version, self._materials[(name, lease.version)]

    def _reserve(self, name: str, old: _Lease | None) -> _Lease:
        out: list[_Lease] = []

        def reserve(body: Body, materials: Materials) -> None:
            k = self._key(body, name)
            if old is not None and old.remaining > 0:
                v = find_version(k, old.version)
                if v and v["wraps"] >= old.remaining:
                    v["wraps"] -= old.remaining
            if find_version(k, k["primary"])["wraps"] >= self._wrap_limit:  # type: ignore[index]
                add_version(k, self._root, materials, self._now())
            p = check_encryptable(k)
            block = min(old.next_block if old else 1, self._wrap_limit - p["wraps"])
            p["wraps"] += block
            out.append(_Lease(p["version"], block, min(block * 2, _MAX_LEASE_BLOCK)))

        self._mutate(reserve)
        return out[0]

    def _mutate(self, change: Callable[[Body, Materials], None]) -> None:
        """Locked read-modify-write: reload the file (another process may have changed it),
        destroy versions whose waiting period has passed, apply ``change``, write atomically,
        and only then adopt the new state. A failure before the rename leaves keystore.json
        byte-identical and this object unchanged."""
        self._check_open()
        with keystore_lock(self.home):
            body, materials = _load(self.home, _read(self.home), self._root)
            purge_due(body, materials, self._now())
            change(body, materials)
            write_keystore_file(self.home, serialise(self._root, body))
            stamp = _file_stamp(self.home)
        self._body, self._materials, self._seen = body, materials, stamp

    def _check_open(self) -> None:
        if not self._root:
            fail("E_USAGE", "this keystore was closed: open it again with Keystore.open")

    def _key(self, body: Body, name: str) -> dict[str, Any]:
        k = next((x for x in body["keys"] if x["name"] == name), None)
        if k is None:
            fail("E_KEYSTORE", f"no key named {name!r} in the keystore in {self.home}: list keys with `tensorseal keys list`")
        return k

    def _lookup(self, name: str, version: int) -> bytes | None:
        self._check_open()
        # A version created or a state changed by another process since this was read.
        self._refresh_if_changed()
        k = next((x for x in self._body["keys"] if x["name"] == name), None)
        v = k and find_version(k, version)
        if not k or not v:
            return None
        what = f"version {version} of key {name}"
        fix = "rewrap it: `tensorseal rewrap --to-latest FILE`"
        state = v["state"]
        if state == "destroyed":
            fail("E_KEY_STATE", f"{what} was destroyed on {v['destroyed']}: files wrapped only under it can never be opened again")
        if state == "scheduled_for_destruction":
            fail("E_KEY_STATE", f"{what} is scheduled for destruction after {v['destroy_after']} and cannot be used: cancel with `tensorseal keys cancel-destroy {name} {version}`, enable it, and {fix}")
        if state == "disabled":
            fail("E_KEY_STATE", f"{what} is disabled: enable it with `tensorseal keys enable {name} {version}`, then {fix}")
        if version < k["min_decryption_version"]:
            fail("E_KEY_STATE", f"{what} is below its min_decryption_version {k['min_decryption_version']}: {fix}")
        return self._materials.get((name, version))


class KeystoreRecipient:
    """``kek:NAME`` of a :class:`Keystore`: each wrap uses the primary version as it is then,
    and is counted in the keystore before its stanza is returned.

    Example:
        >>> ks.recipient("default").id  # doctest: +SKIP
        'kek:default'
    """

    def __init__(self, keystore: Keystore, name: str) -> None:
        self._keystore = keystore
        self.name = name

    @property
    def id(self) -> str:
        return f"kek:{self.name}"

    @property
    def version(self) -> int:
        """The key's primary version now (the next wrap may rotate it at the wrap limit)."""
        return self._keystore._key(self._keystore._body, self.name)["primary"]

    def wrap(self, file_key: bytes) -> Stanza:
        version, material = self._keystore._take_wrap(self.name)
        return wrap_kek(self.name, version, material, file_key)


def _file_stamp(home: Path) -> tuple[int, int, int] | None:
    """What changes when keystore.json is rewritten (an atomic rename: a new inode)."""
    try:
        st = os.stat(keystore_path(home))
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _read(home: Path) -> bytes:
    try:
        return keystore_path(home).read_bytes()
    except FileNotFoundError:
        fail("E_KEYSTORE", f"no keystore in {home}: run `tensorseal init`")
    except OSError as e:
        fail("E_KEYSTORE", f"cannot read {keystore_path(home)}: {e.strerror}")


def _load(home: Path, data: bytes, root: bytes) -> tuple[Body, Materials]:
    """Authenticates ``data`` with ``root`` (MAC, constant time), then parses it strictly."""
    where = str(keystore_path(home))
    d = Doc(where)
    top, root_doc, stored_mac = parse_envelope(d, data)
    expected = compute_mac(root, {k: v for k, v in top.items() if k != "mac"})
    if expected is None or not hmac.compare_digest(expected, stored_mac):
        fail(
            "E_KEYSTORE",
            f"{KEYSTORE_FILE} was modified outside tensorseal (its MAC does not match): restore {where} from a backup",
        )
    return parse_document(d, top, root_doc, root)


def _unlock_root(home: Path, root: dict[str, Any], passphrase: str | None, key_file: str | os.PathLike[str] | None) -> bytes:
    def b(field: str) -> bytes:
        return base64.b64decode(root[field])  # validated by parse_envelope

    if root["kind"] == "passphrase":
        if passphrase is None:
            fail("E_KEYSTORE", f"the keystore in {home} is sealed by a passphrase: give the passphrase")
        # Bounded before scrypt: these fields are read before the file is authenticated.
        if not MIN_WORK_FACTOR <= root["logN"] <= MAX_WORK_FACTOR:
            fail("E_UNSUPPORTED", f"keystore work factor 2^{root['logN']} is outside 2^10..2^20")
        if root["r"] != 8 or root["p"] != 1:
            fail("E_UNSUPPORTED", f"keystore scrypt parameters r={root['r']} p={root['p']} are not supported (r=8, p=1)")
        key = scrypt(passphrase_bytes(passphrase), _KDF_SALT_LABEL + b("salt"), root["logN"], 8, 1)
        try:
            return AESGCM(key).decrypt(b("nonce"), b("sealed"), _ROOT_AAD)
        except InvalidTag:
            fail("E_KEYSTORE", f"wrong passphrase for the keystore in {home}: try again")
    if key_file is None:
        fail("E_KEYSTORE", f"the keystore in {home} uses a root key file: set TENSORSEAL_ROOT_KEY_FILE to it")
    key = read_root_key_file(key_file)
    h = crypto_hmac.HMAC(key, hashes.SHA256())
    h.update(_CHECK_LABEL)
    if not hmac.compare_digest(h.finalize(), b("check")):
        fail("E_KEYSTORE", f"root key file {os.fspath(key_file)} does not match the keystore in {home}: use the file the keystore was created with")
    return key
