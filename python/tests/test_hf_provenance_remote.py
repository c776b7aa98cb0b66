"""Signed provenance of sealed model directories in object storage: a directory sealed and
signed by the TS CLI (``seal-dir --sign``), uploaded to moto's S3 server on loopback (missing
moto fails under TENSORSEAL_REQUIRE_ALL=1), checked by ``require_signer=`` through ranged reads
before any key is unwrapped; an unsigned model, another signer, a swapped or added file and a
replaced config are refused with ``E_SIGNATURE``. Also over an fsspec store and plain HTTP.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from moto_s3 import boto3_client, moto_s3, s3_env
from remote_helpers import upload_dir
from test_hf_provenance import IDS, key_pair, make_model, seal
from tensorseal import SignatureError, TensorSealError, X25519Identity
from tensorseal.hf import open_model_dir, verify_sealed_dir
from tensorseal.hf import provenance

BUCKET = "signed-models"
SHARD = "model.safetensors.tseal"


class Counting(X25519Identity):
    """The test identity, counting unwrap attempts: a refusal must come before the first."""

    def __init__(self, base: X25519Identity) -> None:
        self.__dict__.update(base.__dict__)
        self.unwraps = 0

    def unwrap(self, stanza: Any) -> bytes | None:
        self.unwraps += 1
        return super().unwrap(stanza)


def counting() -> Counting:
    return Counting(IDS[0])


@pytest.fixture(scope="module")
def endpoint() -> Any:
    with moto_s3() as ep:
        yield ep


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    s3_env(monkeypatch, endpoint)


@pytest.fixture(scope="module")
def world(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("prov-s3")
    prod_priv, prod_pub = key_pair(d, "producer")
    other_priv, other_pub = key_pair(d, "other")
    tensors = make_model(d / "plain", 1)
    make_model(d / "plain2", 2)
    seal(d / "plain", d / "a.sealed", d / "home", prod_priv)
    seal(d / "plain2", d / "b.sealed", d / "home", prod_priv)  # another model, same signer
    seal(d / "plain", d / "x.sealed", d / "home", other_priv)
    seal(d / "plain", d / "u.sealed", d / "home", None)
    c = boto3_client(endpoint)
    c.create_bucket(Bucket=BUCKET)
    for name in ("a", "b", "x", "u"):
        upload_dir(c, d / f"{name}.sealed", name, BUCKET)
    return {"dir": d, "client": c, "pub": prod_pub, "other_pub": other_pub, "tensors": tensors}


def variant(world: dict[str, Any], name: str, changes: dict[str, bytes | None]) -> str:
    """Uploads a.sealed under ``name/`` with ``changes`` (key -> new bytes, None: removed)."""
    c, src = world["client"], world["dir"] / "a.sealed"
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src).as_posix()
        body = changes.get(rel, p.read_bytes())
        if body is not None:
            c.put_object(Bucket=BUCKET, Key=f"{name}/{rel}", Body=body)
    for rel, body in changes.items():
        if body is not None and not (src / rel).exists():
            c.put_object(Bucket=BUCKET, Key=f"{name}/{rel}", Body=body)
    return f"s3://{BUCKET}/{name}/"


def refused(url: str, signer: Path, match: str) -> SignatureError:
    ident = counting()
    with pytest.raises(SignatureError, match=match) as e:
        open_model_dir(url, identities=[ident], require_signer=signer)
    assert e.value.code == "E_SIGNATURE"
    assert ident.unwraps == 0, "a key was tried before the signature was checked"
    return e.value


def test_signed_model_in_s3_loads_with_its_signer(world: dict[str, Any]) -> None:
    ident = counting()
    with open_model_dir(f"s3://{BUCKET}/a", identities=[ident], require_signer=world["pub"]) as md:
        assert md.read_json("config.json") == {"model_type": "toy"}
        got = md.load_file("model.safetensors", framework="np")
    assert np.array_equal(got["w"], world["tensors"]["w"])
    assert ident.unwraps > 0
    b = verify_sealed_dir(f"s3://{BUCKET}/a/", world["pub"].read_bytes())
    assert [f.path for f in b.files] == [".gitattributes", "config.json", "model.safetensors"]


def test_remote_verification_reads_headers_only(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each sealed file costs its header and 56 bytes, fetched by ranged reads, never its payload."""
    from tensorseal.remote import RangeSource

    fetched: dict[str, int] = {}
    real = RangeSource.read

    def spy(self: RangeSource, offset: int, n: int) -> bytes:
        fetched[self.name] = fetched.get(self.name, 0) + n
        return real(self, offset, n)

    monkeypatch.setattr(RangeSource, "read", spy)
    verify_sealed_dir(f"s3://{BUCKET}/a", world["pub"])
    shard = f"s3://{BUCKET}/a/{SHARD}"
    size = (world["dir"] / "a.sealed" / SHARD).stat().st_size
    from tensorseal.reader import read_header

    with open(world["dir"] / "a.sealed" / SHARD, "rb") as f:
        header = read_header(f).header_length
    assert fetched[shard] == header + 56 < size
    assert fetched[f"s3://{BUCKET}/a/model.sig"] == (world["dir"] / "a.sealed" / "model.sig").stat().st_size


