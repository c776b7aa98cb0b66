"""The object-storage examples of docs/INTEGRATIONS.md and python/README.md run as written,
against moto's S3 server on loopback, with objects sealed by the TS CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
    import torch
else:
    torch = pytest.importorskip("torch")

from helpers import REPO, run_cli
from moto_s3 import boto3_client, moto_s3, s3_env
from remote_helpers import PUBLIC, SECRET, make_shards, sealed_model, upload_dir
from tensorseal.keys.x25519 import format_identity_file
from test_hf_dir import make_model


def doc_block(doc: str, heading: str) -> str:
    import re

    text = (REPO / doc).read_text(encoding="utf-8")
    m = re.search(rf"^#+ {re.escape(heading)}\n.*?^```python\n(.*?)^```$", text, flags=re.S | re.M)
    assert m is not None, f"{doc} has no python block under {heading!r} any more"
    return m.group(1)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("docs")
    t, _, sealed = sealed_model(d)
    hf = make_model(d / "tiny", 4)
    run_cli(["seal-dir", str(d / "tiny"), "-o", str(d / "tiny.sealed"), "-r", PUBLIC], {"TENSORSEAL_HOME": str(d / "home")})
    samples, shards = make_shards(d)
    with moto_s3() as endpoint:
        c = boto3_client(endpoint)
        for b in ("models", "datasets"):
            c.create_bucket(Bucket=b)
        c.put_object(Bucket="models", Key="model.safetensors.tseal", Body=sealed)
        upload_dir(c, d / "tiny.sealed", "tiny.sealed", bucket="models")
        for p in shards:
            c.put_object(Bucket="datasets", Key=f"train/{p.name}", Body=p.read_bytes())
        yield {"endpoint": endpoint, "tensors": t, "hf": hf, "samples": samples}


@pytest.mark.parametrize(("doc", "heading"), [("docs/INTEGRATIONS.md", "Object storage from Python"),
                                              ("python/README.md", "Object storage: S3, HTTP(S), fsspec")])  # fmt: skip
def test_object_storage_example_runs(stores: Any, doc: str, heading: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s3_env(monkeypatch, stores["endpoint"])
    (tmp_path / "partner.id").write_text(format_identity_file(SECRET))
    monkeypatch.chdir(tmp_path)
    ns: dict[str, Any] = {}
    exec(compile(doc_block(doc, heading), doc, "exec"), ns)  # noqa: S102 - the docs' own example
    assert all(np.array_equal(ns["tensors"][k], v) for k, v in stores["tensors"].items())
    assert torch.equal(ns["rows"], torch.from_numpy(stores["tensors"]["embed.weight"][:64]))
    assert sorted(ns["state"]) == sorted(stores["hf"])
    assert all(np.array_equal(ns["state"][k].numpy(), v) for k, v in stores["hf"].items())
    assert sorted(ns["samples"]) == sorted(stores["samples"])
