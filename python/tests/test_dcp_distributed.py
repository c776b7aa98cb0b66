"""torch.distributed.checkpoint with sealed storage on two ranks (gloo over loopback, one process
per rank started with torch.multiprocessing). Skipped when torch is missing, unless
TENSORSEAL_REQUIRE_ALL=1 (then a missing torch fails the run).

Each rank reports its outcome (None, or the exception it raised) through a queue, so an error
reaches this process as the object it was: a TensorSealError must survive pickling.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
    import torch  # a missing torch must fail the run
else:
    torch = pytest.importorskip("torch")

import torch.distributed as dist
import torch.multiprocessing as mp

import tensorseal.dcp as tsdcp
from tensorseal import KekIdentity, KekRecipient, SealedFile, TensorSealError

KEK = bytes(range(32))
WORLD = 2
TIMEOUT_S = 180


def rank_state(rank: int) -> dict[str, torch.Tensor]:
    """What rank ``rank`` saves: one tensor every rank holds (DCP writes it once) and its own."""
    torch.manual_seed(100)
    sd = {"shared.weight": torch.randn(64, 32)}
    torch.manual_seed(rank)
    sd[f"rank{rank}.weight"] = torch.randn(128, 48).to(torch.bfloat16)
    sd[f"rank{rank}.step"] = torch.tensor(1000 + rank, dtype=torch.int64)
    return sd


def all_states() -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for r in range(WORLD):
        out.update(rank_state(r))
    return out


def zeros_like(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: torch.zeros_like(v) for k, v in sd.items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def _rank_main(rank: int, port: int, op: str, ckpt: str, results: Any) -> None:
    """One rank: save its state, or load it and check it; the outcome goes to ``results``."""
    outcome: BaseException | None = None
    try:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD, timeout=timedelta(seconds=60)
        )
        try:
            if op == "save":
                tsdcp.save(rank_state(rank), ckpt, recipients=[KekRecipient("default", 1, KEK)])
            else:
                got = zeros_like(rank_state(rank))
                tsdcp.load(got, ckpt, identities=[KekIdentity.single("default", 1, KEK)])
                if not same(got, rank_state(rank)):
                    raise AssertionError(f"rank {rank} loaded other tensors")
        finally:
            dist.destroy_process_group()
    except BaseException as e:  # reported to the parent, which asserts on it
        outcome = e
    results.put((rank, outcome))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_ranks(op: str, ckpt: Path) -> dict[int, BaseException | None]:
    """Runs ``op`` on WORLD spawned ranks; each rank's outcome, as unpickled here."""
    ctx = mp.get_context("spawn")
    results = ctx.SimpleQueue()
    procs = mp.start_processes(
        _rank_main, args=(_free_port(), op, str(ckpt), results), nprocs=WORLD, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not procs.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail(f"{op} on {WORLD} ranks did not finish in {TIMEOUT_S} s")
    finally:
        for p in procs.processes:
            if p.is_alive():
                p.kill()
    out: dict[int, BaseException | None] = {}
    while not results.empty():
        rank, outcome = results.get()
        out[rank] = outcome
    assert sorted(out) == list(range(WORLD)), f"ranks that reported: {sorted(out)}"
    return out


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint saved by two ranks."""
    ckpt = tmp_path_factory.mktemp("dcp") / "ckpt"
    outcomes = run_ranks("save", ckpt)
    assert outcomes == {0: None, 1: None}, outcomes
    return ckpt


def test_two_ranks_save_then_load_on_two_ranks_and_on_one(saved: Path) -> None:
    ckpt = saved
    names = sorted(p.name for p in ckpt.iterdir())
    assert names == [".metadata", "__0_0.distcp", "__1_0.distcp"], names
    # Every file carries the coordinator's save id.
    ids = set()
    for name in names:
        with SealedFile(ckpt / name, [KekIdentity.single("default", 1, KEK)]) as sf:
            ids.add(sf.descriptor.context["dcp.save_id"])
    assert len(ids) == 1, ids
    loaded = run_ranks("load", ckpt)
    assert loaded == {0: None, 1: None}, loaded
    # Resharding: one process loads what two ranks saved.
    got = zeros_like(all_states())
    tsdcp.load(got, ckpt, identities=[KekIdentity.single("default", 1, KEK)])
    assert same(got, all_states())


def test_two_ranks_tampered_shard_error_reaches_the_parent_naming_the_file(saved: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    shutil.copytree(saved, ckpt)
    shard = ckpt / "__1_0.distcp"
    data = bytearray(shard.read_bytes())
    with SealedFile(shard, [KekIdentity.single("default", 1, KEK)]) as sf:
        at = sf.header.header_length + 100  # inside the first chunk's ciphertext
    data[at] ^= 0x01
    shard.write_bytes(bytes(data))
    outcomes = run_ranks("load", ckpt)
    for rank, err in outcomes.items():
        assert isinstance(err, TensorSealError), f"rank {rank}: {err!r}"
        assert err.code == "E_DECRYPT", f"rank {rank}: {err}"
        assert str(shard) in str(err), f"rank {rank}: {err}"
        assert err.file == str(shard)
