"""ServiceIdentity / ServiceRecipient against the real TS key service (`tensorseal serve --dev`).

Starts the server from dist/ on loopback (port chosen by the OS) in a temporary TENSORSEAL_HOME,
creates tokens with `service token create`, and checks both directions against the TS CLI:
the CLI seals with `-r service:KEY` and Python opens, Python seals and the CLI opens. Skipped
only when node or dist/ is missing and TENSORSEAL_REQUIRE_ALL is not "1".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import CLI, run_cli
from tensorseal import (
    ServiceIdentity,
    ServiceRecipient,
    Stanza,
    TensorSealError,
    X25519Recipient,
    generate_identity,
    open_file,
    parse_recipient,
    read_header,
    seal_bytes,
)
from tensorseal.keys.service import ServiceClient

if shutil.which("node") is None or not CLI.exists():
    if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
        pytest.fail(f"node or {CLI} is missing: build the TS CLI (`npx tsc -p .`)", pytrace=False)
    pytest.skip("node or the built TS CLI (dist/) is missing", allow_module_level=True)

UNKNOWN_TOKEN = "tsk_" + "Q7" * 21 + "Q"


@dataclass
class Server:
    url: str
    ca: Path
    server_id: str
    env: dict[str, str]  # TENSORSEAL_HOME etc. for `service token create`
    proc: subprocess.Popen[bytes]

    def token(self, scope: str) -> str:
        p = run_cli(["service", "token", "create", "--scope", scope], self.env)
        return p.stdout.strip()

    def client_env(self, token: str) -> dict[str, str]:
        return {"TENSORSEAL_SERVER": self.url, "TENSORSEAL_SERVER_CA": str(self.ca), "TENSORSEAL_SERVER_TOKEN": token}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _get(url: str, ca: Path, path: str, token: str | None = None, body: object = None) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=str(ca))
    headers = {"content-type": "application/json"} if body is not None else {}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, headers=headers, method="POST" if data else "GET")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def start_server(d: Path, extra: list[str] | None = None) -> Server:
    """`serve --dev` in ``d`` (a second start in the same ``d`` reuses its root key, database
    and dev CA), with ``extra`` flags such as ``--client-ca``."""
    d.mkdir(parents=True, exist_ok=True)
    root = d / "root.hex"
    if not root.exists():
        root.write_text(os.urandom(32).hex())
    env = {"HOME": str(d), "TENSORSEAL_HOME": str(d / "home"), "TENSORSEAL_ROOT_KEY_FILE": str(root)}
    log = d / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [shutil.which("node") or "node", str(CLI), "serve", "--dev", "--listen", "127.0.0.1:0", "--log-level", "warn", *(extra or [])],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    srv: Server | None = None
    try:
        deadline = time.monotonic() + 60
        while srv is None:
            text = log.read_text(errors="replace")
            m = re.search(r"listening on (https://127\.0\.0\.1:\d+) \(server id (\S+),", text)
            ca = re.search(r"development CA: (\S+)", text)
            if m and ca:
                srv = Server(m[1], Path(ca[1]), m[2], env, proc)
                break
            if proc.poll() is not None:
                raise AssertionError(f"serve exited {proc.returncode}: {text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not start: {text}")
            time.sleep(0.05)
        while True:
            try:
                if _get(srv.url, srv.ca, "/healthz")[0] == 200:
                    return srv
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("serve does not answer /healthz")
            time.sleep(0.05)
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("svc"))
    try:
        admin = srv.token("admin,wrap,unwrap")
        status, body = _get(srv.url, srv.ca, "/v1/keys", admin, {"name": "weights"})
        assert status == 200, body
        status, body = _get(srv.url, srv.ca, "/v1/keys", admin, {"name": "other"})
        assert status == 200, body
        srv.env["ADMIN_TOKEN"] = admin
        yield srv
    finally:
        srv.stop()
    assert srv.proc.returncode is not None


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return server.env["ADMIN_TOKEN"]


def test_ts_seals_python_opens(server: Server, token: str, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    (tmp_path / "m.bin").write_bytes(data)
    run_cli(["seal", str(tmp_path / "m.bin"), "-r", "service:weights", "-o", str(tmp_path / "m.tseal")], server.client_env(token))
    ident = ServiceIdentity(server.url, token, server.ca)
    assert open_file(tmp_path / "m.tseal", [ident]) == data
    with open(tmp_path / "m.tseal", "rb") as f:
        (s,) = read_header(f).stanzas
    assert s.type == "service" and s.fields[0].decode() == server.server_id and s.fields[1] == b"weights"
    assert token not in repr(ident) and token not in ident.id


def test_python_seals_ts_opens(server: Server, token: str, tmp_path: Path) -> None:
    data = os.urandom(1 << 20)
    # Two recipients: the service wraps the same file key the X25519 recipient gets.
    x_secret, x_public = generate_identity()
    sealed = seal_bytes(data, [ServiceRecipient(server.url, token, "weights", server.ca), X25519Recipient(x_public)])
    (tmp_path / "py.tseal").write_bytes(sealed)
    run_cli(["open", str(tmp_path / "py.tseal"), "-o", str(tmp_path / "py.out")], server.client_env(token))
    assert (tmp_path / "py.out").read_bytes() == data
    assert open_file(tmp_path / "py.tseal", [ServiceIdentity(server.url, token, server.ca)]) == data


def test_from_env_and_parse_recipient(server: Server, token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tf = tmp_path / "token"
    tf.write_text(token + "\n")
    monkeypatch.setenv("TENSORSEAL_SERVER", server.url)
    monkeypatch.setenv("TENSORSEAL_SERVER_CA", str(server.ca))
    monkeypatch.delenv("TENSORSEAL_SERVER_TOKEN", raising=False)
    monkeypatch.setenv("TENSORSEAL_SERVER_TOKEN_FILE", str(tf))
    r = parse_recipient("service:other")
    assert r.id == "service:other"
    sealed = seal_bytes(b"hello", [r])
    assert open_file_bytes(sealed, ServiceIdentity.from_env()) == b"hello"
    assert open_file_bytes(seal_bytes(b"x", [ServiceRecipient.from_env("weights")]), ServiceIdentity.from_env()) == b"x"
    # TENSORSEAL_SERVER_TOKEN wins over the file, as in the CLI.
    monkeypatch.setenv("TENSORSEAL_SERVER_TOKEN", UNKNOWN_TOKEN)
    with pytest.raises(TensorSealError) as e:
        open_file_bytes(sealed, ServiceIdentity.from_env())
    assert e.value.code == "E_PROVIDER" and UNKNOWN_TOKEN not in str(e.value)
    monkeypatch.delenv("TENSORSEAL_SERVER")
    with pytest.raises(TensorSealError) as e:
        ServiceIdentity.from_env()
    assert e.value.code == "E_USAGE"


def open_file_bytes(sealed: bytes, ident: ServiceIdentity) -> bytes:
    from tensorseal import open_bytes

    return open_bytes(sealed, [ident])


def test_wrong_token_refused_without_echo(server: Server, token: str, tmp_path: Path) -> None:
    sealed = seal_bytes(b"secret weights", [ServiceRecipient(server.url, token, "weights", server.ca)])
    for bad in (UNKNOWN_TOKEN, None):
        ident = ServiceIdentity(server.url, bad, server.ca)
        with pytest.raises(TensorSealError) as e:
            open_file_bytes(sealed, ident)
        assert e.value.code == "E_PROVIDER", e.value
        assert "Q7Q7Q7" not in str(e.value) and "Q7Q7Q7" not in repr(e.value)
        with pytest.raises(TensorSealError) as e:
            ServiceRecipient(server.url, bad, "weights", server.ca).wrap(os.urandom(32))
        assert e.value.code == "E_PROVIDER" and "Q7Q7Q7" not in str(e.value)
    # A valid token without the unwrap role: 403, E_PROVIDER.
    wrap_only = server.token("wrap")
    sealed2 = seal_bytes(b"w", [ServiceRecipient(server.url, wrap_only, "weights", server.ca)])
    with pytest.raises(TensorSealError) as e:
        open_file_bytes(sealed2, ServiceIdentity(server.url, wrap_only, server.ca))
    assert e.value.code == "E_PROVIDER" and wrap_only not in str(e.value)
    # The TS CLI refuses the unknown token the same way (exit 8 = E_PROVIDER).
    (tmp_path / "s.tseal").write_bytes(sealed)
    p = run_cli(["open", str(tmp_path / "s.tseal"), "-o", str(tmp_path / "s.out")], server.client_env(UNKNOWN_TOKEN), check=False)
    assert p.returncode == 8 and "Q7Q7Q7" not in p.stderr


def test_stanza_that_does_not_open_is_e_decrypt(server: Server, token: str) -> None:
    ident = ServiceIdentity(server.url, token, server.ca)
    s = ServiceRecipient(server.url, token, "weights", server.ca).wrap(b"k" * 32)
    assert ident.unwrap(s) == b"k" * 32
    wrapped = bytearray(s.fields[4])
    wrapped[0] ^= 1
    with pytest.raises(TensorSealError) as e:
        ident.unwrap(Stanza("service", (*s.fields[:4], bytes(wrapped))))
    assert e.value.code == "E_DECRYPT" and "weights v1" in str(e.value)
    # Relabelled to another key of the same server: the AAD binds the name.
    with pytest.raises(TensorSealError) as e:
        ident.unwrap(Stanza("service", (s.fields[0], b"other", *s.fields[2:])))
    assert e.value.code == "E_DECRYPT"
    # A version the service does not hold is not mine; other stanza types are not mine.
    assert ident.unwrap(Stanza("service", (s.fields[0], b"weights", (7).to_bytes(4, "big"), *s.fields[3:]))) is None
    assert ident.unwrap(Stanza("kek", (b"weights", b"\0\0\0\1", bytes(12), bytes(48)))) is None
    with pytest.raises(TensorSealError) as e:
        ident.unwrap(Stanza("service", s.fields[:4]))
    assert e.value.code == "E_MALFORMED"


def test_unknown_key_and_untrusted_ca(server: Server, token: str) -> None:
    with pytest.raises(TensorSealError) as e:
        ServiceRecipient(server.url, token, "no-such-key", server.ca).wrap(os.urandom(32))
    assert e.value.code == "E_PROVIDER"
    # Without the dev CA the system trust store does not know the server: refused, unreachable.
    with pytest.raises(TensorSealError) as e:
        ServiceIdentity(server.url, token).client.server_id()
    assert e.value.code == "E_PROVIDER" and "certificate" in str(e.value) and token not in str(e.value)
    with pytest.raises(TensorSealError) as e:
        ServiceClient("ftp://127.0.0.1", token)
    assert e.value.code == "E_USAGE"


def test_other_server_is_not_mine_and_stopped_server_is_e_provider(server: Server, token: str, tmp_path: Path) -> None:
    other = start_server(tmp_path / "b")
    try:
        assert other.server_id != server.server_id
        b_admin = other.token("admin,wrap,unwrap")
        assert _get(other.url, other.ca, "/v1/keys", b_admin, {"name": "weights"})[0] == 200
        # A file of server A offered to server B: B's identity answers "not mine", never sends it.
        sealed_a = seal_bytes(b"a", [ServiceRecipient(server.url, token, "weights", server.ca)])
        b_ident = ServiceIdentity(other.url, b_admin, other.ca)
        with pytest.raises(TensorSealError) as e:
            open_file_bytes(sealed_a, b_ident)
        assert e.value.code == "E_NO_IDENTITY"
        sealed_b = seal_bytes(b"b", [ServiceRecipient(other.url, b_admin, "weights", other.ca)])
        assert open_file_bytes(sealed_b, b_ident) == b"b"
    finally:
        other.stop()
    assert other.proc.returncode is not None
    # Server B is gone: a fresh identity (no cached server id) and the warm one both fail closed.
    for ident in (ServiceIdentity(other.url, b_admin, other.ca), b_ident):
        with pytest.raises(TensorSealError) as e:
            open_file_bytes(sealed_b, ident)
        assert e.value.code == "E_PROVIDER" and "unreachable" in str(e.value) and b_admin not in str(e.value)
    with pytest.raises(TensorSealError) as e:
        ServiceRecipient(other.url, b_admin, "weights", other.ca).wrap(os.urandom(32))
    assert e.value.code == "E_PROVIDER"


# ---- mTLS: a SPIFFE client certificate instead of a bearer token (docs/SERVICE.md) ----

LOADER = "spiffe://dev.local/ns/ml/sa/loader"
NO_ROLE = "spiffe://dev.local/ns/ml/sa/nobody"


@dataclass
class MtlsServer:
    srv: Server
    admin: str
    cert: Path  # client.pem / client.key of LOADER (roles unwrap, wrap)
    key: Path
    no_role: Path  # directory with client.pem / client.key of NO_ROLE (no roles)

    def env(self, cert: Path | None = None, key: Path | None = None, token: str = "") -> dict[str, str]:
        """CLI/from_env configuration with the certificate; TENSORSEAL_SERVER_TOKEN="" means no
        token for the TS CLI too (its `??` keeps the empty string and skips the token file)."""
        return {
            "TENSORSEAL_SERVER": self.srv.url,
            "TENSORSEAL_SERVER_CA": str(self.srv.ca),
            "TENSORSEAL_SERVER_CERT": str(cert or self.cert),
            "TENSORSEAL_SERVER_KEY": str(key or self.key),
            "TENSORSEAL_SERVER_TOKEN": token,
        }


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MtlsServer]:
    d = tmp_path_factory.mktemp("mtls")
    # `--client-ca` is read before `--dev` makes its CA: a first start creates the dev CA (and a
    # token and a key), then the service restarts on the same home with mTLS on.
    first = start_server(d)
    try:
        admin = first.token("admin,wrap,unwrap")
        status, body = _get(first.url, first.ca, "/v1/keys", admin, {"name": "weights"})
        assert status == 200, body
        for spiffe_id, out in ((LOADER, "id"), (NO_ROLE, "id-norole")):
            p = run_cli(["service", "cert", "issue", "--spiffe-id", spiffe_id, "-o", str(d / out)], first.env)
            assert re.fullmatch(r"[0-9a-f]{64}\n", p.stdout), "issue prints the fingerprint only"
        ca = first.ca
    finally:
        first.stop()
    roles = d / "roles.json"
    roles.write_text(json.dumps({LOADER: ["unwrap", "wrap"]}))
    srv = start_server(d, ["--client-ca", str(ca), "--mtls-roles", str(roles)])
    try:
        yield MtlsServer(srv, admin, d / "id" / "client.pem", d / "id" / "client.key", d / "id-norole")
    finally:
        srv.stop()
    assert srv.proc.returncode is not None


def _mtls_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    monkeypatch.delenv("TENSORSEAL_SERVER_TOKEN_FILE", raising=False)
    for k, v in env.items():
        if k == "TENSORSEAL_SERVER_TOKEN" and not v:
            monkeypatch.delenv(k, raising=False)
        else:
            monkeypatch.setenv(k, v)


def _foreign_client_cert(d: Path, spiffe_id: str) -> tuple[Path, Path]:
    """A well-formed X509-SVID (clientAuth, one URI SAN) signed by a CA the service never saw."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "foreign test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    d.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = d / "client.pem", d / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _secret_parts(key: Path) -> list[str]:
    """Lines of a PEM private key's body: none may show up in an error message."""
    return [ln for ln in key.read_text().splitlines() if ln and not ln.startswith("-----")]


