"""load_file on a thread pool: identical to the plaintext safetensors library for every
dtype, with one and with several workers; tampering still fails, naming the file, returns
nothing and leaves no plaintext in the buffer it decrypted into."""

from __future__ import annotations

import mmap
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file as st_load_file
from safetensors.numpy import save_file as st_save_file

import tensorseal.chunk_pool as chunk_pool
import tensorseal.data_buffer
import tensorseal.safetensors
from tensorseal import KekIdentity, KekRecipient, TensorSealError, seal_file
from tensorseal.format.chunked import ChunkCipher
from tensorseal.format.header import parse_header
from tensorseal.safetensors import SealedSafetensors, load, load_file

KEK = os.urandom(32)
R, I = KekRecipient("default", 1, KEK), KekIdentity.single("default", 1, KEK)
C = 16384
NP_TYPES = ["?", "u1", "i1", "<i2", "<u2", "<f2", "<i4", "<u4", "<f4", "<i8", "<u8", "<f8"]


def np_sample() -> dict[str, np.ndarray]:
    """Every NumPy dtype safetensors stores, sizes that straddle chunk boundaries."""
    rng = np.random.default_rng(7)
    out: dict[str, np.ndarray] = {}
    for k, dt in enumerate(NP_TYPES):
        n = 9000 + 1337 * k
        raw = rng.integers(0, 256, size=n * np.dtype(dt).itemsize, dtype=np.uint8)
        a = raw.view(dt) if dt != "?" else raw % 2 == 1
        out[f"t.{dt}"] = a.reshape(-1, 1) if k % 3 == 0 else a
    out["scalar"] = np.array(2.5, dtype=np.float32)
    out["empty"] = np.zeros((0, 3), dtype=np.int32)
    return out


def sealed_model(tmp_path: Path, tensors: dict[str, Any], saver: Any = st_save_file) -> tuple[Path, Path]:
    plain, sealed = tmp_path / "m.safetensors", tmp_path / "m.tseal"
    saver(tensors, str(plain))
    seal_file(plain, sealed, [R], chunk_size=C)
    return plain, sealed


@pytest.fixture
def small_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks of 3 chunks, reads of 2: a test-sized file makes many tasks and reads."""
    monkeypatch.setattr(chunk_pool, "TASK_BYTES", 3 * C)
    monkeypatch.setattr(chunk_pool, "READ_BYTES", 2 * (C + 16))


def same_np(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return set(a) == set(b) and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes() for k in a
    )


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("mapped", [False, True])
def test_numpy_load_matches_plaintext_library(
    tmp_path: Path, small_tasks: None, threads: int, mapped: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if mapped:  # the buffer of a large model: an anonymous mapping (ordinary pages)
        monkeypatch.setattr(tensorseal.data_buffer, "MMAP_AT", 1)
    plain, sealed = sealed_model(tmp_path, np_sample())
    want = st_load_file(str(plain))
    got = load_file(sealed, identities=[I], threads=threads)
    assert same_np(got, want)
    assert all(a.flags.writeable for a in got.values())  # as the library's arrays
    assert isinstance(owner(got["t.<f4"]), mmap.mmap) == mapped
    assert same_np(load(sealed.read_bytes(), identities=[I], threads=threads), want)  # no descriptor: locked reads


def owner(a: Any) -> Any:
    """What finally holds an array's memory."""
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a.obj if isinstance(a, memoryview) else a


def test_every_chunk_is_opened_once_by_load(tmp_path: Path, small_tasks: None) -> None:
    _, sealed = sealed_model(tmp_path, np_sample())
    f = SealedSafetensors(sealed, [I], threads=3)
    try:
        f.read_data(memoryview(np.empty(f.layout.data_length, np.uint8)))
        chunks = f.sealed.plaintext_length // C + 1
        assert f.chunks_decrypted == chunks  # chunk 0 once for header and data, the last once
        assert f.decrypted_bytes == f.sealed.plaintext_length
    finally:
        f.close()


