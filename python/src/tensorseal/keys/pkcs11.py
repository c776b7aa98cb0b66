"""The PKCS#11 provider (python-pkcs11, extra ``tensorseal[pkcs11]``), byte-compatible with
``src/keys/pkcs11/provider.ts``: an AES-256 key that never leaves the token (CKA_SENSITIVE, not
CKA_EXTRACTABLE, CKA_TOKEN) seals the file key with CKM_AES_GCM inside the token. The file key
is only data passed to C_Encrypt / C_Decrypt; it never becomes a token object.

    kms stanza fields = ["pkcs11", "TOKEN/KEYLABEL", iv (12), wrapped (48 = 32 ‖ 16-byte tag)]
    aad = "tensorseal.dev/v1 kms pkcs11\\0" || u16(len(keyRef)) || keyRef

Each operation opens a session on the token with that label, logs in with the user PIN (read
only then, never put in a message), works, and closes the session.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import TensorSealError, error, fail
from ..format.bytes import ByteWriter
from ..format.filekey import FILE_KEY_SIZE
from ..format.stanza import Stanza
from .provider import PKCS11_PROVIDER, KmsStanza, encode_kms_stanza, kms_provider_of, parse_kms_stanza, provider_fail

DEFAULT_PKCS11_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
_AAD_LABEL = b"tensorseal.dev/v1 kms pkcs11\0"
IV_SIZE = 12
WRAPPED_SIZE = FILE_KEY_SIZE + 16


@dataclass(frozen=True)
class Pkcs11KeyRef:
    token: str
    label: str


def parse_pkcs11_key_ref(ref: str) -> Pkcs11KeyRef:
    """``TOKEN/KEYLABEL``: the token label cannot contain ``/``, the key label may.

    Example:
        >>> parse_pkcs11_key_ref("prod-hsm/models/v2")
        Pkcs11KeyRef(token='prod-hsm', label='models/v2')
    """
    slash = ref.find("/")
    if slash <= 0 or slash == len(ref) - 1:
        fail("E_USAGE", f"PKCS#11 key {ref!r}: expected TOKEN_LABEL/KEY_LABEL")
    token = ref[:slash]
    if len(token.encode()) > 32:
        fail("E_USAGE", f"token label {token} exceeds 32 bytes")
    return Pkcs11KeyRef(token, ref[slash + 1 :])


def pkcs11_aad(key_ref: str) -> bytes:
    """The AES-GCM additional data: binds the stanza to its key reference."""
    return ByteWriter().raw(_AAD_LABEL).str16(key_ref).finish()


def _p11() -> Any:
    try:
        import pkcs11
    except ImportError:
        provider_fail(PKCS11_PROVIDER, "python-pkcs11 is not installed: pip install 'tensorseal[pkcs11]'")
    return pkcs11


_modules: dict[str, Any] = {}
# One PKCS#11 session at a time per process: the login state of a token is per application, so
# two threads logging in and out around each other would log each other out.
_lock = threading.RLock()


def _load_module(path: str) -> Any:
    lib = _modules.get(path)
    if lib is not None:
        return lib
    p11 = _p11()
    try:
        lib = p11.lib(path)
    except Exception as e:
        raise error("E_PROVIDER", f"{PKCS11_PROVIDER}: cannot load PKCS#11 module {path}: set TENSORSEAL_PKCS11_MODULE "
                                  "to your HSM's library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)") from e  # fmt: skip
    _modules[path] = lib
    return lib


def close_modules() -> None:
    """Finalises every loaded module (tests, and long-lived processes that are done with HSMs).
    A later operation initialises the module again, reading its configuration afresh
    (SoftHSM2 reads SOFTHSM2_CONF in C_Initialize)."""
    with _lock:
        for lib in _modules.values():
            try:
                lib.finalize()
            except Exception:
                pass  # best effort: the process keeps no state that depends on it
        _modules.clear()


_HINTS = {
    "PinIncorrect": ("CKR_PIN_INCORRECT", "wrong PIN (set TENSORSEAL_PKCS11_PIN or TENSORSEAL_PKCS11_PIN_FILE to the user PIN)"),
    "PinInvalid": ("CKR_PIN_INVALID", "wrong PIN (set TENSORSEAL_PKCS11_PIN or TENSORSEAL_PKCS11_PIN_FILE to the user PIN)"),
    "PinLenRange": ("CKR_PIN_LEN_RANGE", "wrong PIN (its length is outside the token's range)"),
    "PinLocked": ("CKR_PIN_LOCKED", "the user PIN is locked: the security officer must reset it"),
    "PinExpired": ("CKR_PIN_EXPIRED", "the user PIN has expired: set a new one"),
    "TokenNotPresent": ("CKR_TOKEN_NOT_PRESENT", "the token is not present"),
    "DeviceRemoved": ("CKR_DEVICE_REMOVED", "the token was removed"),
    "KeyFunctionNotPermitted": ("CKR_KEY_FUNCTION_NOT_PERMITTED", "the key does not permit this operation (CKA_ENCRYPT/CKA_DECRYPT)"),
    "MechanismInvalid": ("CKR_MECHANISM_INVALID", "the token does not support AES-GCM (CKM_AES_GCM)"),
    "MechanismParamInvalid": ("CKR_MECHANISM_PARAM_INVALID", "the token rejected the AES-GCM parameters"),
    "KeyTypeInconsistent": ("CKR_KEY_TYPE_INCONSISTENT", "the key is not an AES key"),
}
# SoftHSM2 reports a failed GCM tag as a general error.
_DATA_ERRORS = ("EncryptedDataInvalid", "EncryptedDataLenRange", "GeneralError")


def _map_error(e: BaseException, what: str) -> TensorSealError:
    """An ``E_PROVIDER`` error for a failed PKCS#11 call: the CKR name plus a hint, never the PIN."""
    if isinstance(e, TensorSealError):
        return e
    name = type(e).__name__
    ckr, hint = _HINTS.get(name, (name, None))
    why = f"{hint} ({ckr})" if hint else ckr
    return error("E_PROVIDER", f"{PKCS11_PROVIDER}: cannot {what}: {why}")