def test_load_state_dict_from_s3_with_a_signer(world: dict[str, Any]) -> None:
    if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
        import torch  # noqa: F401
    else:
        pytest.importorskip("torch")
    from tensorseal.hf import load_state_dict

    state = load_state_dict(f"s3://{BUCKET}/a", identities=IDS, require_signer=world["pub"])
    assert np.array_equal(state["w"].numpy(), world["tensors"]["w"])
    ident = counting()
    with pytest.raises(SignatureError, match="another key"):
        load_state_dict(f"s3://{BUCKET}/a", identities=[ident], require_signer=world["other_pub"])
    assert ident.unwraps == 0


def test_another_signer_is_refused(world: dict[str, Any]) -> None:
    refused(f"s3://{BUCKET}/x", world["pub"], "another key")
    refused(f"s3://{BUCKET}/a", world["other_pub"], "another key")


def test_unsigned_and_signature_removed_are_refused(world: dict[str, Any]) -> None:
    e = refused(f"s3://{BUCKET}/u", world["pub"], "unsigned")
    assert "s3://" in e.message
    refused(variant(world, "nosig", {"model.sig": None}), world["pub"], "unsigned")


def test_file_swapped_from_another_signed_model_is_refused(world: dict[str, Any]) -> None:
    other = (world["dir"] / "b.sealed" / SHARD).read_bytes()
    e = refused(variant(world, "swap", {SHARD: other}), world["pub"], "not the signed file")
    assert e.file == f"s3://{BUCKET}/swap/{SHARD}" or SHARD in e.message


def test_config_replaced_is_refused(world: dict[str, Any]) -> None:
    other = (world["dir"] / "b.sealed" / "config.json.tseal").read_bytes()
    refused(variant(world, "config", {"config.json.tseal": other}), world["pub"], "not the signed file")
    # Another model's manifest, signed by the same key, is refused too.
    man = (world["dir"] / "b.sealed" / "tensorseal-manifest.json.tseal").read_bytes()
    refused(variant(world, "manifest", {"tensorseal-manifest.json.tseal": man}), world["pub"], "not the signed file")


def test_added_and_missing_objects_are_refused(world: dict[str, Any]) -> None:
    added = variant(world, "added", {"evil.py.tseal": b"x" * 100})
    refused(added, world["pub"], "not in the signed model")
    refused(variant(world, "missing", {"config.json.tseal": None}), world["pub"], "signed but missing")


