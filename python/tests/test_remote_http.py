"""Sealed files over HTTP with Range requests, against a loopback server that counts what it
sends: full loads equal the plaintext, one tensor fetches only its chunks, tampering and an
object replaced mid-read are refused, transient failures are retried, URLs in errors carry no
credentials. Files are sealed by the TS CLI (needs Node.js and dist/, like the
cross-language tests)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from range_server import RangeServer, range_server
from remote_helpers import IDS, data_range, open_overhead, sealed_model, tensor_bound
from tensorseal import SealedFile, TensorSealError
from tensorseal.remote import open_source
from tensorseal.remote.http import HttpSource
from tensorseal.safetensors import load_file, safe_open


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, np.ndarray], bytes, bytes]:
    return sealed_model(tmp_path_factory.mktemp("http"))


@pytest.fixture
def srv(model) -> RangeServer:  # type: ignore[no-untyped-def]
    with range_server() as s:
        s.objects["/m.tseal"] = model[2]
        yield s  # type: ignore[misc]


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and np.array_equal(a[k], b[k]), k


def test_full_load_equals_plaintext_and_fetches_the_file_once(model, srv: RangeServer) -> None:  # type: ignore[no-untyped-def]
    t, plain, sealed = model
    same(load_file(srv.url + "/m.tseal", identities=IDS), t)
    assert srv.sent == len(sealed)  # every byte once: no chunk fetched twice


def test_torch_load_file_from_url(model, srv: RangeServer) -> None:  # type: ignore[no-untyped-def]
    if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
        import torch  # noqa: F401
    else:
        pytest.importorskip("torch")
    import tensorseal.torch as tst

    got = tst.load_file(srv.url + "/m.tseal", identities=IDS)
    for k, v in model[0].items():
        assert np.array_equal(got[k].numpy(), v), k


def test_one_tensor_fetches_its_chunks_and_the_header_only(model, srv: RangeServer) -> None:  # type: ignore[no-untyped-def]
    t, plain, sealed = model
    name = "layer.5.weight"
    with safe_open(srv.url + "/m.tseal", identities=IDS) as f:
        opened = srv.sent
        assert opened <= open_overhead(sealed, plain)
        assert np.array_equal(f.get_tensor(name), t[name])
        one = srv.sent - opened
    assert one <= tensor_bound(t[name].nbytes)
    assert srv.sent <= t[name].nbytes + open_overhead(sealed, plain) + tensor_bound(0)
    assert srv.sent < len(sealed) // 3


def test_get_slice_fetches_only_the_rows_asked(model, srv: RangeServer) -> None:  # type: ignore[no-untyped-def]
    t, plain, _ = model
    with safe_open(srv.url + "/m.tseal", identities=IDS) as f:
        before = srv.sent
        rows = f.get_slice("embed.weight")[100:140]
        fetched = srv.sent - before
    assert np.array_equal(rows, t["embed.weight"][100:140])
    assert fetched <= tensor_bound(40 * 64 * 2)


def test_a_tampered_byte_is_rejected_and_the_error_hides_the_query(model, srv: RangeServer) -> None:  # type: ignore[no-untyped-def]
    t, plain, sealed = model
    lo, _ = data_range(plain, "layer.3.weight")
    bad = bytearray(sealed)
    bad[len(sealed) // 2] ^= 0x04
    srv.objects["/m.tseal"] = bytes(bad)
    url = srv.url.replace("http://", "http://user:hunter2@") + "/m.tseal?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA"
    with pytest.raises(TensorSealError) as e:
        load_file(url, identities=IDS)
    assert e.value.code == "E_DECRYPT"
    assert e.value.file == srv.url + "/m.tseal"
    for secret in ("hunter2", "user", "deadbeef", "AKIA", "Signature"):
        assert secret not in str(e.value)
    assert lo > 0


def test_an_object_replaced_mid_read_is_rejected(model, srv: RangeServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    t, plain, sealed = model
    # The same plaintext sealed again: same size, new salt; only the ETag tells them apart.
    from remote_helpers import cli_seal

    (tmp_path / "p.safetensors").write_bytes(plain)
    other = cli_seal(tmp_path / "p.safetensors", tmp_path / "other.tseal", tmp_path / "home")
    assert len(other) == len(sealed) and other != sealed
    seen = []

    def swap_after_open(path: str, rng: str | None) -> None:
        seen.append(rng)
        if len(seen) == 5:  # probe, header, payload prefix, final chunk, chunk 0: then swap
            srv.objects["/m.tseal"] = other

    srv.on_request = swap_after_open
    with pytest.raises(TensorSealError) as e:
        load_file(srv.url + "/m.tseal", identities=IDS, threads=1)
    assert e.value.code == "E_IO" and "changed while being read" in e.value.message
    assert e.value.file == srv.url + "/m.tseal"


def test_transient_failures_are_retried_then_given_up(model, srv: RangeServer) -> None:  # type: ignore[no-untyped-def]
    srv.fail_next = 2
    src = HttpSource(srv.url + "/m.tseal", backoff_s=0.01)
    with SealedFile(src, IDS) as sf:
        assert sf.read_all() == model[1]
    assert src.retries == 2
    srv.fail_next = 10
    with pytest.raises(TensorSealError) as e:
        open_source(srv.url + "/m.tseal", retries=1, backoff_s=0.01)
    assert e.value.code == "E_IO" and "after 2 attempts" in e.value.message


def test_missing_object_and_a_server_without_range_are_refused(srv: RangeServer) -> None:
    with pytest.raises(TensorSealError) as e:
        load_file(srv.url + "/nope.tseal?token=s3cret", identities=IDS)
    assert e.value.code == "E_IO" and "404" in e.value.message and "s3cret" not in str(e.value)
    srv.ignore_range = True
    with pytest.raises(TensorSealError) as e:
        load_file(srv.url + "/m.tseal", identities=IDS)
    assert e.value.code == "E_IO" and "Range" in e.value.message


def test_iter_chunks_from_a_url_streams_the_plaintext_in_windows(model, srv: RangeServer) -> None:  # type: ignore[no-untyped-def]
    with SealedFile(srv.url + "/m.tseal", IDS) as sf:
        chunks = list(sf.iter_chunks())
        requests = sf.source.requests  # type: ignore[union-attr]
    assert b"".join(chunks) == model[1]
    assert all(len(c) == sf.chunk_size for c in chunks[:-1])
    assert requests < len(chunks)  # whole windows, not one request per chunk


def test_credentials_are_not_forwarded_to_a_redirect_target(model, srv: RangeServer) -> None:  # type: ignore[no-untyped-def]
    with range_server() as cdn:
        cdn.objects["/blob"] = model[2]
        srv.redirects["/m.tseal"] = cdn.url + "/blob"
        src = HttpSource(srv.url + "/m.tseal", headers={"Authorization": "Bearer sekret"})
        with SealedFile(src, IDS) as sf:
            assert sf.read_all() == model[1]
        assert srv.auth_seen and all(a == "Bearer sekret" for a in srv.auth_seen)
        assert cdn.auth_seen and all(a is None for a in cdn.auth_seen)


def test_sealed_hf_dir_over_http(tmp_path: Path) -> None:
    from helpers import run_cli
    from remote_helpers import PUBLIC
    from tensorseal.hf import is_sealed_model_dir, open_model_dir
    from test_hf_dir import make_model

    t = make_model(tmp_path / "plain", 5)
    run_cli(["seal-dir", str(tmp_path / "plain"), "-o", str(tmp_path / "s"), "-r", PUBLIC], {"TENSORSEAL_HOME": str(tmp_path / "h")})
    with range_server() as srv:
        for p in (tmp_path / "s").rglob("*"):
            if p.is_file():
                srv.objects[f"/models/toy/{p.relative_to(tmp_path / 's').as_posix()}"] = p.read_bytes()
        url = srv.url + "/models/toy/"
        assert is_sealed_model_dir(url) and not is_sealed_model_dir(srv.url + "/models/other/")
        with open_model_dir(url, identities=IDS) as md:
            assert md.read_json("config.json")["seed"] == 5
            got = md.load_file("model-00001-of-00002.safetensors", framework="np")
        assert got and all(np.array_equal(v, t[k]) for k, v in got.items())
        del srv.objects["/models/toy/config.json.tseal"]  # no listing over HTTP: fails on opening
        with pytest.raises(TensorSealError) as e:
            open_model_dir(url, identities=IDS)
        assert e.value.code == "E_IO" and e.value.file == srv.url + "/models/toy/config.json.tseal"
