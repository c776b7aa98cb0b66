"""SealedWebDataset: WebDataset-style tar shards sealed by the TS CLI, streamed from S3 (moto
on loopback) and from a Range HTTP server into a PyTorch DataLoader with 2 workers: every
sample exactly once, equal to the plaintext; a tampered shard fails."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
    import torch  # a missing torch must fail the run
else:
    torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader

from moto_s3 import boto3_client, moto_s3, s3_env
from range_server import range_server
from remote_helpers import IDS, SHARDS, make_shards
from tensorseal import TensorSealError
from tensorseal.datasets import SealedWebDataset
from tensorseal.shards import iter_tar_samples, split_shards

BUCKET = "sealed-data"


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict[str, bytes]], list[Path]]:
    return make_shards(tmp_path_factory.mktemp("shards"))


def collect(ds: SealedWebDataset, workers: int = 2) -> list[dict[str, Any]]:
    loader = DataLoader(ds, batch_size=None, num_workers=workers)
    return list(loader)


def check_exactly_once(got: list[dict[str, Any]], samples: dict[str, dict[str, bytes]]) -> None:
    keys = [s["__key__"] for s in got]
    assert len(keys) == len(set(keys)) == len(samples)
    for s in got:
        assert s["bin"] == samples[s["__key__"]]["bin"] and s["cls"] == samples[s["__key__"]]["cls"]


def test_split_shards_partitions_every_epoch() -> None:
    names = [f"s{i}" for i in range(11)]
    for epoch in range(3):
        parts = [split_shards(names, worker=w, workers=2, rank=r, world=3, shuffle=True, seed=9, epoch=epoch)
                 for r in range(3) for w in range(2)]  # fmt: skip
        flat = [n for p in parts for n in p]
        assert sorted(flat) == sorted(names)


def test_two_workers_from_s3_yield_every_sample_once(shards, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    samples, sealed = shards
    with moto_s3() as endpoint:
        s3_env(monkeypatch, endpoint)
        c = boto3_client(endpoint)
        c.create_bucket(Bucket=BUCKET)
        for p in sealed:
            c.put_object(Bucket=BUCKET, Key=f"train/{p.name}", Body=p.read_bytes())
        c.put_object(Bucket=BUCKET, Key="train/README.txt", Body=b"not a shard")
        ds = SealedWebDataset(f"s3://{BUCKET}/train/", identities=IDS, shuffle=True, seed=3, window=32768)
        assert len(ds.shards) == SHARDS
        for epoch in (0, 1):
            ds.set_epoch(epoch)
            got = collect(ds)
            check_exactly_once(got, samples)
            assert {s["__url__"] for s in got} == set(ds.shards)
        bad = bytearray(sealed[2].read_bytes())
        bad[len(bad) // 2] ^= 1
        c.put_object(Bucket=BUCKET, Key="bad/shard.tar.tseal", Body=bytes(bad))
        with pytest.raises(TensorSealError) as e:
            list(iter_tar_samples(f"s3://{BUCKET}/bad/shard.tar.tseal", IDS))
        assert e.value.code == "E_DECRYPT" and e.value.file == f"s3://{BUCKET}/bad/shard.tar.tseal"


def test_two_workers_over_http_with_decode(shards) -> None:  # type: ignore[no-untyped-def]
    samples, sealed = shards
    with range_server() as srv:
        for p in sealed:
            srv.objects[f"/{p.name}"] = p.read_bytes()
        urls = [f"{srv.url}/{p.name}" for p in sealed]
        ds = SealedWebDataset(urls, identities=IDS, decode=_decode)
        got = collect(ds)
        assert srv.sent == sum(p.stat().st_size for p in sealed)  # each shard fetched once
    assert sorted(k for k, _ in got) == sorted(samples)
    assert all(label == int(samples[k]["cls"]) for k, label in got)


def _decode(sample: dict[str, Any]) -> tuple[str, int]:
    return sample["__key__"], int(sample["cls"])


def test_spawned_workers_get_keys_from_a_factory(shards, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import functools

    from remote_helpers import SECRET
    from tensorseal import read_identity_file
    from tensorseal.keys.x25519 import format_identity_file

    samples, sealed = shards
    (tmp_path / "partner.id").write_text(format_identity_file(SECRET))
    with range_server() as srv:
        for p in sealed:
            srv.objects[f"/{p.name}"] = p.read_bytes()
        urls = [f"{srv.url}/{p.name}" for p in sealed]
        with pytest.raises(TensorSealError) as e:
            list(DataLoader(SealedWebDataset(urls, identities=IDS), batch_size=None, num_workers=1,
                            multiprocessing_context="spawn"))  # fmt: skip
        assert e.value.code == "E_USAGE" and "functools.partial" in e.value.message
        ds = SealedWebDataset(urls, identities=functools.partial(read_identity_file, tmp_path / "partner.id"))
        got = list(DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context="spawn"))
    check_exactly_once(got, samples)
