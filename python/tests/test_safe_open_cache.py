"""safe_open: how many chunks a full read and a slice read open (the per-handle cache of
authenticated chunks), get_slice against the safetensors library, and tampering with and
without the cache."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import safe_open as st_safe_open
from safetensors.numpy import save_file as st_save_file

from tensorseal import KekIdentity, KekRecipient, TensorSealError, seal_file
from tensorseal.chunk_cache import ChunkCache
from tensorseal.format.header import parse_header
from tensorseal.safetensors import safe_open

KEK = os.urandom(32)
R, I = KekRecipient("default", 1, KEK), KekIdentity.single("default", 1, KEK)
C = 16384


def model() -> dict[str, np.ndarray]:
    """Tensors that end mid-chunk, several small ones sharing a chunk, one big 2-D one."""
    rng = np.random.default_rng(5)
    t = {f"w{i:02d}": rng.standard_normal(1000 + 2777 * i).astype(np.float32) for i in range(12)}
    t.update({f"tiny{i}": rng.standard_normal(7 + i).astype(np.float32) for i in range(5)})
    t["big"] = rng.standard_normal((600, 100)).astype(np.float32)  # 240 KB: ~15 chunks
    t["zero"] = np.zeros((0, 5), np.float32)
    return t


def sealed(tmp_path: Path, tensors: dict[str, np.ndarray], chunk_size: int = C) -> tuple[Path, Path]:
    plain, out = tmp_path / "m.safetensors", tmp_path / "m.tseal"
    st_save_file(tensors, str(plain))
    seal_file(plain, out, [R], chunk_size=chunk_size)
    return plain, out


def chunks_of(lo: int, hi: int, c: int = C) -> set[int]:
    """Chunk indices covering plaintext bytes [lo, hi)."""
    return set(range(lo // c, (hi - 1) // c + 1)) if hi > lo else set()


def layout(plain: Path) -> tuple[int, dict[str, tuple[int, int]], int]:
    """(data offset, name -> plaintext byte range, plaintext length) from the plaintext file."""
    data = plain.read_bytes()
    n = int.from_bytes(data[:8], "little")
    import json

    head = json.loads(data[8 : 8 + n])
    head.pop("__metadata__", None)
    at = 8 + n
    return at, {k: (at + v["data_offsets"][0], at + v["data_offsets"][1]) for k, v in head.items()}, len(data)


def test_full_read_opens_each_chunk_once_in_any_order(tmp_path: Path) -> None:
    plain, path = sealed(tmp_path, model())
    data_at, ranges, total = layout(plain)
    every = total // C + 1
    opening = chunks_of(0, data_at) | {every - 1}
    for order in ("offset", "reverse", "sorted"):
        with safe_open(path, identities=[I]) as f:
            assert f.chunks_decrypted == len(opening)  # chunk 0 once, though read twice
            names = f.offset_keys()
            names = names[::-1] if order == "reverse" else sorted(names) if order == "sorted" else names
            for n in names:
                f.get_tensor(n)
            assert f.chunks_decrypted == every, order
            assert f.decrypted_bytes == total, order


def test_without_cache_shared_chunks_are_opened_per_read(tmp_path: Path) -> None:
    plain, path = sealed(tmp_path, model())
    data_at, ranges, total = layout(plain)
    last = total // C
    # Every read opens the chunks it covers, except the final chunk (kept since opening).
    expected = 1 + len(chunks_of(0, 8) - {last}) + len(chunks_of(8, data_at) - {last})
    expected += sum(len(chunks_of(lo, hi) - {last}) for lo, hi in ranges.values())
    with safe_open(path, identities=[I], cache_bytes=0) as f:
        for n in f.offset_keys():
            f.get_tensor(n)
        assert f.chunks_decrypted == expected > total // C + 1


def test_cache_stays_within_its_bound(tmp_path: Path) -> None:
    _, path = sealed(tmp_path, model())
    with safe_open(path, identities=[I], cache_bytes=3 * C) as f:
        for n in f.keys()[::-1]:
            f.get_tensor(n)
        assert 0 < f._file.sealed.cache.held_bytes <= 3 * C
    c = ChunkCache(2 * C)
    for i in range(4):
        c.put(i, bytes(C))
    assert c.get(0) is None and c.get(1) is None and c.get(3) is not None and c.held_bytes == 2 * C
    c.put(9, bytes(3 * C))  # larger than the bound: not kept
    assert c.get(9) is None
    with pytest.raises(TensorSealError):
        ChunkCache(-1)


def test_default_chunk_shard_decrypts_its_size_once(tmp_path: Path) -> None:
    # The review's case: 16 tensors in a 1.34 MB shard with 1 MiB chunks decrypted 19 MB.
    rng = np.random.default_rng(2)
    t = {f"layer.{i}": rng.standard_normal(21_000).astype(np.float32) for i in range(16)}
    _, path = sealed(tmp_path, t, chunk_size=1 << 20)
    with safe_open(path, identities=[I]) as f:
        for n in f.keys():
            assert np.array_equal(f.get_tensor(n), t[n])
        assert f.decrypted_bytes == path.stat().st_size - parse_header(path.read_bytes()).header_length - 56 - 2 * 16
        assert f.chunks_decrypted == 2


def test_slice_opens_only_the_chunks_of_its_rows(tmp_path: Path) -> None:
    plain, path = sealed(tmp_path, model())
    data_at, ranges, total = layout(plain)
    lo, _ = ranges["big"]
    row = 100 * 4
    with safe_open(path, identities=[I]) as f:
        before = f.chunks_decrypted
        part = f.get_slice("big")[200:260]
        assert np.array_equal(part, model()["big"][200:260])
        want = chunks_of(lo + 200 * row, lo + 260 * row)
        assert f.chunks_decrypted - before == len(want) == 3  # 24 KB of rows across 3 chunks
        before = f.chunks_decrypted
        f.get_slice("big")[5]
        assert f.chunks_decrypted - before == len(chunks_of(lo + 5 * row, lo + 6 * row) - chunks_of(0, data_at))
        before = f.chunks_decrypted
        f.get_slice("big")[7:7]
        assert f.chunks_decrypted == before  # nothing selected, nothing decrypted


KEYS: list[Any] = [
    slice(1, 3), (slice(1, 3),), 2, -1, (slice(None), 1), (slice(0, 40, 3),), ..., (1, slice(0, 2)),
    slice(5, 2), (..., 1), (slice(2, 9, 2), slice(1, None), 0), (), slice(None), np.int64(3),
]  # fmt: skip


@pytest.mark.parametrize("framework", ["np", "pt"])
def test_get_slice_matches_the_safetensors_library(tmp_path: Path, framework: str) -> None:
    if framework == "pt":
        if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
            import torch
        else:
            torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    t = {
        "a": rng.standard_normal((40, 7, 3)).astype(np.float32),
        "h": rng.standard_normal((3000, 5)).astype(np.float16),
        "v": np.arange(-100, 9000, dtype=np.int64),
        "b": rng.random((50, 2)) > 0.5,
    }
    plain, path = sealed(tmp_path, t)
    with st_safe_open(str(plain), framework=framework) as ref, safe_open(path, framework=framework, identities=I) as f:
        for name in t:
            want_slice, got_slice = ref.get_slice(name), f.get_slice(name)
            assert got_slice.get_shape() == want_slice.get_shape() and got_slice.get_dtype() == want_slice.get_dtype()
            assert tuple(got_slice.shape) == tuple(t[name].shape)
            for key in KEYS:
                try:
                    truth = np.asarray(t[name][key])  # NumPy indexing of the original
                except IndexError:
                    with pytest.raises(TensorSealError) as e:
                        got_slice[key]
                    assert e.value.code == "E_USAGE"
                    continue
                got = got_slice[key]
                try:
                    lib = want_slice[key]
                except Exception:  # noqa: BLE001 - the library refuses an empty range (np: SystemError)
                    lib = None
                if framework == "np":
                    assert got.dtype == truth.dtype and got.shape == truth.shape and np.array_equal(got, truth), (name, key)
                    assert got.flags.c_contiguous
                    assert lib is None or (lib.shape == got.shape and np.array_equal(lib, got)), (name, key)
                else:
                    assert tuple(got.shape) == truth.shape and torch.equal(got, torch.from_numpy(truth.copy())), (name, key)
                    assert got.is_contiguous()
                    assert lib is None or (lib.dtype == got.dtype and torch.equal(lib, got)), (name, key)


def test_bad_slices_are_usage_errors(tmp_path: Path) -> None:
    _, path = sealed(tmp_path, {"m": np.zeros((4, 3), np.float32), "s": np.array(1.0, np.float32)})
    with safe_open(path, identities=[I]) as f:
        for name, key in [("m", slice(None, None, -1)), ("m", (0, 0, 0)), ("m", 4), ("m", -5), ("m", [0, 1]),
                          ("m", None), ("s", 0), ("s", slice(None))]:  # fmt: skip
            with pytest.raises(TensorSealError) as e:
                f.get_slice(name)[key]
            assert e.value.code == "E_USAGE" and e.value.file == str(path), (name, key)
        assert f.get_slice("s")[...] == 1.0 and f.get_slice("s")[()].shape == ()
        with pytest.raises(TensorSealError) as e:
            f.get_slice("missing")
        assert e.value.code == "E_USAGE"


def tamper(path: Path, chunk: int, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[parse_header(bytes(data)).header_length + 56 + chunk * (C + 16) + at] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("cache_bytes", [0, 1 << 20])
def test_tampered_shared_chunk_fails_every_time_naming_the_file(tmp_path: Path, cache_bytes: int) -> None:
    plain, path = sealed(tmp_path, model())
    data_at, ranges, total = layout(plain)
    # A chunk two tensors share: where w05 ends and w06 begins.
    lo5, hi5 = ranges["w05"]
    shared = (hi5 - 1) // C
    assert shared in chunks_of(*ranges["w06"])
    tamper(path, shared, 3)
    with safe_open(path, identities=[I], cache_bytes=cache_bytes) as f:
        for name in ("w05", "w06", "w05"):
            before = f.chunks_decrypted
            with pytest.raises(TensorSealError) as e:
                f.get_tensor(name)
            assert e.value.code == "E_DECRYPT" and e.value.file == str(path), name
            assert f.chunks_decrypted > before  # opened again, never served from the cache
        with pytest.raises(TensorSealError) as e:
            f.get_slice("w06")[:1]
        assert e.value.code == "E_DECRYPT" and e.value.file == str(path)
        far = next(n for n, (lo, hi) in ranges.items() if n.startswith("w") and shared not in chunks_of(lo, hi) and hi > lo)
        assert np.array_equal(f.get_tensor(far), model()[far])  # the rest of the file still opens
        assert shared not in f._file.sealed.cache._chunks


def test_tampered_chunk_inside_a_tensor_fails_naming_the_file(tmp_path: Path) -> None:
    plain, path = sealed(tmp_path, model())
    _, ranges, _ = layout(plain)
    lo, hi = ranges["big"]
    inside = lo // C + 3
    tamper(path, inside, 500)
    with safe_open(path, identities=[I], threads=2) as f:
        for _ in range(2):
            with pytest.raises(TensorSealError) as e:
                f.get_tensor("big")
            assert e.value.code == "E_DECRYPT" and e.value.file == str(path)
        assert f.get_slice("big")[:10].shape == (10, 100)  # rows before the bad chunk
