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


def start_server(d: Path) -> Server:
    d.mkdir(parents=True, exist_ok=True)
    root = d / "root.hex"
    root.write_text(os.urandom(32).hex())
    env = {"HOME": str(d), "TENSORSEAL_HOME": str(d / "home"), "TENSORSEAL_ROOT_KEY_FILE": str(root)}
    log = d / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [shutil.which("node") or "node", str(CLI), "serve", "--dev", "--listen", "127.0.0.1:0", "--log-level", "warn"],
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
