"""The AWS KMS provider against moto's server on loopback (boto3): Encrypt / GenerateDataKey /
Decrypt with the stanza's encryption context, the allow-list (no KMS call for a key not
allowed; aliases resolved with DescribeKey), the failure modes, and files sealed by the TS CLI
to an ``aws-kms:`` recipient opening here and the other way round (the CLI from dist/)."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest

from helpers import run_cli
from moto_s3 import REGION, free_port, missing, moto_s3
from tensorseal import TensorSealError, X25519Identity, generate_identity, open_bytes, parse_recipient, read_header, seal_bytes
from tensorseal.format.stanza import Stanza
from tensorseal.keys.aws_kms import AwsKmsProvider, kms_encryption_context, re_encrypt_kms_stanza
from tensorseal.keys.provider import ProviderAllowList, describe_kms_stanza, parse_kms_stanza, provider_identities, reset_providers

DATA = os.urandom(150_000)
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class Recorder:
    """A boto3 KMS client that records the operations called on it."""

    def __init__(self, client: Any, calls: list[str]) -> None:
        self._client, self._calls = client, calls

    def __getattr__(self, op: str) -> Any:
        f = getattr(self._client, op)

        def call(**kw: Any) -> Any:
            self._calls.append(op)
            return f(**kw)

        return call


@pytest.fixture(scope="module")
def kms() -> Any:
    try:
        import boto3
    except ImportError:
        missing("boto3 is not installed: pip install 'tensorseal[kms]'")
    with moto_s3() as endpoint:
        saved = {k: os.environ.get(k) for k in CREDS}
        os.environ.update(CREDS)
        try:
            c = boto3.client("kms", endpoint_url=endpoint, region_name=REGION, **{k.lower(): v for k, v in CREDS.items()})
            k1 = c.create_key(Description="py key 1")["KeyMetadata"]
            k2 = c.create_key(Description="py key 2")["KeyMetadata"]
            c.create_alias(AliasName="alias/py-models", TargetKeyId=k1["KeyId"])
            calls: list[str] = []
            provider = AwsKmsProvider(region=REGION, endpoint_url=endpoint,
                                      client_factory=lambda r: Recorder(boto3.client("kms", region_name=r, endpoint_url=endpoint), calls))  # fmt: skip
            yield {"endpoint": endpoint, "k1": k1, "k2": k2, "calls": calls, "p": provider, "providers": {"aws-kms": provider}}
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def kms_stanza(blob: bytes) -> Stanza:
    (s,) = [s for s in read_header(io.BytesIO(blob)).stanzas if s.type == "kms"]
    return s


def test_first_kms_recipient_draws_the_file_key(kms: Any) -> None:
    secret, public = generate_identity()
    kms["calls"].clear()
    blob = seal_bytes(DATA, [parse_recipient(f"aws-kms:{kms['k1']['Arn']}", providers=kms["providers"]), parse_recipient(public)])
    assert kms["calls"] == ["generate_data_key"]
    k = parse_kms_stanza(kms_stanza(blob))
    assert (k.provider, k.key_ref, len(k.params[0])) == ("aws-kms", kms["k1"]["Arn"], 16)
    assert describe_kms_stanza(kms_stanza(blob)) == f"kms aws-kms {kms['k1']['Arn']} binding {k.params[0].hex()}"
    ids = provider_identities(ProviderAllowList(aws_kms=[kms["k1"]["Arn"]]), providers=kms["providers"])
    assert open_bytes(blob, ids) == DATA
    assert open_bytes(blob, [X25519Identity(secret)]) == DATA  # the same file key for both


def test_a_later_kms_recipient_wraps_with_encrypt_and_records_the_arn_of_an_alias(kms: Any) -> None:
    kms["calls"].clear()
    # As the CLI: the first recipient that can draw the key (k2, even after an X25519 one) does.
    _, public = generate_identity()
    rs = [parse_recipient(public), *(parse_recipient(f"aws-kms:{r}", providers=kms["providers"]) for r in (kms["k2"]["Arn"], "alias/py-models"))]
    blob = seal_bytes(DATA, rs)
    assert kms["calls"] == ["generate_data_key", "encrypt"]
    stanzas = [s for s in read_header(io.BytesIO(blob)).stanzas if s.type == "kms"]
    assert [parse_kms_stanza(s).key_ref for s in stanzas] == [kms["k2"]["Arn"], kms["k1"]["Arn"]]
    kms["calls"].clear()
    # An alias on the list allows the key it names now: one DescribeKey about the entry.
    assert open_bytes(blob, provider_identities({"aws_kms": ["alias/py-models"]}, providers=kms["providers"])) == DATA
    assert kms["calls"] == ["describe_key", "decrypt"]


def test_a_key_not_allowed_is_never_contacted(kms: Any) -> None:
    secret, public = generate_identity()
    blob = seal_bytes(DATA, [parse_recipient(f"aws-kms:{kms['k1']['Arn']}", providers=kms["providers"]), parse_recipient(public)])
    account = kms["k1"]["Arn"].split(":")[4]
    for allow in ([], [kms["k2"]["Arn"]], [f"arn:aws:kms:eu-*:{account}:key/*"]):
        kms["calls"].clear()
        ids = provider_identities(ProviderAllowList(aws_kms=allow), providers=kms["providers"])
        with pytest.raises(TensorSealError) as e:
            open_bytes(blob, ids)
        assert e.value.code == "E_KEY_STATE" and "is not allowed, so KMS was not asked" in e.value.message
        assert kms["calls"] == []
        # The same file still opens with the other stanza, without any KMS call.
        assert open_bytes(blob, [*ids, X25519Identity(secret)]) == DATA
        assert kms["calls"] == []
    ids = provider_identities(ProviderAllowList(aws_kms=[f"arn:aws:kms:*:{account}:key/*"]), providers=kms["providers"])
    assert open_bytes(blob, ids) == DATA


@pytest.mark.parametrize("entry", ["*", "arn:aws:kms:us-east-1:*:key/*", "arn:*:kms:us-east-1:111122223333:key/x", "not an arn"])
def test_wildcards_outside_region_and_key_id_are_refused(entry: str) -> None:
    with pytest.raises(TensorSealError) as e:
        provider_identities(ProviderAllowList(aws_kms=[entry]))
    assert e.value.code == "E_USAGE"


def test_a_modified_binding_or_another_key_does_not_open(kms: Any) -> None:
    p: AwsKmsProvider = kms["p"]
    s = p.wrap(bytes(range(32)), kms["k1"]["Arn"])
    assert p.unwrap(s) == bytes(range(32))
    binding = bytearray(s.fields[2])
    binding[0] ^= 1
    for bad in (Stanza("kms", (s.fields[0], s.fields[1], bytes(binding), s.fields[3])),
                Stanza("kms", (*s.fields[:3], s.fields[3][:-1] + bytes([s.fields[3][-1] ^ 1])))):  # fmt: skip
        with pytest.raises(TensorSealError) as e:
            p.unwrap(bad)
        assert e.value.code == "E_DECRYPT", e.value.message
    with pytest.raises(TensorSealError) as e:
        p.unwrap(Stanza("kms", (s.fields[0], s.fields[1], s.fields[2][:15], s.fields[3])))
    assert e.value.code == "E_MALFORMED"


def test_re_encrypt_moves_a_stanza_inside_kms(kms: Any) -> None:
    p: AwsKmsProvider = kms["p"]
    s = p.wrap(bytes(range(32)), kms["k1"]["Arn"])
    with pytest.raises(TensorSealError) as e:
        re_encrypt_kms_stanza(s, kms["k2"]["Arn"], ProviderAllowList(), provider=p)
    assert e.value.code == "E_KEY_STATE"
    moved = re_encrypt_kms_stanza(s, kms["k2"]["Arn"], ProviderAllowList(aws_kms=[kms["k1"]["Arn"]]), provider=p)
    assert parse_kms_stanza(moved).key_ref == kms["k2"]["Arn"] and moved.fields[2] != s.fields[2]
    assert p.unwrap(moved) == bytes(range(32))


def test_unreachable_kms_and_missing_region(kms: Any) -> None:
    p = AwsKmsProvider(region=REGION, endpoint_url=f"http://127.0.0.1:{free_port()}", max_attempts=1)
    with pytest.raises(TensorSealError) as e:
        p.wrap(bytes(32), kms["k1"]["Arn"])
    assert e.value.code == "E_PROVIDER" and "cannot reach KMS at http://127.0.0.1:" in e.value.message
    with pytest.raises(TensorSealError) as e:
        AwsKmsProvider(endpoint_url=kms["endpoint"]).wrap(bytes(32), "alias/py-models")
    assert e.value.code == "E_PROVIDER" and "no region for key alias/py-models" in e.value.message
    with pytest.raises(TensorSealError) as e:
        kms["p"].wrap(bytes(32), "alias/does-not-exist")
    assert e.value.code == "E_PROVIDER" and "not found" in e.value.message


def test_the_encryption_context_is_the_clis() -> None:
    assert kms_encryption_context(bytes(range(16))) == {"tensorseal:stanza": "v1", "tensorseal:binding": bytes(range(16)).hex()}


def cli_env(kms: Any, home: Path) -> dict[str, str]:
    return {**CREDS, "AWS_REGION": REGION, "TENSORSEAL_KMS_ENDPOINT": kms["endpoint"], "TENSORSEAL_HOME": str(home),
            "TENSORSEAL_KMS_KEYS": kms["k1"]["Arn"], "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true"}  # fmt: skip


def test_sealed_by_the_cli_opens_here(kms: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "w.bin").write_bytes(DATA)
    run_cli(["seal", str(tmp_path / "w.bin"), "-o", str(tmp_path / "w.tseal"), "-r", "aws-kms:alias/py-models"], cli_env(kms, tmp_path / "home"))
    blob = (tmp_path / "w.tseal").read_bytes()
    assert parse_kms_stanza(kms_stanza(blob)).key_ref == kms["k1"]["Arn"]
    # The provider from the environment, as the CLI configures it.
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("TENSORSEAL_KMS_ENDPOINT", kms["endpoint"])
    reset_providers()
    try:
        assert open_bytes(blob, provider_identities(ProviderAllowList(aws_kms=[kms["k1"]["Arn"]]))) == DATA
    finally:
        reset_providers()


def test_sealed_here_opens_in_the_cli(kms: Any, tmp_path: Path) -> None:
    (tmp_path / "w.tseal").write_bytes(seal_bytes(DATA, [parse_recipient(f"aws-kms:{kms['k1']['KeyId']}", providers=kms["providers"])]))
    env = cli_env(kms, tmp_path / "home")
    run_cli(["open", str(tmp_path / "w.tseal"), "-o", str(tmp_path / "w.out")], env)
    assert (tmp_path / "w.out").read_bytes() == DATA
    env["TENSORSEAL_KMS_KEYS"] = kms["k2"]["Arn"]
    p = run_cli(["open", str(tmp_path / "w.tseal"), "-o", str(tmp_path / "w2.out")], env, check=False)
    assert p.returncode == 9 and "is not allowed" in p.stderr, p.stderr


@pytest.mark.parametrize(("kind", "message"), [
    ("DisabledException", r"Decrypt failed: key arn:\S+ is disabled: enable it"),
    ("KMSInvalidStateException", r"not usable in its state \(pending deletion"),
    ("AccessDeniedException", r"access to key .* denied: the key policy or IAM must allow kms:Decrypt"),
    ("UnrecognizedClientException", r"AWS credentials rejected"),
])  # fmt: skip
def test_key_state_errors_fail_closed(kms: Any, kind: str, message: str) -> None:
    """moto does not enforce DisableKey on Decrypt, so (as the TS test) a loopback stub answers
    every call with KMS's JSON error body; boto3 parses it as from KMS."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Stub(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = json.dumps({"__type": kind, "message": f"stub {kind}"}).encode()
            self.send_response(400)
            self.send_header("content-type", "application/x-amz-json-1.1")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    s = kms["p"].wrap(bytes(32), kms["k2"]["Arn"])
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        p = AwsKmsProvider(region=REGION, endpoint_url=f"http://127.0.0.1:{srv.server_address[1]}", max_attempts=1)
        with pytest.raises(TensorSealError) as e:
            p.unwrap(s)
        assert e.value.code == "E_PROVIDER" and re.search(message, e.value.message), e.value.message
    finally:
        srv.shutdown()
        srv.server_close()