def test_mtls_certificate_alone_unwraps_and_wraps(mtls: MtlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(200_000)
    (tmp_path / "m.bin").write_bytes(data)
    # Sealed by the TS CLI with a bearer token (no certificate)...
    token_env = mtls.srv.client_env(mtls.admin)
    run_cli(["seal", str(tmp_path / "m.bin"), "-r", "service:weights", "-o", str(tmp_path / "m.tseal")], token_env)
    # ...opened in Python with only the certificate (no token anywhere).
    _mtls_env(monkeypatch, mtls.env())
    ident = ServiceIdentity.from_env()
    assert ident.client._token is None
    assert open_file(tmp_path / "m.tseal", [ident]) == data
    # Explicit arguments, no environment: the same.
    ident2 = ServiceIdentity(mtls.srv.url, None, mtls.srv.ca, cert_file=mtls.cert, key_file=mtls.key)
    assert open_file(tmp_path / "m.tseal", [ident2]) == data
    # Sealed by Python with only the certificate (wrap role from --mtls-roles), opened by the TS
    # CLI with only the certificate and by Python.
    sealed = seal_bytes(data, [parse_recipient("service:weights")])
    (tmp_path / "py.tseal").write_bytes(sealed)
    run_cli(["open", str(tmp_path / "py.tseal"), "-o", str(tmp_path / "py.out")], mtls.env())
    assert (tmp_path / "py.out").read_bytes() == data
    assert open_file_bytes(sealed, ident) == data
    # The audit log names the SPIFFE ID as the principal of the last unwrap.
    entries = [json.loads(ln) for ln in run_cli(["audit", "export"], mtls.srv.env).stdout.splitlines() if ln]
    unwraps = [e for e in entries if e.get("action") == "datakeys.unwrap" and e.get("outcome") == "allowed"]
    assert unwraps and unwraps[-1].get("principal") == LOADER, unwraps[-1:]
    # The certificate was the only credential: the same call without it is refused (401).
    with pytest.raises(TensorSealError) as e:
        open_file_bytes(sealed, ServiceIdentity(mtls.srv.url, None, mtls.srv.ca))
    assert e.value.code == "E_PROVIDER"


def test_mtls_spiffe_id_without_role_is_refused(mtls: MtlsServer, tmp_path: Path) -> None:
    sealed = seal_bytes(b"w", [ServiceRecipient(mtls.srv.url, mtls.admin, "weights", mtls.srv.ca)])
    ident = ServiceIdentity(
        mtls.srv.url, None, mtls.srv.ca, cert_file=mtls.no_role / "client.pem", key_file=mtls.no_role / "client.key"
    )
    with pytest.raises(TensorSealError) as e:
        open_file_bytes(sealed, ident)
    assert e.value.code == "E_PROVIDER" and "/v1/datakeys/unwrap" in str(e.value)


def test_mtls_certificate_of_another_ca_is_refused(mtls: MtlsServer, tmp_path: Path) -> None:
    # Same SPIFFE ID as the roled certificate, but signed by a CA the service does not trust.
    cert, key = _foreign_client_cert(tmp_path / "foreign", LOADER)
    sealed = seal_bytes(b"secret", [ServiceRecipient(mtls.srv.url, mtls.admin, "weights", mtls.srv.ca)])
    for token in (None, mtls.admin):  # a valid token does not rescue a bad certificate
        ident = ServiceIdentity(mtls.srv.url, token, mtls.srv.ca, cert_file=cert, key_file=key)
        with pytest.raises(TensorSealError) as e:
            open_file_bytes(sealed, ident)
        msg = str(e.value)
        assert e.value.code == "E_PROVIDER", msg
        assert "client certificate" in msg and "--client-ca" in msg, msg  # the service's 401 reason
        assert mtls.admin not in msg and not any(part in msg for part in _secret_parts(key))
        with pytest.raises(TensorSealError) as e:
            ServiceRecipient(mtls.srv.url, token, "weights", mtls.srv.ca, cert_file=cert, key_file=key).wrap(os.urandom(32))
        assert e.value.code == "E_PROVIDER"
    # The TS CLI refuses the same certificate (exit 8 = E_PROVIDER).
    (tmp_path / "s.tseal").write_bytes(sealed)
    p = run_cli(["open", str(tmp_path / "s.tseal"), "-o", str(tmp_path / "s.out")], mtls.env(cert, key), check=False)
    assert p.returncode == 8, p.stderr


def test_mtls_configuration_errors(mtls: MtlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _mtls_env(monkeypatch, mtls.env())
    assert ServiceClient.from_env().server_id() == mtls.srv.server_id
    # Half a client identity is E_USAGE (an empty value counts as unset), never a token-less call.
    for unset in ("TENSORSEAL_SERVER_KEY", "TENSORSEAL_SERVER_CERT"):
        with monkeypatch.context() as m:
            m.delenv(unset)
            with pytest.raises(TensorSealError) as e:
                ServiceIdentity.from_env()
            assert e.value.code == "E_USAGE" and "TENSORSEAL_SERVER_CERT and TENSORSEAL_SERVER_KEY" in str(e.value)
            m.setenv(unset, "")
            with pytest.raises(TensorSealError) as e:
                ServiceRecipient.from_env("weights")
            assert e.value.code == "E_USAGE"
    for kw in ({"cert_file": mtls.cert}, {"key_file": mtls.key}):
        with pytest.raises(TensorSealError) as e:
            ServiceClient(mtls.srv.url, None, mtls.srv.ca, **kw)  # type: ignore[arg-type]
        assert e.value.code == "E_USAGE" and "give both" in str(e.value)
    # The TS CLI says the same about half an identity (exit 2).
    (tmp_path / "x.tseal").write_bytes(seal_bytes(b"x", [ServiceRecipient(mtls.srv.url, mtls.admin, "weights", mtls.srv.ca)]))
    p = run_cli(["open", str(tmp_path / "x.tseal"), "-o", str(tmp_path / "x.out")], {**mtls.env(), "TENSORSEAL_SERVER_KEY": ""}, check=False)
    assert p.returncode == 2, p.stderr
    # A missing file names the variable; a key that does not match, or an encrypted key, is
    # E_USAGE at once (no passphrase prompt) and never shows key material.
    monkeypatch.setenv("TENSORSEAL_SERVER_KEY", str(tmp_path / "missing.key"))
    with pytest.raises(TensorSealError) as e:
        ServiceIdentity.from_env()
    assert e.value.code == "E_USAGE" and "TENSORSEAL_SERVER_KEY=" in str(e.value) and "ENOENT" in str(e.value)
    _, other_key = _foreign_client_cert(tmp_path / "other", LOADER)
    from cryptography.hazmat.primitives import serialization

    pem = serialization.load_pem_private_key(mtls.key.read_bytes(), None)
    encrypted = tmp_path / "enc.key"
    encrypted.write_bytes(
        pem.private_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
        )
    )
    for bad_key, words in ((other_key, "cannot be loaded"), (encrypted, "encrypted")):
        with pytest.raises(TensorSealError) as e:
            ServiceClient(mtls.srv.url, None, mtls.srv.ca, cert_file=mtls.cert, key_file=bad_key)
        msg = str(e.value)
        assert e.value.code == "E_USAGE" and words in msg, msg
        assert not any(part in msg for part in _secret_parts(bad_key) + _secret_parts(mtls.key))
    # Not a certificate at all.
    with pytest.raises(TensorSealError) as e:
        ServiceClient(mtls.srv.url, None, mtls.srv.ca, cert_file=mtls.srv.ca.parent / "nope.pem", key_file=mtls.key)
    assert e.value.code == "E_USAGE"


def test_a_token_that_is_not_one_line_is_refused_naming_its_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A CR/LF would inject a header; the CLI refuses it the same way. Never echoed.
    secret = "tsk_secret_value"
    monkeypatch.setenv("TENSORSEAL_SERVER", "https://127.0.0.1:9")
    monkeypatch.delenv("TENSORSEAL_SERVER_TOKEN", raising=False)
    bad = tmp_path / "token"
    bad.write_text(f"{secret}\r\nX-Injected: 1\n")
    monkeypatch.setenv("TENSORSEAL_SERVER_TOKEN_FILE", str(bad))
    with pytest.raises(TensorSealError) as e:
        ServiceClient.from_env()
    assert e.value.code == "E_USAGE" and "TENSORSEAL_SERVER_TOKEN_FILE" in str(e.value)
    assert secret not in str(e.value)
    with pytest.raises(TensorSealError) as e:
        ServiceClient("https://127.0.0.1:9", f"{secret}\nsecond line")
    assert e.value.code == "E_USAGE" and secret not in str(e.value)
