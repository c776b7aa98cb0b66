"""PyTorch integration. Skipped when torch is missing, unless TENSORSEAL_REQUIRE_ALL=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
    import torch  # a missing torch must fail the run
else:
    torch = pytest.importorskip("torch")

import tensorseal.torch as tst
from tensorseal import KekIdentity, KekRecipient, TensorSealError, open_file
from tensorseal.safetensors import safe_open

KEK = os.urandom(32)
R, I = KekRecipient("default", 1, KEK), KekIdentity.single("default", 1, KEK)


def sample() -> dict[str, "torch.Tensor"]:
    g = torch.Generator().manual_seed(0)
    return {
        "w": torch.randn(64, 33, generator=g),
        "bf": torch.randn(17, 5, generator=g).to(torch.bfloat16),
        "h": torch.randn(9, generator=g).to(torch.float16),
        "i": torch.arange(10, dtype=torch.int64),
        "b": torch.tensor([True, False, True]),
        "s": torch.tensor(2.0),
        "t": torch.randn(8, 8, generator=g).t(),  # non-contiguous
        "e": torch.zeros(0, 3),
    }


def same(a: dict, b: dict) -> bool:  # type: ignore[type-arg]
    return set(a) == set(b) and all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


def test_safetensors_round_trip_and_library_compat(tmp_path: Path) -> None:
    from safetensors.torch import load as st_load

    t = sample()
    tst.save_file(t, tmp_path / "m.tseal", {"k": "v"}, recipients=[R], chunk_size=16384)
    assert same(tst.load_file(tmp_path / "m.tseal", identities=[I]), t)
    assert same(st_load(open_file(tmp_path / "m.tseal", [I])), {k: v.contiguous() for k, v in t.items()})
    with safe_open(tmp_path / "m.tseal", framework="pt", identities=[I]) as f:
        assert f.metadata() == {"k": "v"}
        assert torch.equal(f.get_tensor("bf"), t["bf"])


def test_outputs_to_dev_null_and_a_symlinked_path(tmp_path: Path) -> None:
    # The same output rules as every writer: a device is written in place, a link replaced.
    tst.save_file(sample(), "/dev/null", recipients=[R])
    tst.save({"m": sample()}, "/dev/null", recipients=[R])
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    (tmp_path / "real").write_bytes(b"keep")
    (tmp_path / "ckpt.tseal").symlink_to(tmp_path / "real")
    tst.save({"step": 1}, tmp_path / "ckpt.tseal", recipients=[R])
    assert (tmp_path / "real").read_bytes() == b"keep" and not (tmp_path / "ckpt.tseal").is_symlink()
    assert tst.load(tmp_path / "ckpt.tseal", identities=[I]) == {"step": 1}


def test_torch_save_load(tmp_path: Path) -> None:
    obj = {"step": 3, "model": sample(), "opt": {"lr": 0.1}}
    tst.save(obj, tmp_path / "ckpt.tseal", recipients=[R])
    got = tst.load(tmp_path / "ckpt.tseal", identities=[I])
    assert got["step"] == 3 and got["opt"] == {"lr": 0.1} and same(got["model"], obj["model"])
    assert not any(p.suffix in (".pt", ".pth") for p in tmp_path.iterdir())


def test_torch_load_rejects_tampering(tmp_path: Path) -> None:
    tst.save({"w": torch.ones(100_000)}, tmp_path / "c.tseal", recipients=[R])
    data = bytearray((tmp_path / "c.tseal").read_bytes())
    data[-100] ^= 1
    (tmp_path / "c.tseal").write_bytes(bytes(data))
    with pytest.raises(TensorSealError) as e:
        tst.load(tmp_path / "c.tseal", identities=[I])
    assert e.value.code == "E_DECRYPT"
