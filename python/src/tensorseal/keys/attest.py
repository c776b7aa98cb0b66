"""Attested release from the key service (docs/SERVICE.md "Attested release"), as
``src/keys/service/attested.ts`` and ``evidence-command.ts`` do on the TypeScript side.

The client asks ``POST /v1/attestation/challenge`` for a single-use nonce, makes a fresh
ephemeral key (``kem``: X-Wing, ML-KEM-768 + X25519, by default; X25519 on request), has an
*evidence provider* (the runtime's attestation agent, a verifier
client, a test stub) issue a JWT carrying the nonce and
``tensorseal_ephemeral_key = base64url(SHA-256(ephemeral public key))``, and posts stanza,
evidence and the ephemeral public key to ``POST /v1/datakeys/unwrap-attested`` with
``binding: "info"`` (and ``kem: "mlkem768x25519"`` for X-Wing). The service answers the file
key HPKE-sealed to the ephemeral key (X-Wing, KEM id 0x647a, or DHKEM-X25519; HKDF-SHA256,
AES-256-GCM) with the nonce bound through the HPKE ``info``
(``"tensorseal.dev/v1 attested-release" [|| " mlkem768x25519"] || 0x00 || nonce``, empty aad):
pyca's ``hpke.Suite`` has no aad parameter, and info, which enters the key schedule, binds the
nonce as firmly.

An evidence provider is either a callable ``(EvidenceRequest) -> str`` or a program (path or
name, :func:`command_evidence`) with the CLI's contract (``open --attest PROGRAM``,
``TENSORSEAL_ATTEST_COMMAND``): run without a shell, the request as one JSON line on stdin
(``{nonce, ephemeralKeyBinding, ephemeralPublicKey, kem}``, the key in base64) and in
``TENSORSEAL_ATTEST_NONCE`` / ``TENSORSEAL_ATTEST_KEY_BINDING``; it prints the JWT on stdout.

The token is a credential and the ephemeral private key a secret: neither appears in an error
message; a failing program is named with its exit status and the first line of its stderr,
JWT-like strings masked. The ephemeral private key exists only as a pyca key object held by
:func:`unwrap_attested` and is dropped when it returns or fails (OpenSSL clears a key's memory
when the object is freed); no copy of its bytes is ever made. An X-Wing key is generated as its
two halves (ML-KEM-768 and X25519 pyca keys), so no seed exists in Python memory either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import TensorSealError, fail, printable
from ..format.stanza import Stanza

if TYPE_CHECKING:
    from .service import ServiceClient

ATTESTED_RELEASE_INFO = b"tensorseal.dev/v1 attested-release"
#: The request field ``binding`` this client asks for (docs/SERVICE.md).
BINDING = "info"
#: Request field ``kem``: X25519 (the service's default) or X-Wing (ML-KEM-768 + X25519).
KEM_X25519 = "x25519"
KEM_XWING = "mlkem768x25519"
#: The KEM this client uses unless told otherwise.
DEFAULT_KEM = KEM_XWING
_PUBLIC_KEY_SIZE = {KEM_X25519: 32, KEM_XWING: 1216}
_TIMEOUT_S = 30.0
_MAX_OUTPUT = 64 * 1024
_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*)?")


@dataclass(frozen=True)
class EvidenceRequest:
    """What an evidence provider is asked to attest.

    Attributes:
        nonce: the service's challenge nonce (claim ``nonce`` or ``eat_nonce``).
        ephemeral_key_binding: base64url(SHA-256(ephemeral public key)), unpadded: claim
            ``tensorseal_ephemeral_key`` (a verifier puts it in the report's runtime data).
        ephemeral_public_key: the public key itself: 1216 bytes (X-Wing) or 32 (X25519).
        kem: ``"mlkem768x25519"`` or ``"x25519"``.
    """

    nonce: str
    ephemeral_key_binding: str
    ephemeral_public_key: bytes
    kem: str = KEM_X25519


#: A callable returning the verifier's compact JWT for a request.
EvidenceProvider = Callable[[EvidenceRequest], str]
#: What ``attest=`` accepts: a callable, or a program (path or name on PATH).
Attest = Union[EvidenceProvider, str, "os.PathLike[str]"]


def key_binding(public_key: bytes) -> str:
    """``base64url(SHA-256(public_key))`` without padding, as the service checks it.

    Example:
        >>> key_binding(bytes(32))
        'Zmh6rfhivXdsj8GLjp-OIAiXFIVu4jOzkCpZHQ1fKSU'
    """
    return base64.urlsafe_b64encode(hashlib.sha256(public_key).digest()).rstrip(b"=").decode("ascii")


def _mask(text: str) -> str:
    return _JWT_LIKE.sub("[token]", text)


def command_evidence(program: str | os.PathLike[str]) -> EvidenceProvider:
    """An evidence provider running ``program`` (no shell, no arguments; 30 s, 64 KiB of stdout).

    Example:
        >>> command_evidence("")
        Traceback (most recent call last):
        ...
        tensorseal.errors.UsageError: E_USAGE: --attest needs a program
    """
    prog = os.fspath(program)
    if not prog:
        fail("E_USAGE", "--attest needs a program")

    def run(r: EvidenceRequest) -> str:
        what = f"evidence command {printable(prog)}"
        line = json.dumps(
            {
                "nonce": r.nonce,
                "ephemeralKeyBinding": r.ephemeral_key_binding,
                "ephemeralPublicKey": base64.b64encode(r.ephemeral_public_key).decode("ascii"),
                "kem": r.kem,
            }
        )
        env = {**os.environ, "TENSORSEAL_ATTEST_NONCE": r.nonce, "TENSORSEAL_ATTEST_KEY_BINDING": r.ephemeral_key_binding}
        try:
            p = subprocess.run(
                [prog], input=(line + "\n").encode("utf-8"), capture_output=True, env=env, timeout=_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            fail("E_PROVIDER", f"{what} timed out after {_TIMEOUT_S:g} s")
        except OSError as e:
            fail("E_PROVIDER", f"{what} cannot be run ({type(e).__name__}{f' errno {e.errno}' if e.errno else ''})")
        if p.returncode != 0 or len(p.stdout) > _MAX_OUTPUT:
            how = (
                "printed too much"
                if len(p.stdout) > _MAX_OUTPUT
                else (f"died of signal {-p.returncode}" if p.returncode < 0 else f"exited {p.returncode}")
            )
            # A failing agent may print what it got, a token included: JWTs are masked.
            first = next((x for x in p.stderr[:4096].decode("utf-8", "replace").splitlines() if x.strip()), "")
            fail("E_PROVIDER", f"{what} {how}" + (f": {printable(_mask(first.strip()))}" if first else ""))
        token = p.stdout.decode("utf-8", "replace").strip()
        if not _JWS.fullmatch(token):
            fail("E_PROVIDER", f"{what} printed no JWT (expected one compact token on stdout)")
        return token

    return run


def evidence_provider(attest: Attest) -> EvidenceProvider:
    """A callable as given; a program (str or path) through :func:`command_evidence`."""
    if callable(attest):
        return attest
    if isinstance(attest, (str, os.PathLike)):
        return command_evidence(attest)
    fail("E_USAGE", "attest= takes a callable (EvidenceRequest -> JWT) or an evidence program")


def _evidence(provider: EvidenceProvider, r: EvidenceRequest) -> str:
    try:
        token = provider(r)
    except TensorSealError:
        raise
    except Exception as e:  # noqa: BLE001 - its message might hold the token: the type only
        fail("E_PROVIDER", f"evidence provider failed ({type(e).__name__})")
    if not isinstance(token, str) or not _JWS.fullmatch(token.strip()):
        fail("E_PROVIDER", "evidence provider returned no JWT (expected one compact token)")
    return token.strip()


def _check_kem(kem: str) -> None:
    if kem not in _PUBLIC_KEY_SIZE:
        fail("E_USAGE", f"attested release: unknown KEM (use {KEM_XWING!r} or {KEM_X25519!r})")


def _info(kem: str, nonce: str) -> bytes:
    label = ATTESTED_RELEASE_INFO if kem == KEM_X25519 else ATTESTED_RELEASE_INFO + b" " + kem.encode("ascii")
    return label + b"\x00" + nonce.encode("utf-8")


def _generate(kem: str) -> tuple[Any, bytes]:
    """A fresh ephemeral pyca private key for ``kem`` and its raw public key."""
    x = X25519PrivateKey.generate()
    xpub = x.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if kem == KEM_X25519:
        return x, xpub
    m = mlkem.MLKEM768PrivateKey.generate()
    # X-Wing public key = ML-KEM-768 encapsulation key (1184) || X25519 public key (32).
    return hpke.MLKEM768X25519PrivateKey(m, x), m.public_key().public_bytes_raw() + xpub


def open_attested_release(
    private_key: Any, enc: bytes, ciphertext: bytes, nonce: str, kem: str = KEM_X25519
) -> bytes:
    """Opens an ``"info"``-bound release sealed with ``kem`` (``private_key`` a pyca
    ``X25519PrivateKey`` or ``hpke.MLKEM768X25519PrivateKey``); ``E_PROVIDER`` if it does not
    open or is not 32 bytes."""
    _check_kem(kem)
    suite_kem = hpke.KEM.X25519 if kem == KEM_X25519 else hpke.KEM.MLKEM768_X25519
    suite = hpke.Suite(suite_kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    fk: bytes | None = None
    try:
        fk = suite.decrypt(enc + ciphertext, private_key, _info(kem, nonce))
    except Exception:  # InvalidTag, a bad enc: one error, no detail about the key
        pass
    # Not in this frame when the error's traceback is kept: the key lives no longer than the unwrap.
    del private_key
    if fk is None:
        fail("E_PROVIDER", "attested release: the sealed file key does not open")
    if len(fk) != 32:
        fail("E_PROVIDER", "attested release: the sealed file key is not 32 bytes")
    return fk


def unwrap_attested(
    client: ServiceClient, stanza: Stanza, provider: EvidenceProvider, kem: str = DEFAULT_KEM
) -> bytes:
    """The file key of ``stanza`` released to this attested runtime (``client`` a
    :class:`~tensorseal.keys.service.ServiceClient`), sealed to a fresh ephemeral key of ``kem``
    (default X-Wing; ``"x25519"`` for services that predate the ``kem`` field). ``E_PROVIDER``
    on a refusal, a provider failure or a release that does not open; ``E_DECRYPT`` if the
    stanza does not open (422)."""
    from .service import stanza_to_wire

    _check_kem(kem)
    path = "/v1/attestation/challenge"
    status, body = client.call("POST", path, {})
    nonce = body.get("nonce")
    if status != 200 or not isinstance(nonce, str):
        client.refused(path, status, body)
    private_key, public = _generate(kem)
    try:
        token = _evidence(provider, EvidenceRequest(nonce, key_binding(public), public, kem))
        path = "/v1/datakeys/unwrap-attested"
        status, body = client.call(
            "POST",
            path,
            {
                "stanza": stanza_to_wire(stanza),
                "evidence": token,
                "ephemeralPublicKey": base64.b64encode(public).decode("ascii"),
                "binding": BINDING,
                # Named only when not the service's default: X25519 still talks to older services.
                **({} if kem == KEM_X25519 else {"kem": kem}),
            },
        )
        if status == 422:
            fail("E_DECRYPT", "service stanza does not open")
        if status != 200:
            msg = body.get("message")
            if isinstance(msg, str):  # should the service ever echo the evidence: masked
                body = {**body, "message": _mask(msg.replace(token, "[token]"))}
            client.refused(path, status, body)
        try:
            enc = base64.b64decode(body.get("enc", ""), validate=True)
            ct = base64.b64decode(body.get("ciphertext", ""), validate=True)
        except (TypeError, ValueError, binascii.Error):
            fail("E_PROVIDER", f"key service {client.url} sent a malformed attested release")
        return open_attested_release(private_key, enc, ct, nonce, kem)
    finally:
        # The only reference: freeing it has OpenSSL clear the key (module docstring).
        del private_key