def test_oversized_signature_is_refused_before_download(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    sig = (world["dir"] / "a.sealed" / "model.sig").read_bytes()
    monkeypatch.setattr(provenance, "_MAX_SIGNATURE_BYTES", len(sig) - 1)
    from tensorseal.remote import RangeSource

    def no_read(self: RangeSource, offset: int, n: int) -> bytes:
        raise AssertionError(f"fetched {n} bytes of {self.name}")

    monkeypatch.setattr(RangeSource, "read", no_read)
    refused(f"s3://{BUCKET}/a", world["pub"], "over 64 MiB")


def test_garbage_signature_is_refused(world: dict[str, Any]) -> None:
    refused(variant(world, "garbage", {"model.sig": b"\x00not json"}), world["pub"], "not a JSON signature bundle")
    doc = json.loads((world["dir"] / "a.sealed" / "model.sig").read_bytes())
    sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 1
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    refused(variant(world, "badsig", {"model.sig": json.dumps(doc).encode()}), world["pub"], "does not verify")


def test_signed_model_on_fsspec_store(world: dict[str, Any]) -> None:
    if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
        import fsspec
    else:
        fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    src = world["dir"] / "a.sealed"
    for p in sorted(src.rglob("*")):
        fs.pipe(f"/prov-test/{p.relative_to(src).as_posix()}", p.read_bytes())
    try:
        with open_model_dir("memory://prov-test", identities=IDS, require_signer=world["pub"]) as md:
            assert md.read_json("config.json") == {"model_type": "toy"}
        fs.pipe(f"/prov-test/{SHARD}", (world["dir"] / "b.sealed" / SHARD).read_bytes())
        refused("memory://prov-test", world["pub"], "not the signed file")
        fs.rm("/prov-test/model.sig")
        refused("memory://prov-test", world["pub"], "unsigned")
    finally:
        fs.rm("/prov-test", recursive=True)


def test_signed_model_over_plain_http(world: dict[str, Any]) -> None:
    """Plain HTTP cannot list: the signed files are checked by their headers; a swap is refused."""
    from range_server import range_server

    d = world["dir"]
    with range_server() as srv:
        for name in ("a", "s", "u"):
            src = d / ("u.sealed" if name == "u" else "a.sealed")
            for p in sorted(src.rglob("*")):
                srv.objects[f"/{name}/{p.relative_to(src).as_posix()}"] = p.read_bytes()
        srv.objects[f"/s/{SHARD}"] = (d / "b.sealed" / SHARD).read_bytes()
        srv.objects.update({k.replace("/a/", "/m/", 1): v for k, v in srv.objects.items() if k.startswith("/a/")})
        del srv.objects["/m/config.json.tseal"]
        with open_model_dir(f"{srv.url}/a/", identities=IDS, require_signer=world["pub"]) as md:
            assert np.array_equal(md.load_file("model.safetensors", framework="np")["w"], world["tensors"]["w"])
        refused(f"{srv.url}/s/", world["pub"], "not the signed file")
        refused(f"{srv.url}/u/", world["pub"], "unsigned")
        refused(f"{srv.url}/m/", world["pub"], "signed but missing")


def test_local_and_remote_share_the_verification(world: dict[str, Any]) -> None:
    local = verify_sealed_dir(world["dir"] / "a.sealed", world["pub"])
    assert verify_sealed_dir(f"s3://{BUCKET}/a", world["pub"]) == local
    with pytest.raises(TensorSealError):
        verify_sealed_dir(f"s3://{BUCKET}/a", world["other_pub"])


# -- one sealed file (``seal --sign``) in S3: load_file(URL, require_signer=) --------------


@pytest.fixture(scope="module")
def signed_file(world: dict[str, Any]) -> dict[str, Any]:
    from safetensors.numpy import save_file as save_plain

    from helpers import run_cli
    from test_hf_provenance import PUBLIC

    d = world["dir"]
    w = {"w": np.arange(600, dtype=np.float32).reshape(20, 30)}
    save_plain(w, str(d / "w.safetensors"))
    home = {"TENSORSEAL_HOME": str(d / "home")}
    run_cli(["seal", str(d / "w.safetensors"), "-r", PUBLIC, "--chunk-size", "16KiB", "--sign", str(d / "producer.pem")], home)
    run_cli(["seal", str(d / "w.safetensors"), "-o", str(d / "again.tseal"), "-r", PUBLIC], home)
    c = world["client"]
    sealed, sig = (d / "w.safetensors.tseal").read_bytes(), (d / "w.safetensors.tseal.sig").read_bytes()
    c.put_object(Bucket=BUCKET, Key="f/w.tseal", Body=sealed)
    c.put_object(Bucket=BUCKET, Key="f/w.tseal.sig", Body=sig)
    c.put_object(Bucket=BUCKET, Key="f/unsigned.tseal", Body=sealed)
    c.put_object(Bucket=BUCKET, Key="f/swapped.tseal", Body=(d / "again.tseal").read_bytes())
    c.put_object(Bucket=BUCKET, Key="f/swapped.tseal.sig", Body=sig)
    return {"tensors": w}


def test_signed_file_in_s3_loads_with_its_signer(world: dict[str, Any], signed_file: dict[str, Any]) -> None:
    from tensorseal.safetensors import load_file

    t = load_file(f"s3://{BUCKET}/f/w.tseal", identities=IDS, require_signer=world["pub"])
    assert np.array_equal(t["w"], signed_file["tensors"]["w"])


@pytest.mark.parametrize(
    ("key", "signer", "match"),
    [("w.tseal", "other_pub", "another key"), ("unsigned.tseal", "pub", "unsigned"),
     ("swapped.tseal", "pub", "not the signed file")],
)  # fmt: skip
def test_signed_file_in_s3_refusals(world: dict[str, Any], signed_file: dict[str, Any], key: str, signer: str,
                                    match: str) -> None:  # fmt: skip
    from tensorseal.safetensors import load_file

    ident = counting()
    with pytest.raises(SignatureError, match=match):
        load_file(f"s3://{BUCKET}/f/{key}", identities=[ident], require_signer=world[signer])
    assert ident.unwraps == 0


def test_presigned_url_with_a_signer_is_refused_clearly(world: dict[str, Any]) -> None:
    from tensorseal.safetensors import load_file

    with pytest.raises(TensorSealError, match="presigned URL") as e:
        load_file("https://127.0.0.1:9/w.tseal?X-Amz-Signature=secret", identities=IDS, require_signer=world["pub"])
    assert e.value.code == "E_USAGE" and "secret" not in str(e.value)