class Pkcs11Provider:
    """AES-256-GCM inside a PKCS#11 token.

    Args:
        module: path of the PKCS#11 library (default: SoftHSM2's).
        pin: returns the user PIN; called only when a session logs in.
    """

    name = PKCS11_PROVIDER

    def __init__(self, module: str = DEFAULT_PKCS11_MODULE, pin: Callable[[], str] | None = None) -> None:
        self.module = module
        self._pin = pin or pin_from_env

    def wrap(self, file_key: bytes, key_ref: str) -> Stanza:
        if len(file_key) != FILE_KEY_SIZE:
            fail("E_KEY", "file key must be 32 bytes")
        # Random 96-bit IV from the OS CSPRNG: a token key wraps far fewer than 2^32 file keys.
        iv = secrets.token_bytes(IV_SIZE)
        with self._key(key_ref) as key:
            try:
                wrapped = bytes(key.encrypt(bytes(file_key), mechanism=_p11().Mechanism.AES_GCM,
                                            mechanism_param=_gcm(iv, key_ref)))  # fmt: skip
            except Exception as e:
                raise _map_error(e, f"encrypt with key {key_ref}") from e
        if len(wrapped) != WRAPPED_SIZE:
            provider_fail(self.name, f"token returned {len(wrapped)} bytes for AES-GCM, expected {WRAPPED_SIZE}")
        return encode_kms_stanza(KmsStanza(self.name, key_ref, (iv,), wrapped))

    def unwrap(self, stanza: Stanza) -> bytes | None:
        if kms_provider_of(stanza) != self.name:
            return None
        k = parse_kms_stanza(stanza)
        if len(k.params) != 1 or len(k.params[0]) != IV_SIZE or len(k.wrapped) != WRAPPED_SIZE:
            fail("E_MALFORMED", "pkcs11 kms stanza must have fields [provider, key, iv(12), wrapped(48)]")
        parse_pkcs11_key_ref(k.key_ref)
        with self._key(k.key_ref) as key:
            try:
                out = bytes(key.decrypt(k.wrapped, mechanism=_p11().Mechanism.AES_GCM,
                                        mechanism_param=_gcm(k.params[0], k.key_ref)))  # fmt: skip
            except Exception as e:
                if type(e).__name__ in _DATA_ERRORS:
                    # The key is there and usable, but the stanza does not open: a modified header
                    # or a key of the same label that is not the one that wrapped it.
                    raise error("E_DECRYPT", f"pkcs11 stanza for {k.key_ref} does not open with the token's key "
                                             "(a modified header, or a different key under the same label)") from None  # fmt: skip
                raise _map_error(e, f"decrypt with key {k.key_ref}") from e
        if len(out) != FILE_KEY_SIZE:
            fail("E_DECRYPT", "unexpected plaintext size")
        return out

    def generate_key(self, key_ref: str) -> str:
        """Generates a non-extractable AES-256 token key (as ``tensorseal hsm create-key``);
        refuses a label already in use."""
        ref = parse_pkcs11_key_ref(key_ref)
        p11 = _p11()
        A = p11.Attribute
        with self._session(ref.token) as s:
            if self._find(s, ref.label):
                fail("E_USAGE", f"token {ref.token} already has a key labelled {ref.label!r}")
            template = {
                A.CLASS: p11.ObjectClass.SECRET_KEY, A.KEY_TYPE: p11.KeyType.AES, A.VALUE_LEN: 32,
                A.LABEL: ref.label, A.ID: secrets.token_bytes(16), A.TOKEN: True, A.PRIVATE: True,
                A.SENSITIVE: True, A.EXTRACTABLE: False, A.ENCRYPT: True, A.DECRYPT: True,
                A.WRAP: False, A.UNWRAP: False,
            }  # fmt: skip
            try:
                s.generate_key(p11.KeyType.AES, 256, label=ref.label, store=True, template=template)
            except Exception as e:
                raise _map_error(e, f"generate an AES-256 key in token {ref.token}") from e
        return f"{ref.token}/{ref.label}"

    @contextmanager
    def _session(self, token_label: str) -> Iterator[Any]:
        with _lock:
            lib = _load_module(self.module)
            token = self._token(lib, token_label)
            pin = self._pin()
            try:
                session = token.open(rw=True, user_pin=pin)
            except Exception as e:
                raise _map_error(e, f"log in to token {token_label}") from e
            finally:
                del pin
            try:
                yield session
            finally:
                try:
                    session.close()
                except Exception:
                    pass  # closing ends the login anyway

    @contextmanager
    def _key(self, key_ref: str) -> Iterator[Any]:
        ref = parse_pkcs11_key_ref(key_ref)
        with self._session(ref.token) as s:
            keys = self._find(s, ref.label)
            if not keys:
                provider_fail(self.name, f"no AES key labelled {ref.label!r} in token {ref.token} (deleted, or another "
                                         f"token): create one with `tensorseal hsm create-key {key_ref}` for new files; "
                                         "files wrapped only under a deleted key cannot be opened")  # fmt: skip
            if len(keys) > 1:
                provider_fail(self.name, f"token {ref.token} has {len(keys)} keys labelled {ref.label!r}: labels must be unique")
            yield keys[0]

    def _find(self, s: Any, label: str) -> list[Any]:
        p11 = _p11()
        A = p11.Attribute
        try:
            found = s.get_objects({A.CLASS: p11.ObjectClass.SECRET_KEY, A.KEY_TYPE: p11.KeyType.AES, A.LABEL: label})
            out = []
            for obj in found:
                out.append(obj)
                if len(out) == 2:
                    break
            return out
        except Exception as e:
            raise _map_error(e, f"look up key {label}") from e

    def _token(self, lib: Any, label: str) -> Any:
        try:
            tokens = list(lib.get_tokens())
        except Exception as e:
            raise _map_error(e, "list slots") from e
        labels = []
        for t in tokens:
            got = str(t.label).rstrip(" \0")
            if got == label:
                return t
            labels.append(got)
        present = ", ".join(repr(x) for x in labels) if labels else "none"
        provider_fail(self.name, f"no token labelled {label!r} in {self.module} (tokens present: {present}): "
                                 "check the token label, or SOFTHSM2_CONF for SoftHSM2")  # fmt: skip


