"""The TS CLI and this package open each other's files; the keystore is the CLI's own.

Needs Node.js and the built CLI (`npm run build` in the repository root); fails, not skips,
when it is missing, because this is the cross-language check CI relies on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli, ts_keystore
from tensorseal import Keystore, TensorSealError, X25519Recipient, open_file, read_identity_file, seal_bytes
from tensorseal.safetensors import load_file, save_file


@pytest.fixture(scope="module")
def ts_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return ts_keystore(tmp_path_factory.mktemp("ts"), os.urandom(32))


def test_python_opens_ts_sealed_file_with_ts_keystore(ts_home) -> None:  # type: ignore[no-untyped-def]
    d = ts_home["dir"]
    plain = d / "plain.bin"
    plain.write_bytes(os.urandom(2 * (1 << 20) + 99))
    run_cli(["seal", str(plain), "-o", str(d / "ts.tseal")], ts_home["env"])
    ks = Keystore.open(ts_home["home"], root_key_file=ts_home["root"])
    assert [k.name for k in ks.list_keys()] == ["default"]
    assert open_file(d / "ts.tseal", [ks]) == plain.read_bytes()


def test_ts_opens_python_sealed_file_for_kek_default(ts_home) -> None:  # type: ignore[no-untyped-def]
    d = ts_home["dir"]
    ks = Keystore.open(ts_home["home"], root_key_file=ts_home["root"])
    data = os.urandom(1 << 20)
    (d / "py.tseal").write_bytes(seal_bytes(data, [ks.recipient("default")], context={"model": "m"}))
    run_cli(["open", str(d / "py.tseal"), "-o", str(d / "py.out"), "--expect-context", "model=m"], ts_home["env"])
    assert (d / "py.out").read_bytes() == data


def test_ts_opens_python_sealed_safetensors_for_x25519(ts_home) -> None:  # type: ignore[no-untyped-def]
    d = ts_home["dir"]
    p = run_cli(["keygen", "-o", str(d / "id.txt")], ts_home["env"])
    recipient = next(w for w in (p.stdout + p.stderr).split() if w.startswith("tseal1"))
    tensors = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([1, 2], dtype=np.int64)}
    save_file(tensors, d / "st.tseal", {"k": "v"}, recipients=[X25519Recipient(recipient)])
    run_cli(["open", str(d / "st.tseal"), "-o", str(d / "st.safetensors"), "-i", str(d / "id.txt")], ts_home["env"])
    from safetensors.numpy import load_file as st_load

    plain = st_load(str(d / "st.safetensors"))
    assert set(plain) == {"a", "b"} and all(np.array_equal(plain[k], tensors[k]) for k in tensors)
    # and back: Python opens it with the identity file the CLI wrote
    got = load_file(d / "st.tseal", identities=read_identity_file(d / "id.txt"))
    assert all(np.array_equal(got[k], tensors[k]) for k in tensors)
    info = json.loads(run_cli(["inspect", str(d / "st.tseal"), "--json"], ts_home["env"]).stdout)
    assert info["contentType"] == "application/vnd.safetensors"


def test_keystore_refuses_wrong_root_key_and_edits(ts_home) -> None:  # type: ignore[no-untyped-def]
    d = ts_home["dir"]
    wrong = d / "wrong.hex"
    wrong.write_text(os.urandom(32).hex())
    with pytest.raises(TensorSealError) as e:
        Keystore.open(ts_home["home"], root_key_file=wrong)
    assert e.value.code == "E_KEYSTORE"
    edited = d / "edited"
    edited.mkdir()
    doc = json.loads((ts_home["home"] / "keystore.json").read_text())
    doc["keys"][0]["created"] = "2020-01-01T00:00:00.000Z"
    (edited / "keystore.json").write_text(json.dumps(doc))
    with pytest.raises(TensorSealError) as e:
        Keystore.open(edited, root_key_file=ts_home["root"])
    assert e.value.code == "E_KEYSTORE" and "modified" in str(e.value)
    # Re-indenting is not an edit: the MAC covers the canonical form.
    (edited / "keystore.json").write_text(json.dumps(json.loads((ts_home["home"] / "keystore.json").read_text())))
    Keystore.open(edited, root_key_file=ts_home["root"])
    with pytest.raises(TensorSealError) as e:
        Keystore.open(d / "nowhere", root_key_file=ts_home["root"])
    assert e.value.code == "E_KEYSTORE"


def test_passphrase_keystore(tmp_path: Path) -> None:
    env = {"TENSORSEAL_HOME": str(tmp_path / "home"), "TENSORSEAL_KEYSTORE_PASSPHRASE": "keystore pass ✓"}
    run_cli(["init"], env)
    (tmp_path / "p").write_bytes(b"hello")
    run_cli(["seal", str(tmp_path / "p"), "-o", str(tmp_path / "p.tseal")], env)
    ks = Keystore.open(tmp_path / "home", passphrase="keystore pass ✓")
    assert open_file(tmp_path / "p.tseal", [ks]) == b"hello"
    with pytest.raises(TensorSealError) as e:
        Keystore.open(tmp_path / "home", passphrase="not-the-pass-9f3")
    assert e.value.code == "E_KEYSTORE" and "not-the-pass-9f3" not in str(e.value)
