"""The safetensors-style API against the real safetensors library on the same plaintext."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load as st_load_bytes
from safetensors.numpy import save as st_save_bytes
from safetensors.numpy import save_file as st_save_file

from tensorseal import KekIdentity, KekRecipient, SealedFile, TensorSealError, open_file, seal_file
from tensorseal.safetensors import load, load_file, safe_open, save, save_file

KEK = os.urandom(32)
R, I = KekRecipient("default", 1, KEK), KekIdentity.single("default", 1, KEK)
C = 16384


def sample() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "emb": rng.standard_normal((300, 64)).astype(np.float32),
        "layer.0.w": rng.standard_normal((128, 128)).astype(np.float16),
        "layer.0.b": rng.standard_normal(128),
        "ids": np.arange(-50, 50, dtype=np.int64),
        "mask": rng.random(77) > 0.5,
        "u8": np.frombuffer(os.urandom(999), dtype=np.uint8),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.int32),
    }


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return set(a) == set(b) and all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and np.array_equal(a[k], b[k]) for k in a)


def test_save_file_matches_safetensors_library(tmp_path: Path) -> None:
    t = sample()
    save_file(t, tmp_path / "m.tseal", {"format": "np"}, recipients=[R], chunk_size=C)
    plaintext = open_file(tmp_path / "m.tseal", [I])
    assert same(st_load_bytes(plaintext), t)  # the real library reads what we sealed
    assert not any(p.suffix == ".safetensors" for p in tmp_path.iterdir())
    assert same(load_file(tmp_path / "m.tseal", identities=[I]), t)


def test_load_file_of_library_written_safetensors(tmp_path: Path) -> None:
    t = sample()
    st_save_file(t, str(tmp_path / "m.safetensors"), metadata={"a": "b"})
    seal_file(tmp_path / "m.safetensors", tmp_path / "m.tseal", [R], chunk_size=C)
    assert same(load_file(tmp_path / "m.tseal", identities=[I]), t)
    with safe_open(tmp_path / "m.tseal", framework="np", identities=I) as f:
        assert f.metadata() == {"a": "b"}
        assert f.keys() == sorted(t)
        for k in t:
            assert np.array_equal(f.get_tensor(k), t[k])


def test_bytes_api() -> None:
    t = sample()
    assert same(load(save(t, recipients=R), identities=[I]), t)
    assert same(st_load_bytes(st_save_bytes(t)), load(save(t, recipients=[R]), identities=I))


def test_get_tensor_is_lazy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    t = {f"t{i}": rng.standard_normal(50_000).astype(np.float32) for i in range(20)}  # 200 KB each
    save_file(t, tmp_path / "big.tseal", recipients=[R], chunk_size=C)
    with safe_open(tmp_path / "big.tseal", identities=[I]) as f:
        base = f.decrypted_bytes
        assert base < 3 * C  # header chunk(s) and the final chunk
        x = f.get_tensor("t7")
        assert np.array_equal(x, t["t7"])
        assert f.decrypted_bytes - base <= x.nbytes + 2 * C


def test_tampered_tensor_data_is_rejected(tmp_path: Path) -> None:
    save_file(sample(), tmp_path / "m.tseal", recipients=[R], chunk_size=C)
    data = bytearray((tmp_path / "m.tseal").read_bytes())
    data[len(data) // 2] ^= 4
    (tmp_path / "m.tseal").write_bytes(bytes(data))
    with pytest.raises(TensorSealError) as e:
        load_file(tmp_path / "m.tseal", identities=[I])
    assert e.value.code == "E_DECRYPT"


def test_malformed_safetensors_inside_is_rejected(tmp_path: Path) -> None:
    from tensorseal import seal_bytes

    for bad in [b"", b"\xff" * 8, (10).to_bytes(8, "little") + b'{"a":1}   ', (2).to_bytes(8, "little") + b"{}x"]:
        (tmp_path / "x.tseal").write_bytes(seal_bytes(bad, [R]))
        with pytest.raises(TensorSealError) as e:
            load_file(tmp_path / "x.tseal", identities=[I])
        assert e.value.code == "E_MALFORMED"


def test_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(TensorSealError) as e:
        save_file({"a": np.zeros(1)}, tmp_path / "a.tseal", recipients=[])
    assert e.value.code == "E_USAGE"
    save_file({"a": np.zeros(1)}, tmp_path / "a.tseal", recipients=[R])
    with safe_open(tmp_path / "a.tseal", identities=[I]) as f, pytest.raises(TensorSealError) as e:
        f.get_tensor("missing")
    assert e.value.code == "E_USAGE"
    with pytest.raises(TensorSealError) as e:
        load_file(tmp_path / "a.tseal", identities=[])
    assert e.value.code == "E_NO_IDENTITY"
    assert SealedFile(tmp_path / "a.tseal", [I]).descriptor.content_type == "application/vnd.safetensors"


def test_require_encrypted_refuses_a_public_file_in_place_of_weights(tmp_path: Path) -> None:
    # A public (integrity-only) file opens with no key; where weights are expected to be secret,
    # require_encrypted=True refuses it before any key is tried.
    t = sample()
    st_save_file(t, str(tmp_path / "m.safetensors"))
    seal_file(tmp_path / "m.safetensors", tmp_path / "pub.tseal", [], public=True, chunk_size=C)
    assert same(load_file(tmp_path / "pub.tseal", identities=[]), t)

    class Spy:
        id = "spy"
        tried = 0

        def unwrap(self, stanza):  # type: ignore[no-untyped-def]
            Spy.tried += 1
            return I.unwrap(stanza)

    spy = Spy()
    for loader in (load_file, torch_load_file()):
        if loader is None:
            continue
        with pytest.raises(TensorSealError) as e:
            loader(tmp_path / "pub.tseal", identities=[spy], require_encrypted=True)
        assert e.value.code == "E_NOT_ENCRYPTED"
    assert Spy.tried == 0
    seal_file(tmp_path / "m.safetensors", tmp_path / "enc.tseal", [R], chunk_size=C)
    assert same(load_file(tmp_path / "enc.tseal", identities=[I], require_encrypted=True), t)


def torch_load_file():  # type: ignore[no-untyped-def]
    """tensorseal.torch.load_file when torch is installed, else None."""
    try:
        from tensorseal.torch import load_file as pt_load_file
    except ImportError:
        return None
    return pt_load_file