def _gcm(iv: bytes, key_ref: str) -> Any:
    return _p11().GCMParams(iv, pkcs11_aad(key_ref), 128)


def pin_from_env(env: Mapping[str, str] | None = None) -> str:
    """The PIN from ``TENSORSEAL_PKCS11_PIN``, else the first line of ``TENSORSEAL_PKCS11_PIN_FILE``."""
    env = os.environ if env is None else env
    pin = env.get("TENSORSEAL_PKCS11_PIN")
    if pin:
        return pin
    path = env.get("TENSORSEAL_PKCS11_PIN_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            provider_fail(PKCS11_PROVIDER, f"cannot read the PIN file {path}")
        first = text.split("\n")[0].removesuffix("\r")
        if not first:
            provider_fail(PKCS11_PROVIDER, f"the PIN file {path} is empty")
        return first
    provider_fail(PKCS11_PROVIDER, "no PIN: set TENSORSEAL_PKCS11_PIN, or TENSORSEAL_PKCS11_PIN_FILE to a file holding the user PIN")


def pkcs11_provider_from_env(env: Mapping[str, str] | None = None) -> Pkcs11Provider:
    """The provider configured as the CLI's: ``TENSORSEAL_PKCS11_MODULE`` and the PIN variables."""
    env = os.environ if env is None else env
    return Pkcs11Provider(env.get("TENSORSEAL_PKCS11_MODULE") or DEFAULT_PKCS11_MODULE, lambda: pin_from_env(env))
