"""The python/README.md examples for HSMs and AWS KMS and for sealing to s3://, and the Python
example of docs/PROVIDERS.md, run as written:
moto's server on loopback (KMS with alias/ml-models, S3 with bucket models) and a SoftHSM2
token backup-hsm with a key `models`, configured through the environment as the README says."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from helpers import REPO
from moto_s3 import REGION, boto3_client, missing, moto_s3, s3_env
from softhsm import softhsm_token
from tensorseal import X25519Identity, generate_identity, open_bytes
from tensorseal.keys.pkcs11 import Pkcs11Provider
from tensorseal.keys.provider import reset_providers

DOC = "python/README.md"
DATA = os.urandom(70_000)


def doc_block(heading: str, doc: str = DOC) -> str:
    text = (REPO / doc).read_text(encoding="utf-8")
    m = re.search(rf"^#+ {re.escape(heading)}\n.*?^```python\n(.*?)^```$", text, flags=re.S | re.M)
    assert m is not None, f"{doc} has no python block under {heading!r} any more"
    return m.group(1)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    try:
        import boto3
    except ImportError:
        missing("boto3 is not installed: pip install 'tensorseal[kms]'")
    with moto_s3() as endpoint, softhsm_token(tmp_path / "hsm", "backup-hsm"):
        s3_env(monkeypatch, endpoint)
        monkeypatch.setenv("AWS_REGION", REGION)
        monkeypatch.setenv("TENSORSEAL_KMS_ENDPOINT", endpoint)
        kms = boto3.client("kms", endpoint_url=endpoint, region_name=REGION)
        key = kms.create_key(Description="README ml-models")["KeyMetadata"]
        kms.create_alias(AliasName="alias/ml-models", TargetKeyId=key["KeyId"])
        monkeypatch.setenv("TENSORSEAL_KMS_KEYS", key["Arn"])
        monkeypatch.setenv("TENSORSEAL_PKCS11_TOKENS", "backup-hsm")
        Pkcs11Provider(os.environ["TENSORSEAL_PKCS11_MODULE"]).generate_key("backup-hsm/models")
        s3 = boto3_client(endpoint)
        s3.create_bucket(Bucket="models")
        (tmp_path / "model.safetensors").write_bytes(DATA)
        monkeypatch.chdir(tmp_path)
        reset_providers()
        try:
            yield {"s3": s3, "arn": key["Arn"]}
        finally:
            reset_providers()


def test_the_hsm_and_kms_example_runs(world: Any) -> None:
    ns: dict[str, Any] = {}
    exec(compile(doc_block("HSMs and AWS KMS (`pkcs11:`, `aws-kms:`)"), DOC, "exec"), ns)  # noqa: S102
    assert ns["data"] == DATA
    # Each stanza alone opens it: one identity list allows KMS only, the environment's both.
    blob = Path("model.safetensors.tseal").read_bytes()
    assert open_bytes(blob, ns["env_ids"]) == DATA
    from tensorseal.keys.provider import ProviderAllowList, provider_identities

    assert open_bytes(blob, provider_identities(ProviderAllowList(pkcs11=["backup-hsm/models"]))) == DATA
    assert open_bytes(blob, provider_identities(ProviderAllowList(aws_kms=[world["arn"]]))) == DATA


def test_the_seal_to_s3_example_runs(world: Any) -> None:
    secret, public = generate_identity()
    Path("partner.pub").write_text(public + "\n")
    ns: dict[str, Any] = {}
    exec(compile(doc_block("Sealing to `s3://`"), DOC, "exec"), ns)  # noqa: S102
    blob = world["s3"].get_object(Bucket="models", Key="model.safetensors.tseal")["Body"].read()
    assert open_bytes(blob, [X25519Identity(secret)]) == DATA


def test_the_providers_doc_python_example_runs(world: Any) -> None:
    ns: dict[str, Any] = {}
    exec(compile(doc_block("Python", "docs/PROVIDERS.md"), "docs/PROVIDERS.md", "exec"), ns)  # noqa: S102
    assert ns["data"] == DATA
    assert open_bytes(Path("model.tseal").read_bytes(), ns["ids"]) == DATA