def test_pool_runs_workers_concurrently(tmp_path: Path, small_tasks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each worker's first chunk waits for another worker's: this passes only if two threads
    # open chunks at the same time (a barrier that one thread alone cannot cross).
    barrier = threading.Barrier(2, timeout=20)
    seen: set[str] = set()
    real = ChunkCipher.open_into

    def open_into(self: ChunkCipher, index: int, sealed: Any, out: Any) -> None:
        name = threading.current_thread().name
        if name not in seen and len(seen) < 2:
            seen.add(name)
            barrier.wait()
        real(self, index, sealed, out)

    monkeypatch.setattr(ChunkCipher, "open_into", open_into)
    plain, sealed = sealed_model(tmp_path, np_sample())
    assert same_np(load_file(sealed, identities=[I], threads=2), st_load_file(str(plain)))
    assert len(seen) == 2 and all(n.startswith("tensorseal-open") for n in seen)


def tamper(path: Path, chunk: int, at: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[parse_header(bytes(data)).header_length + 56 + chunk * (C + 16) + at] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("threads", [1, 4])
def test_tampered_chunk_fails_naming_file_and_lowest_chunk(tmp_path: Path, small_tasks: None, threads: int) -> None:
    _, sealed = sealed_model(tmp_path, np_sample())
    for chunk in (9, 5):  # two bad chunks in different tasks: the lower one is reported
        tamper(sealed, chunk)
    with pytest.raises(TensorSealError) as e:
        load_file(sealed, identities=[I], threads=threads)
    assert e.value.code == "E_DECRYPT" and e.value.file == str(sealed)
    assert "chunk 5 " in str(e.value) and str(sealed) in str(e.value)


@pytest.fixture
def buffers(monkeypatch: pytest.MonkeyPatch) -> list[tensorseal.data_buffer.DataBuffer]:
    """Every DataBuffer the loaders make, kept here after the load has dropped it."""
    made: list[tensorseal.data_buffer.DataBuffer] = []

    class Kept(tensorseal.data_buffer.DataBuffer):
        def __init__(self, size: int) -> None:
            super().__init__(size)
            made.append(self)

    monkeypatch.setattr(tensorseal.safetensors, "DataBuffer", Kept)  # tensorseal.torch's: in the test
    return made


@pytest.mark.parametrize("threads", [1, 4])
@pytest.mark.parametrize("mapped", [False, True])
@pytest.mark.parametrize("framework", ["np", "pt"])
def test_failed_load_wipes_its_buffer(
    tmp_path: Path, small_tasks: None, buffers: list[Any], threads: int, mapped: bool, framework: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The chunks before and after the tampered one open and authenticate (plaintext in the
    # buffer), the tampered one is written into it before its tag is checked: after the
    # error, none of it may be readable, even through a reference the caller kept.
    if mapped:
        monkeypatch.setattr(tensorseal.data_buffer, "MMAP_AT", 1)
    loader = load_file
    if framework == "pt":
        _torch()
        import tensorseal.torch as tst

        monkeypatch.setattr(tst, "DataBuffer", tensorseal.safetensors.DataBuffer)
        loader = tst.load_file
    _, sealed = sealed_model(tmp_path, np_sample())
    assert loader(sealed, identities=[I], threads=threads)  # intact: loads
    assert buffers[-1].array.any() and buffers[-1].mapped == mapped
    tamper(sealed, 6)
    result = None
    with pytest.raises(TensorSealError) as e:
        result = loader(sealed, identities=[I], threads=threads)
    assert e.value.code == "E_DECRYPT" and result is None
    assert len(buffers) == 2 and buffers[1].mapped == mapped
    assert not buffers[1].array.any()  # every byte zero: opened chunks and the failed one


def test_failed_check_wipes_the_buffer(tmp_path: Path, buffers: list[Any]) -> None:
    # A caller's check of the plaintext (tensorseal.hf: the model file's digest) failing
    # leaves no plaintext behind either.
    _, sealed = sealed_model(tmp_path, np_sample())

    def bad_digest(data: memoryview) -> None:
        assert any(data)  # it saw the plaintext
        raise TensorSealError("E_SIGNATURE", "digest mismatch")

    f = SealedSafetensors(sealed, [I])
    try:
        with pytest.raises(TensorSealError) as e:
            tensorseal.safetensors._load_np(f, bad_digest)
    finally:
        f.close()
    assert e.value.code == "E_SIGNATURE" and not buffers[0].array.any()


def test_truncated_payload_is_refused(tmp_path: Path) -> None:
    _, sealed = sealed_model(tmp_path, np_sample())
    data = sealed.read_bytes()
    sealed.write_bytes(data[: len(data) - 2 * (C + 16)])  # two whole chunks gone: a length a writer makes
    with pytest.raises(TensorSealError) as e:
        load_file(sealed, identities=[I], threads=4)
    assert e.value.file == str(sealed) and e.value.code in ("E_TRUNCATED", "E_DECRYPT")


def test_bad_threads_is_a_usage_error(tmp_path: Path) -> None:
    _, sealed = sealed_model(tmp_path, {"a": np.zeros(3, np.float32)})
    for bad in (0, -1, 1.5, True):
        with pytest.raises(TensorSealError) as e:
            load_file(sealed, identities=[I], threads=bad)  # type: ignore[arg-type]
        assert e.value.code == "E_USAGE"


def test_default_threads_follow_cryptography_release() -> None:
    n = chunk_pool.default_threads()
    assert n == 1 or (chunk_pool.gil_free_aead() and 1 <= n <= chunk_pool.MAX_DEFAULT_THREADS)


def _torch() -> Any:
    if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
        import torch

        return torch
    return pytest.importorskip("torch")


@pytest.mark.parametrize("threads", [1, 4])
def test_torch_load_matches_plaintext_library(tmp_path: Path, small_tasks: None, threads: int) -> None:
    torch = _torch()
    import tensorseal.torch as tst
    from safetensors.torch import load_file as st_torch_load
    from safetensors.torch import save_file as st_torch_save

    g = torch.Generator().manual_seed(3)
    t: dict[str, Any] = {}
    for k, (name, dt) in enumerate(sorted(tst._DTYPES.items())):
        raw = torch.randint(0, 256, ((5000 + 997 * k) * torch.empty((), dtype=dt).element_size(),), dtype=torch.uint8, generator=g)
        t[name] = raw.view(dt).reshape(-1, 1) if k % 2 else raw.view(dt)
    t["scalar"] = torch.tensor(1.25)
    t["empty"] = torch.zeros(0, 2, dtype=torch.bfloat16)
    plain, sealed = sealed_model(tmp_path, t, st_torch_save)
    want = st_torch_load(str(plain))
    got = tst.load_file(sealed, identities=[I], threads=threads)
    assert set(got) == set(want)
    for k in want:  # bitwise: NaN payloads of random float bits compare unequal otherwise
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape, k
        assert got[k].reshape(-1).view(torch.uint8).equal(want[k].reshape(-1).view(torch.uint8)), k


def test_torch_tensors_have_storages_of_their_own(tmp_path: Path) -> None:
    # As safetensors.torch.load_file: one storage per tensor, exactly its bytes, so saving
    # one tensor writes that tensor and writing into one leaves the others as they were.
    torch = _torch()
    import io

    import tensorseal.torch as tst
    from safetensors.torch import load_file as st_torch_load
    from safetensors.torch import save_file as st_torch_save

    t = {"small": torch.arange(10, dtype=torch.float32), "big": torch.ones(3000, 100), "ids": torch.arange(7)}
    plain, sealed = sealed_model(tmp_path, t, st_torch_save)
    want, got = st_torch_load(str(plain)), tst.load_file(sealed, identities=[I], threads=2)
    for k, v in got.items():
        assert v.untyped_storage().nbytes() == v.numel() * v.element_size() == want[k].untyped_storage().nbytes()
        assert v.storage_offset() == 0 and v.equal(want[k])
    saved = io.BytesIO()
    torch.save(got["small"], saved)
    assert len(saved.getvalue()) < 4096  # not the 1.2 MB of the whole data section
    got["small"].fill_(-1)
    assert got["big"].equal(torch.ones(3000, 100)) and got["ids"].equal(torch.arange(7))
    st_torch_save(got, str(tmp_path / "again.safetensors"))  # the library accepts them as its own


def test_interrupt_waits_for_the_workers(tmp_path: Path, small_tasks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ctrl-C while the caller waits on the pool: the workers stop at their next read and have
    # all finished when KeyboardInterrupt reaches the caller (no thread writes afterwards).
    import signal
    import time

    real = ChunkCipher.open_into
    calls: list[int] = []

    def open_into(self: ChunkCipher, index: int, sealed: Any, out: Any) -> None:
        calls.append(index)
        if len(calls) == 1:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # the caller, in join
        time.sleep(0.05)
        real(self, index, sealed, out)

    monkeypatch.setattr(ChunkCipher, "open_into", open_into)
    _, sealed = sealed_model(tmp_path, np_sample())
    with pytest.raises(KeyboardInterrupt):
        load_file(sealed, identities=[I], threads=2)
    assert not [t for t in threading.enumerate() if t.name.startswith("tensorseal-open")]
    done = len(calls)
    time.sleep(0.3)
    assert len(calls) == done  # nothing opened after the call returned
    assert done < sealed.stat().st_size // C  # stopped early, not after every chunk
