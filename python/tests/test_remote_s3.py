"""Sealed files and sealed model directories straight from S3 (moto's server on loopback,
started here; missing moto fails under TENSORSEAL_REQUIRE_ALL=1), and from an fsspec
filesystem. Files are sealed by the TS CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from moto_s3 import boto3_client, moto_s3, s3_env
from remote_helpers import IDS, PUBLIC, open_overhead, sealed_model, tensor_bound, upload_dir
from helpers import run_cli
from tensorseal import SealedFile, TensorSealError
from tensorseal.hf import is_sealed_model_dir, open_model_dir
from tensorseal.remote import open_source
from tensorseal.safetensors import load_file, safe_open

BUCKET = "sealed-models"



@pytest.fixture(scope="module")
def endpoint() -> Any:
    with moto_s3() as ep:
        yield ep


@pytest.fixture(scope="module")
def world(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("s3")
    c = boto3_client(endpoint)
    c.create_bucket(Bucket=BUCKET)
    t, plain, sealed = sealed_model(d)
    c.put_object(Bucket=BUCKET, Key="m.tseal", Body=sealed)
    return {"dir": d, "client": c, "tensors": t, "plain": plain, "sealed": sealed}


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    s3_env(monkeypatch, endpoint)


def test_full_load_from_s3_equals_plaintext(world: dict[str, Any]) -> None:
    got = load_file(f"s3://{BUCKET}/m.tseal", identities=IDS)
    for k, v in world["tensors"].items():
        assert np.array_equal(got[k], v), k


def test_one_tensor_from_s3_fetches_its_chunks_and_the_header(world: dict[str, Any]) -> None:
    src = open_source(f"s3://{BUCKET}/m.tseal")
    t, plain, sealed = world["tensors"], world["plain"], world["sealed"]
    with safe_open(SealedFile(src, IDS), identities=[]) as f:
        opened = src.bytes_fetched
        assert opened <= open_overhead(sealed, plain)
        assert np.array_equal(f.get_tensor("layer.6.weight"), t["layer.6.weight"])
    assert src.bytes_fetched - opened <= tensor_bound(t["layer.6.weight"].nbytes)
    assert src.bytes_fetched < len(sealed) // 3


def test_tampered_object_in_s3_is_rejected(world: dict[str, Any]) -> None:
    bad = bytearray(world["sealed"])
    bad[-100] ^= 0x80
    world["client"].put_object(Bucket=BUCKET, Key="bad.tseal", Body=bytes(bad))
    with pytest.raises(TensorSealError) as e:
        load_file(f"s3://{BUCKET}/bad.tseal", identities=IDS)
    assert e.value.code == "E_DECRYPT" and e.value.file == f"s3://{BUCKET}/bad.tseal"


def test_object_overwritten_mid_read_is_rejected(world: dict[str, Any], tmp_path: Path) -> None:
    from remote_helpers import cli_seal

    c = world["client"]
    c.put_object(Bucket=BUCKET, Key="swap.tseal", Body=world["sealed"])
    (tmp_path / "p.safetensors").write_bytes(world["plain"])
    other = cli_seal(tmp_path / "p.safetensors", tmp_path / "o.tseal", tmp_path / "home")
    with safe_open(f"s3://{BUCKET}/swap.tseal", identities=IDS) as f:
        f.get_tensor("tiny")
        c.put_object(Bucket=BUCKET, Key="swap.tseal", Body=other)  # same size, new ETag
        with pytest.raises(TensorSealError) as e:
            f.get_tensor("layer.7.weight")
    assert e.value.code == "E_IO" and "changed while being read" in e.value.message


def test_missing_object_names_the_url(world: dict[str, Any]) -> None:
    with pytest.raises(TensorSealError) as e:
        load_file(f"s3://{BUCKET}/absent.tseal", identities=IDS)
    assert e.value.code == "E_IO" and e.value.file == f"s3://{BUCKET}/absent.tseal"


def test_fsspec_filesystem_url(world: dict[str, Any]) -> None:
    if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
        import fsspec
    else:
        fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.pipe("/fs-test/m.tseal", world["sealed"])
    try:
        got = load_file("memory://fs-test/m.tseal", identities=IDS)
        assert all(np.array_equal(got[k], v) for k, v in world["tensors"].items())
        bad = bytearray(world["sealed"])
        bad[len(bad) // 3] ^= 1
        fs.pipe("/fs-test/bad.tseal", bytes(bad))
        with pytest.raises(TensorSealError) as e:
            load_file("memory://fs-test/bad.tseal", identities=IDS)
        assert e.value.code == "E_DECRYPT"
    finally:
        fs.rm("/fs-test", recursive=True)


# -- sealed Hugging Face directories under an S3 prefix ------------------------------------


@pytest.fixture(scope="module")
def hf_model(world: dict[str, Any]) -> dict[str, Any]:
    from test_hf_dir import make_model

    d: Path = world["dir"]
    t = make_model(d / "plain-hf", 7)
    run_cli(["seal-dir", str(d / "plain-hf"), "-o", str(d / "hf.sealed"), "-r", PUBLIC, "--chunk-size", "16KiB"],
            {"TENSORSEAL_HOME": str(d / "home")})  # fmt: skip
    upload_dir(world["client"], d / "hf.sealed", "models/toy", BUCKET)
    return {"tensors": t, "plain": d / "plain-hf", "sealed": d / "hf.sealed"}


def test_sealed_hf_dir_from_s3_loads_and_matches(world: dict[str, Any], hf_model: dict[str, Any]) -> None:
    url = f"s3://{BUCKET}/models/toy/"
    assert is_sealed_model_dir(url) and not is_sealed_model_dir(f"s3://{BUCKET}/models/none/")
    with open_model_dir(url, identities=IDS) as md:
        assert md.read_bytes("config.json") == (hf_model["plain"] / "config.json").read_bytes()
        got: dict[str, np.ndarray] = dict(md.load_file("model-00002-of-00002.safetensors", framework="np"))
        with md.safe_open("model-00001-of-00002.safetensors", framework="np") as f:  # digest checked first
            got.update({k: f.get_tensor(k) for k in f.keys()})
    assert sorted(got) == sorted(hf_model["tensors"])
    for k, v in hf_model["tensors"].items():
        assert np.array_equal(got[k], v), k


def test_sealed_hf_dir_from_s3_as_torch_state_dict(world: dict[str, Any], hf_model: dict[str, Any]) -> None:
    if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
        import torch  # noqa: F401
    else:
        pytest.importorskip("torch")
    from tensorseal.hf import load_state_dict

    state = load_state_dict(f"s3://{BUCKET}/models/toy", identities=IDS)
    for k, v in hf_model["tensors"].items():
        assert np.array_equal(state[k].numpy(), v), k


def test_s3_dir_with_an_added_or_swapped_object_is_refused(world: dict[str, Any], hf_model: dict[str, Any]) -> None:
    c, sealed = world["client"], hf_model["sealed"]
    upload_dir(c, sealed, "models/extra", BUCKET)
    c.put_object(Bucket=BUCKET, Key="models/extra/evil.json.tseal", Body=world["sealed"])
    with pytest.raises(TensorSealError) as e:
        open_model_dir(f"s3://{BUCKET}/models/extra", identities=IDS)
    assert e.value.code == "E_DECRYPT" and e.value.file == f"s3://{BUCKET}/models/extra/evil.json.tseal"
    upload_dir(c, sealed, "models/swapped", BUCKET)
    one, two = "model-00001-of-00002.safetensors.tseal", "model-00002-of-00002.safetensors.tseal"
    c.put_object(Bucket=BUCKET, Key=f"models/swapped/{one}", Body=(sealed / two).read_bytes())
    with pytest.raises(TensorSealError) as e:
        open_model_dir(f"s3://{BUCKET}/models/swapped/", identities=IDS)
    assert e.value.code == "E_DECRYPT" and "another path or model" in e.value.message
    assert e.value.file == f"s3://{BUCKET}/models/swapped/{one}"


def test_versioned_bucket_keeps_reading_the_pinned_version(world: dict[str, Any], tmp_path: Path) -> None:
    from remote_helpers import cli_seal

    c = world["client"]
    c.create_bucket(Bucket="versioned-models")
    c.put_bucket_versioning(Bucket="versioned-models", VersioningConfiguration={"Status": "Enabled"})
    c.put_object(Bucket="versioned-models", Key="m.tseal", Body=world["sealed"])
    (tmp_path / "p.safetensors").write_bytes(world["plain"])
    other = cli_seal(tmp_path / "p.safetensors", tmp_path / "o.tseal", tmp_path / "home")
    src = open_source("s3://versioned-models/m.tseal")
    assert src.pin.version
    with safe_open(SealedFile(src, IDS), identities=[]) as f:
        f.get_tensor("tiny")
        c.put_object(Bucket="versioned-models", Key="m.tseal", Body=other)  # a new current version
        got = f.get_tensor("layer.7.weight")  # still the pinned version, whole and authentic
    assert np.array_equal(got, world["tensors"]["layer.7.weight"])


def test_unreachable_endpoint_is_retried_then_reported() -> None:
    from moto_s3 import free_port

    with pytest.raises(TensorSealError) as e:
        open_source(f"s3://{BUCKET}/m.tseal", endpoint_url=f"http://127.0.0.1:{free_port()}", retries=2, backoff_s=0.01)
    assert e.value.code == "E_IO" and "after 3 attempts" in e.value.message
    assert "testing" not in str(e.value)  # the access key id of the environment


def test_sealed_hf_dir_on_an_fsspec_filesystem(hf_model: dict[str, Any]) -> None:
    if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
        import fsspec
    else:
        fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for p in sorted(hf_model["sealed"].rglob("*")):
        if p.is_file():
            fs.pipe(f"/hf-test/{p.relative_to(hf_model['sealed']).as_posix()}", p.read_bytes())
    try:
        with open_model_dir("memory://hf-test", identities=IDS) as md:
            got = md.load_file("model-00002-of-00002.safetensors", framework="np")
        assert all(np.array_equal(got[k], hf_model["tensors"][k]) for k in got) and got
        fs.pipe("/hf-test/added.bin.tseal", b"x")
        with pytest.raises(TensorSealError) as e:
            open_model_dir("memory://hf-test/", identities=IDS)
        assert e.value.code == "E_DECRYPT" and "not in the sealed manifest" in e.value.message
    finally:
        fs.rm("/hf-test", recursive=True)


def test_missing_moto_fails_under_require_all(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto_s3

    monkeypatch.setattr(moto_s3, "moto_server", lambda: None)
    monkeypatch.setenv("TENSORSEAL_REQUIRE_ALL", "1")
    with pytest.raises(pytest.fail.Exception, match="moto_server not found"):
        with moto_s3.moto_s3():
            pass
    monkeypatch.setenv("TENSORSEAL_REQUIRE_ALL", "0")
    with pytest.raises(pytest.skip.Exception):
        with moto_s3.moto_s3():
            pass
