"""A keystore held open by a long-running job follows keystore.json as other processes change
it: after ``keys rotate`` new files are sealed to the new primary, files rewrapped to it open,
and a version disabled elsewhere stops opening; an edited file fails closed. Checked against
the TS CLI, which is what rotates keys in production.

Needs Node.js and the built CLI (`npx tsc -p .` in the repository root).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import run_cli, ts_keystore
from tensorseal import Keystore, TensorSealError, open_file, seal_bytes

ROOT = bytes(range(7, 39))


@pytest.fixture()
def ts(tmp_path: Path) -> dict[str, Any]:
    return ts_keystore(tmp_path, ROOT)


def kek_versions(path: Path, ts: dict[str, Any]) -> list[int]:
    info = json.loads(run_cli(["inspect", str(path), "--json"], ts["env"]).stdout)
    # "kek NAME version N", as `inspect` describes a kek stanza
    return [int(s.split()[-1]) for s in info["stanzas"] if s.startswith("kek ")]


def test_a_training_loop_follows_a_rotation_made_by_another_process(ts) -> None:  # type: ignore[no-untyped-def]
    ks = Keystore.open(ts["home"], root_key_file=ts["root"])
    recipient = ks.recipient("default")
    checkpoints: list[Path] = []
    for step in range(6):
        if step == 2:
            # An operator rotates the key and moves every checkpoint so far to the new version,
            # while the job still holds a reserved wrap of version 1 (blocks of 1, then 2).
            run_cli(["keys", "rotate", "default"], ts["env"])
            run_cli(["rewrap", "--to-latest", *map(str, checkpoints)], ts["env"])
            # Read first: the rewrapped checkpoints name a version this keystore has not seen.
            for i, p in enumerate(checkpoints):
                assert open_file(p, [ks]) == f"weights at step {i}".encode()
        path = ts["dir"] / f"step{step}.tseal"
        path.write_bytes(seal_bytes(f"weights at step {step}".encode(), [recipient]))
        checkpoints.append(path)
        for i, p in enumerate(checkpoints):
            assert open_file(p, [ks]) == f"weights at step {i}".encode()
    ks.flush()
    # Sealed after the rotation: the new primary, not the lease the job held before it.
    assert [kek_versions(p, ts) for p in checkpoints] == [[2]] * 6


def test_a_version_disabled_elsewhere_stops_opening_at_once(ts) -> None:  # type: ignore[no-untyped-def]
    ks = Keystore.open(ts["home"], root_key_file=ts["root"])
    path = ts["dir"] / "m.tseal"
    path.write_bytes(seal_bytes(b"model", [ks.recipient("default")]))
    assert open_file(path, [ks]) == b"model"
    run_cli(["keys", "rotate", "default"], ts["env"])  # the primary cannot be disabled
    run_cli(["keys", "disable", "default", "1"], ts["env"])
    with pytest.raises(TensorSealError) as e:
        open_file(path, [ks])
    assert e.value.code == "E_KEY_STATE"


def test_refresh_and_an_edited_file_fail_closed(ts) -> None:  # type: ignore[no-untyped-def]
    ks = Keystore.open(ts["home"], root_key_file=ts["root"])
    path = ts["dir"] / "m.tseal"
    path.write_bytes(seal_bytes(b"model", [ks.recipient("default")]))
    run_cli(["keys", "rotate", "default"], ts["env"])
    ks.refresh()
    assert [k.primary_version for k in ks.list_keys()] == [2]
    store = ts["home"] / "keystore.json"
    doc = json.loads(store.read_text())
    doc["keys"][0]["min_decryption_version"] = 1 if doc["keys"][0]["min_decryption_version"] != 1 else 2
    store.write_text(json.dumps(doc))
    with pytest.raises(TensorSealError) as e:
        open_file(path, [ks])
    assert e.value.code == "E_KEYSTORE"
    with pytest.raises(TensorSealError) as e:
        seal_bytes(b"more", [ks.recipient("default")])
    assert e.value.code == "E_KEYSTORE"
