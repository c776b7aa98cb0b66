"""Attested release from Python against the real TS key service (`tensorseal serve --dev
--attestation-issuer ... --attestation-jwks FILE --policy DIR`) on loopback.

The policy forbids unwrapping key `secure` unless the request carries SEV-SNP attestation. A
test verifier (an Ed25519 key whose JWKS the service trusts) signs evidence JWTs. Python opens a
file with valid evidence (a callable provider and an evidence program with the CLI's contract);
it is refused without evidence, with a replayed nonce, with evidence bound to another ephemeral
key, with a wrong issuer, and from a failing program; no token appears in any error. A request
naming an unknown binding mode or KEM is refused by the service. The client uses X-Wing
(ML-KEM-768 + X25519) by default and X25519 when asked; an X-Wing release opens only with its
ephemeral key, under its nonce and as X-Wing. Skipped only when node or dist/ is
missing and TENSORSEAL_REQUIRE_ALL is not "1".
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from helpers import CLI, REPO
from tensorseal import ServiceIdentity, ServiceRecipient, TensorSealError, open_file, read_header, seal_bytes
from tensorseal.keys import attest as attest_mod
from tensorseal.keys.attest import EvidenceRequest, key_binding, unwrap_attested
from tensorseal.keys.service import ServiceClient, stanza_to_wire

if shutil.which("node") is None or not CLI.exists():
    if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
        pytest.fail(f"node or {CLI} is missing: build the TS CLI (`npm run build`)", pytrace=False)
    pytest.skip("node or the built TS CLI (dist/) is missing", allow_module_level=True)

from test_service import Server, start_server  # noqa: E402  (after the skip above)

VERIFIER = "https://verifier.test"
POLICY = """@id("secure-needs-snp")
forbid (principal, action == TensorSeal::Action::"unwrap", resource == TensorSeal::Key::"secure")
unless { context has attestation && context.attestation.tee == "sev-snp" };
"""
PLAIN = os.urandom(50_000)


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


class Verifier:
    """Plays the attestation verifier: an Ed25519 key, its JWKS file, signed evidence JWTs."""

    def __init__(self, issuer: str = VERIFIER, key: Ed25519PrivateKey | None = None) -> None:
        self.issuer = issuer
        self.key = key or Ed25519PrivateKey.generate()

    def jwks(self) -> dict[str, Any]:
        x = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64u(x), "kid": "v1", "alg": "EdDSA", "use": "sig"}]}

    def sign(self, claims: dict[str, Any]) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "iat": now, "exp": now + 60, **claims}
        head = b64u(json.dumps({"alg": "EdDSA", "kid": "v1", "typ": "JWT"}).encode())
        body = b64u(json.dumps(payload).encode())
        sig = self.key.sign(f"{head}.{body}".encode("ascii"))
        return f"{head}.{body}.{b64u(sig)}"

    def provider(self, **over: Any):  # type: ignore[no-untyped-def]
        """A provider signing the request's nonce and key binding (or what ``over`` says)."""
        issued: list[str] = []

        def give(r: EvidenceRequest) -> str:
            claims = {"nonce": r.nonce, "tensorseal_ephemeral_key": r.ephemeral_key_binding, "tee": "sev-snp", **over}
            issued.append(t := self.sign(claims))
            return t

        give.issued = issued  # type: ignore[attr-defined]
        return give


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    d = tmp_path_factory.mktemp("attest")
    verifier = Verifier()
    jwks = d / "verifier-jwks.json"
    jwks.write_text(json.dumps(verifier.jwks()))
    policies = d / "policies"
    policies.mkdir()
    # The built-in scope policies, plus the forbid: what `serve --policy` then enforces.
    script = (
        f"const m = await import({json.dumps((REPO / 'dist' / 'src' / 'service' / 'index.js').as_uri())});"
        "process.stdout.write(Object.entries(m.DEFAULT_POLICIES).map(([i, p]) => `@id(\"${i}\")\\n${p}`).join('\\n\\n'));"
    )
    defaults = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    (policies / "00-default.cedar").write_text(defaults.stdout)
    (policies / "10-secure.cedar").write_text(POLICY)
    srv: Server = start_server(
        d / "svc",
        ["--policy", str(policies), "--attestation-issuer", VERIFIER, "--attestation-jwks", str(jwks), "--nonce-ttl", "30"],
    )
    try:
        admin = ServiceClient(srv.url, srv.token("admin,wrap"), srv.ca)
        status, body = admin.call("POST", "/v1/keys", {"name": "secure"})
        assert status == 200, body
        sealed = d / "m.tseal"
        sealed.write_bytes(seal_bytes(PLAIN, [ServiceRecipient(admin, None, "secure")]))
        client = ServiceClient(srv.url, srv.token("unwrap"), srv.ca)
        yield {"srv": srv, "verifier": verifier, "sealed": sealed, "client": client, "dir": d}
    finally:
        srv.stop()


