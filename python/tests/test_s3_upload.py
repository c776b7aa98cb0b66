"""Sealing straight to s3:// (tensorseal.remote.s3_upload) against moto's S3 server on loopback:
a multipart upload with bounded memory that appears only complete, aborted on any failure so no
object and no upload remains; the object opens here and in the TS CLI (from dist/)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import run_cli
from moto_s3 import boto3_client, moto_s3, s3_env
from tensorseal import TensorSealError, X25519Identity, generate_identity, open_bytes, parse_recipient, seal_file, seal_to_file
from tensorseal.keys.x25519 import format_identity_file
from tensorseal.reader import SealedFile
from tensorseal.remote.s3_upload import MIN_PART_BYTES, S3Upload

SECRET, PUBLIC = generate_identity()
PART = MIN_PART_BYTES
BIG = os.urandom(3 * PART + 12345)


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    with moto_s3() as endpoint:
        c = boto3_client(endpoint)
        c.create_bucket(Bucket="out")
        yield {"endpoint": endpoint, "client": c}


def opts(s3: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"client": s3["client"], "part_size": PART, **more}


def leftovers(s3: dict[str, Any], key: str) -> tuple[bool, list[str]]:
    """(whether the object exists, the keys of multipart uploads still open under it)."""
    c = s3["client"]
    listed = c.list_objects_v2(Bucket="out", Prefix=key).get("Contents", [])
    uploads = c.list_multipart_uploads(Bucket="out", Prefix=key).get("Uploads", [])
    return bool(listed), [u["Key"] for u in uploads]


def pieces(data: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_a_large_file_is_a_multipart_upload_that_opens_here_and_in_the_cli(s3: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "big.bin").write_bytes(BIG)
    seal_file(tmp_path / "big.bin", "s3://out/big.bin.tseal", [parse_recipient(PUBLIC)], target_options=opts(s3))
    obj = s3["client"].get_object(Bucket="out", Key="big.bin.tseal")
    assert obj["ContentType"] == "application/vnd.tensorseal"
    assert obj["ETag"].endswith('-4"'), obj["ETag"]  # four parts: 3 x 5 MiB and the rest
    blob = obj["Body"].read()
    assert open_bytes(blob, [X25519Identity(SECRET)]) == BIG
    s3_env(monkeypatch, s3["endpoint"])
    with SealedFile("s3://out/big.bin.tseal", [X25519Identity(SECRET)]) as f:
        assert f.read_all() == BIG
    (tmp_path / "big.tseal").write_bytes(blob)
    (tmp_path / "id.txt").write_text(format_identity_file(SECRET))
    run_cli(["open", str(tmp_path / "big.tseal"), "-o", str(tmp_path / "big.out"), "-i", str(tmp_path / "id.txt")], {"TENSORSEAL_HOME": str(tmp_path / "home")})
    assert (tmp_path / "big.out").read_bytes() == BIG
    assert leftovers(s3, "big.bin.tseal") == (True, [])


def test_memory_stays_bounded(s3: dict[str, Any]) -> None:
    data = os.urandom(6 * PART + 7)
    up = S3Upload("s3://out/bounded.bin", **opts(s3, queue=2))
    for p in pieces(data, 3 << 20):
        up.write(p)
        # The part being filled plus at most `queue` parts uploading, whatever the size.
        assert up.peak_buffered <= 3 * PART
    up.commit()
    assert up.parts_uploaded == 7
    assert s3["client"].get_object(Bucket="out", Key="bounded.bin")["Body"].read() == data


def test_a_small_file_is_one_put(s3: dict[str, Any]) -> None:
    seal_to_file([b"small"], "s3://out/small.tseal", [parse_recipient(PUBLIC)], plaintext_length=5, target_options=opts(s3))
    blob = s3["client"].get_object(Bucket="out", Key="small.tseal")["Body"].read()
    assert open_bytes(blob, [X25519Identity(SECRET)]) == b"small"


def test_an_existing_object_is_refused_unless_overwrite(s3: dict[str, Any]) -> None:
    s3["client"].put_object(Bucket="out", Key="taken.tseal", Body=b"keep me")
    with pytest.raises(TensorSealError) as e:
        seal_to_file([b"x"], "s3://out/taken.tseal", [parse_recipient(PUBLIC)], plaintext_length=1, target_options=opts(s3))
    assert e.value.code == "E_USAGE" and "exists" in e.value.message
    assert s3["client"].get_object(Bucket="out", Key="taken.tseal")["Body"].read() == b"keep me"
    seal_to_file([b"x"], "s3://out/taken.tseal", [parse_recipient(PUBLIC)], plaintext_length=1, target_options=opts(s3, overwrite=True))
    assert open_bytes(s3["client"].get_object(Bucket="out", Key="taken.tseal")["Body"].read(), [X25519Identity(SECRET)]) == b"x"


@pytest.mark.parametrize("failure", [OSError("the input broke"), KeyboardInterrupt()])
def test_a_failure_mid_upload_leaves_no_object_and_no_upload(s3: dict[str, Any], failure: BaseException) -> None:
    def broken() -> Iterator[bytes]:
        yield from pieces(BIG[: 2 * PART + 100])  # two parts uploaded by now
        raise failure

    up: list[S3Upload] = []
    real = S3Upload.__init__

    def spy(self: S3Upload, *a: Any, **k: Any) -> None:
        real(self, *a, **k)
        up.append(self)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(S3Upload, "__init__", spy)
        with pytest.raises(type(failure)):
            seal_to_file(broken(), "s3://out/broken.tseal", [parse_recipient(PUBLIC)], plaintext_length=None, target_options=opts(s3))
    assert up and up[0].parts_uploaded >= 2  # the multipart upload had really started
    assert leftovers(s3, "broken.tseal") == (False, [])


def test_a_declared_length_that_does_not_match_aborts(s3: dict[str, Any]) -> None:
    with pytest.raises(TensorSealError) as e:
        seal_to_file(pieces(BIG[: PART + 1]), "s3://out/short.tseal", [parse_recipient(PUBLIC)], plaintext_length=len(BIG), target_options=opts(s3))
    assert e.value.code == "E_USAGE"
    assert leftovers(s3, "short.tseal") == (False, [])


def test_a_missing_bucket_fails_with_e_io(s3: dict[str, Any]) -> None:
    with pytest.raises(TensorSealError) as e:
        seal_to_file(pieces(BIG), "s3://no-such-bucket/x.tseal", [parse_recipient(PUBLIC)], plaintext_length=None,
                     target_options=opts(s3, retries=0))  # fmt: skip
    assert e.value.code == "E_IO", e.value.message


def test_other_urls_and_bad_options_are_refused(s3: dict[str, Any], tmp_path: Path) -> None:
    for url, options in (("https://example.invalid/x.tseal", None), (str(tmp_path / "x.tseal"), {"overwrite": True}),
                         ("s3://out/x.tseal", {"client": s3["client"], "part_size": 1024})):  # fmt: skip
        with pytest.raises(TensorSealError) as e:
            seal_to_file([b"x"], url, [parse_recipient(PUBLIC)], plaintext_length=1, target_options=options)
        assert e.value.code == "E_USAGE", e.value.message
    assert not (tmp_path / "x.tseal").exists()


def test_sigterm_mid_upload_aborts_it(s3: dict[str, Any], tmp_path: Path) -> None:
    """A process killed by SIGTERM (default action) mid-upload aborts it before dying."""
    import signal
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import os, signal, boto3
        from tensorseal import parse_recipient, seal_to_file
        from tensorseal.remote.s3_upload import MIN_PART_BYTES
        client = boto3.client("s3", endpoint_url={s3["endpoint"]!r}, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        def pieces():
            for _ in range(3):
                yield os.urandom(MIN_PART_BYTES)
            os.kill(os.getpid(), signal.SIGTERM)
            yield b"never"
        seal_to_file(pieces(), "s3://out/killed.tseal", [parse_recipient({PUBLIC!r})], plaintext_length=None,
                     target_options={{"client": client, "part_size": MIN_PART_BYTES}})
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    p = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == -signal.SIGTERM, p.stderr
    assert leftovers(s3, "killed.tseal") == (False, [])