def refused(e: pytest.ExceptionInfo[TensorSealError], pattern: str, *secrets: str) -> None:
    assert e.value.code == "E_PROVIDER", str(e.value)
    import re

    assert re.search(pattern, str(e.value)), str(e.value)
    for s in secrets:
        assert s not in str(e.value) and s not in repr(e.value)


def _stanza(env: dict[str, Any]) -> Any:
    with open(env["sealed"], "rb") as f:
        return read_header(f).stanzas[0]


def test_valid_evidence_opens_and_without_it_the_policy_refuses(env: dict[str, Any]) -> None:
    with pytest.raises(TensorSealError) as e:
        open_file(env["sealed"], [ServiceIdentity(env["client"])])
    refused(e, "forbidden by secure-needs-snp")
    give = env["verifier"].provider()
    assert open_file(env["sealed"], [ServiceIdentity(env["client"], attest=give)]) == PLAIN
    assert len(give.issued) == 1


def test_evidence_program_with_the_cli_contract(env: dict[str, Any]) -> None:
    """A program gets the request on stdin and in the environment, prints the JWT."""
    d: Path = env["dir"]
    jwk = d / "verifier.pem"
    jwk.write_bytes(env["verifier"].key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    prog = d / "evidence.py"
    prog.write_text(
        f"""#!{sys.executable}
import base64, json, os, sys, time, hashlib
from cryptography.hazmat.primitives.serialization import load_pem_private_key
req = json.loads(sys.stdin.readline())
if req["nonce"] != os.environ["TENSORSEAL_ATTEST_NONCE"]: sys.exit(9)
if req["ephemeralKeyBinding"] != os.environ["TENSORSEAL_ATTEST_KEY_BINDING"]: sys.exit(10)
pub = base64.b64decode(req["ephemeralPublicKey"])
b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
if b64u(hashlib.sha256(pub).digest()) != req["ephemeralKeyBinding"]: sys.exit(11)
key = load_pem_private_key(open({str(jwk)!r}, "rb").read(), None)
now = int(time.time())
h = b64u(json.dumps({{"alg": "EdDSA", "kid": "v1"}}).encode())
p = b64u(json.dumps({{"iss": {VERIFIER!r}, "iat": now, "exp": now + 60, "nonce": req["nonce"],
    "tensorseal_ephemeral_key": req["ephemeralKeyBinding"], "tee": "sev-snp"}}).encode())
print(h + "." + p + "." + b64u(key.sign((h + "." + p).encode())))
"""
    )
    prog.chmod(0o755)
    assert open_file(env["sealed"], [ServiceIdentity(env["client"], attest=str(prog))]) == PLAIN
    # As the CLI: TENSORSEAL_ATTEST_COMMAND configures ServiceIdentity.from_env.
    srv: Server = env["srv"]
    old = dict(os.environ)
    try:
        os.environ.update(srv.client_env(srv.token("unwrap")))
        os.environ["TENSORSEAL_ATTEST_COMMAND"] = str(prog)
        assert open_file(env["sealed"], [ServiceIdentity.from_env()]) == PLAIN
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_replayed_nonce_is_refused(env: dict[str, Any]) -> None:
    """Evidence for a nonce already consumed (bound to the current key) is refused, and a
    request replayed as is (same nonce, key and evidence) is refused the second time."""
    v: Verifier = env["verifier"]
    first = v.provider()
    assert open_file(env["sealed"], [ServiceIdentity(env["client"], attest=first)]) == PLAIN
    used = json.loads(base64.urlsafe_b64decode(first.issued[0].split(".")[1] + "=="))["nonce"]

    def replay(r: EvidenceRequest) -> str:
        return v.sign({"nonce": used, "tensorseal_ephemeral_key": r.ephemeral_key_binding, "tee": "sev-snp"})

    with pytest.raises(TensorSealError) as e:
        open_file(env["sealed"], [ServiceIdentity(env["client"], attest=replay)])
    refused(e, "nonce unknown, already used or expired")

    client: ServiceClient = env["client"]
    stanza = _stanza(env)
    status, c = client.call("POST", "/v1/attestation/challenge", {})
    assert status == 200
    pub = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    token = v.sign({"nonce": c["nonce"], "tensorseal_ephemeral_key": key_binding(pub), "tee": "sev-snp"})
    body = {
        "stanza": stanza_to_wire(stanza),
        "evidence": token,
        "ephemeralPublicKey": base64.b64encode(pub).decode(),
        "binding": "info",
    }
    assert client.call("POST", "/v1/datakeys/unwrap-attested", body)[0] == 200
    status, again = client.call("POST", "/v1/datakeys/unwrap-attested", body)
    assert status == 403 and "already used" in again["message"] and "ciphertext" not in again


def test_evidence_bound_to_another_key_is_refused(env: dict[str, Any]) -> None:
    other = key_binding(os.urandom(32))
    give = env["verifier"].provider(tensorseal_ephemeral_key=other)
    with pytest.raises(TensorSealError) as e:
        open_file(env["sealed"], [ServiceIdentity(env["client"], attest=give)])
    refused(e, "not bound to the presented ephemeral key", *give.issued)


def test_wrong_issuer_is_refused(env: dict[str, Any]) -> None:
    """Signed by the trusted key but naming another issuer; or the right issuer with an unknown key."""
    cases = [
        (Verifier("https://evil.test", env["verifier"].key), r"evidence refused: .*iss"),
        (Verifier(), "evidence refused: token signature does not verify"),
    ]
    for v, pattern in cases:
        give = v.provider()
        with pytest.raises(TensorSealError) as e:
            open_file(env["sealed"], [ServiceIdentity(env["client"], attest=give)])
        assert give.issued
        refused(e, pattern, *give.issued)


def test_failing_providers_leak_no_token(env: dict[str, Any]) -> None:
    d: Path = env["dir"]
    token = env["verifier"].sign({"nonce": "x"})
    leaks = d / "leaks.sh"
    leaks.write_text(f'#!/bin/sh\necho "bad evidence {token}" >&2\nexit 4\n')
    leaks.chmod(0o755)
    garbage = d / "garbage.sh"
    garbage.write_text("#!/bin/sh\necho not-a-token\n")
    garbage.chmod(0o755)

    def raises(r: EvidenceRequest) -> str:
        raise RuntimeError(f"agent said {token}")

    cases: list[tuple[Any, str]] = [
        (str(leaks), r"evidence command .*leaks\.sh exited 4: bad evidence \[token\]"),
        (str(garbage), "printed no JWT"),
        (str(d / "missing-program"), "cannot be run"),
        (raises, r"evidence provider failed \(RuntimeError\)"),
        (lambda r: "not a jwt", "returned no JWT"),
    ]
    for attest, pattern in cases:
        with pytest.raises(TensorSealError) as e:
            open_file(env["sealed"], [ServiceIdentity(env["client"], attest=attest)])
        refused(e, pattern, token)


def test_unknown_binding_mode_is_refused(env: dict[str, Any]) -> None:
    client: ServiceClient = env["client"]
    stanza = _stanza(env)
    for mode in ("none", "AAD", "info-v2"):
        status, c = client.call("POST", "/v1/attestation/challenge", {})
        pub = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        token = env["verifier"].sign({"nonce": c["nonce"], "tensorseal_ephemeral_key": key_binding(pub), "tee": "sev-snp"})
        status, body = client.call(
            "POST",
            "/v1/datakeys/unwrap-attested",
            {"stanza": stanza_to_wire(stanza), "evidence": token, "ephemeralPublicKey": base64.b64encode(pub).decode(), "binding": mode},
        )
        assert status == 400 and "binding" in body.get("message", ""), (mode, status, body)
        assert "ciphertext" not in body


def test_release_opens_only_under_its_nonce(env: dict[str, Any]) -> None:
    """The info binding really binds: the same sealed release does not open under another nonce."""
    client: ServiceClient = env["client"]
    stanza = _stanza(env)
    got: dict[str, Any] = {}
    real = attest_mod.open_attested_release

    def spy(key: Any, enc: bytes, ct: bytes, nonce: str, kem: str) -> bytes:
        with pytest.raises(TensorSealError, match="does not open"):
            real(key, enc, ct, nonce + "x", kem)
        got["fk"] = real(key, enc, ct, nonce, kem)
        return got["fk"]

    attest_mod.open_attested_release = spy  # type: ignore[assignment]
    try:
        fk = unwrap_attested(client, stanza, env["verifier"].provider())
    finally:
        attest_mod.open_attested_release = real  # type: ignore[assignment]
    assert fk == got["fk"] and len(fk) == 32


def test_no_frame_of_a_failed_open_keeps_the_ephemeral_key(env: dict[str, Any]) -> None:
    """A release that does not open: the error's traceback holds no frame with the private key."""
    client: ServiceClient = env["client"]
    stanza = _stanza(env)
    real = attest_mod.open_attested_release

    def tampered(key: Any, enc: bytes, ct: bytes, nonce: str, kem: str) -> bytes:
        return real(key, enc, ct[:-1] + bytes([ct[-1] ^ 1]), nonce, kem)

    attest_mod.open_attested_release = tampered  # type: ignore[assignment]
    try:
        with pytest.raises(TensorSealError, match="does not open") as e:
            unwrap_attested(client, stanza, env["verifier"].provider())
    finally:
        attest_mod.open_attested_release = real  # type: ignore[assignment]
    tb = e.value.__traceback__
    seen = set()
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == attest_mod.__file__:  # the library's frames (not the test's wrapper)
            seen.add(code.co_name)
            keys = (X25519PrivateKey, hpke.MLKEM768X25519PrivateKey, mlkem.MLKEM768PrivateKey)
            assert not any(isinstance(v, keys) for v in tb.tb_frame.f_locals.values()), code.co_name
        tb = tb.tb_next
    assert {"unwrap_attested", "open_attested_release"} <= seen, seen


def _xwing_request(env: dict[str, Any]) -> tuple[str, Any, bytes, dict[str, Any]]:
    """A challenge, a fresh X-Wing key pair and the request body with evidence bound to it."""
    client: ServiceClient = env["client"]
    status, c = client.call("POST", "/v1/attestation/challenge", {})
    assert status == 200, c
    key, pub = attest_mod._generate("mlkem768x25519")
    token = env["verifier"].sign({"nonce": c["nonce"], "tensorseal_ephemeral_key": key_binding(pub), "tee": "sev-snp"})
    body = {
        "stanza": stanza_to_wire(_stanza(env)),
        "evidence": token,
        "ephemeralPublicKey": base64.b64encode(pub).decode(),
        "binding": "info",
        "kem": "mlkem768x25519",
    }
    return c["nonce"], key, pub, body


def test_xwing_is_the_default_and_x25519_on_request(env: dict[str, Any]) -> None:
    """The provider sees the KEM and a key of its size; both KEMs open the file key."""
    fks = []
    for kem, size in ((None, 1216), ("mlkem768x25519", 1216), ("x25519", 32)):
        seen: list[tuple[str, int]] = []
        give = env["verifier"].provider()

        def provider(r: EvidenceRequest, give: Any = give, seen: list[tuple[str, int]] = seen) -> str:
            seen.append((r.kem, len(r.ephemeral_public_key)))
            return give(r)

        args = () if kem is None else (kem,)
        fks.append(unwrap_attested(env["client"], _stanza(env), provider, *args))
        assert seen == [(kem or "mlkem768x25519", size)]
    assert len(set(fks)) == 1 and len(fks[0]) == 32
    with pytest.raises(TensorSealError) as e:
        unwrap_attested(env["client"], _stanza(env), env["verifier"].provider(), "xwing")
    assert e.value.code == "E_USAGE"


def test_xwing_release_opens_only_with_its_key_nonce_and_kem(env: dict[str, Any]) -> None:
    nonce, key, _pub, body = _xwing_request(env)
    status, r = env["client"].call("POST", "/v1/datakeys/unwrap-attested", body)
    assert status == 200, r
    enc, ct = base64.b64decode(r["enc"]), base64.b64decode(r["ciphertext"])
    assert len(enc) == 1120  # an X-Wing encapsulation, not a 32-byte X25519 one
    fk = attest_mod.open_attested_release(key, enc, ct, nonce, "mlkem768x25519")
    assert len(fk) == 32
    stranger, _ = attest_mod._generate("mlkem768x25519")
    for k, n, kem in ((key, nonce + "x", "mlkem768x25519"), (stranger, nonce, "mlkem768x25519"), (key, nonce, "x25519")):
        with pytest.raises(TensorSealError, match="does not open"):
            attest_mod.open_attested_release(k, enc, ct, n, kem)


def test_unknown_kem_and_mismatched_key_are_refused(env: dict[str, Any]) -> None:
    client: ServiceClient = env["client"]
    for kem in ("X-Wing", "mlkem768", "", "x448"):
        _n, _k, _p, body = _xwing_request(env)
        status, r = client.call("POST", "/v1/datakeys/unwrap-attested", {**body, "kem": kem})
        assert status == 400 and "kem" in r.get("message", ""), (kem, status, r)
        assert "ciphertext" not in r
    # Evidence bound to an X25519 key, presented with an X-Wing key: the binding hash differs.
    _n, _k, _p, body = _xwing_request(env)
    x = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    c = client.call("POST", "/v1/attestation/challenge", {})[1]
    body["evidence"] = env["verifier"].sign({"nonce": c["nonce"], "tensorseal_ephemeral_key": key_binding(x), "tee": "sev-snp"})
    status, r = client.call("POST", "/v1/datakeys/unwrap-attested", body)
    assert status == 403 and "not bound to the presented ephemeral key" in r["message"], r
    # The X25519 key itself under kem "mlkem768x25519": not an X-Wing key (400).
    status, r = client.call("POST", "/v1/datakeys/unwrap-attested", {**body, "ephemeralPublicKey": base64.b64encode(x).decode()})
    assert status == 400 and "1216 bytes" in r["message"], r
