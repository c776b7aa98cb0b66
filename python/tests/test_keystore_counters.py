"""Python writes the CLI's keystore as the TS keystore does (spec/KEYSTORE.md): each wrap is
counted durably before its stanza is released, in locked, atomic writes; reserved wraps are given
back; a live lock is respected and a dead one removed; versions due for destruction are purged
and the primary is rotated at the wrap limit. Checked against the TS CLI in both directions.

Needs Node.js and the built CLI (`npx tsc -p .` in the repository root).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import tensorseal.keys.keystore_file as keystore_file
from helpers import run_cli, ts_keystore
from tensorseal import Keystore, TensorSealError, open_bytes, open_file, seal_bytes
from tensorseal.keys.keystore_file import keystore_lock

ROOT = bytes(range(1, 33))


@pytest.fixture()
def ts(tmp_path: Path) -> dict[str, Any]:
    """A keystore created by the TS CLI (key ``default``, version 1), with a root key file."""
    return ts_keystore(tmp_path, ROOT)


def ts_key(ts: dict[str, Any], name: str = "default") -> dict[str, Any]:
    """``keys show NAME`` as the TS CLI reads the file."""
    return json.loads(run_cli(["keys", "show", name, "--json"], ts["env"]).stdout)


def ts_wraps(ts: dict[str, Any], name: str = "default") -> list[int]:
    return [v["wraps"] for v in ts_key(ts, name)["versions"]]


def py_open(ts: dict[str, Any], **kw: Any) -> Keystore:
    return Keystore.open(ts["home"], root_key_file=ts["root"], **kw)


def listing(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir())


def test_python_seal_counts_a_wrap_the_ts_cli_reads(ts) -> None:  # type: ignore[no-untyped-def]
    ks = py_open(ts)
    assert ts_wraps(ts) == [0]
    sealed = seal_bytes(b"one", [ks.recipient("default")])
    assert ts_wraps(ts) == [1]  # the first block is one wrap: exact without a flush
    (ts["dir"] / "py.tseal").write_bytes(sealed)
    run_cli(["open", str(ts["dir"] / "py.tseal"), "-o", str(ts["dir"] / "py.out")], ts["env"])
    assert (ts["dir"] / "py.out").read_bytes() == b"one"
    for _ in range(3):
        seal_bytes(b"more", [ks.recipient("default")])
    # Reserved before release: blocks of 2 then 4, never fewer than the wraps handed out.
    assert ts_wraps(ts) == [7]
    ks.flush()
    assert ts_wraps(ts) == [4]
    assert listing(ts["home"]) == ["keystore.json"]  # no lock, no temporary file left


def test_ts_seal_counts_a_wrap_python_reads(ts) -> None:  # type: ignore[no-untyped-def]
    (ts["dir"] / "p").write_bytes(b"hello")
    run_cli(["seal", str(ts["dir"] / "p"), "-o", str(ts["dir"] / "p.tseal")], ts["env"])
    ks = py_open(ts)
    assert ks.list_keys()[0].wraps == (1,)
    assert open_file(ts["dir"] / "p.tseal", [ks]) == b"hello"


def test_python_and_ts_writers_interleave_without_losing_counts(ts) -> None:  # type: ignore[no-untyped-def]
    ks = py_open(ts)
    seal_bytes(b"a", [ks.recipient()])
    seal_bytes(b"b", [ks.recipient()])  # reserves 2: on disk 3, one left in the lease
    (ts["dir"] / "p").write_bytes(b"ts")
    run_cli(["seal", str(ts["dir"] / "p"), "-o", str(ts["dir"] / "p.tseal")], ts["env"])
    assert ts_wraps(ts) == [4]
    ks.flush()  # gives back the one unused wrap, keeping the TS wrap
    assert ts_wraps(ts) == [3]


def test_a_process_that_never_flushes_over_counts_never_under_counts(ts) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys, os\n"
        "from tensorseal import Keystore, seal_bytes\n"
        "ks = Keystore.open(sys.argv[1], root_key_file=sys.argv[2])\n"
        "for _ in range(5): seal_bytes(b'x', [ks.recipient()])\n"
        "os._exit(0)  # as if killed: no flush\n"
    )
    subprocess.run([sys.executable, "-c", code, str(ts["home"]), str(ts["root"])], check=True, timeout=120)
    assert ts_wraps(ts) == [7]  # 1 + 2 + 4 reserved, 5 used
    assert listing(ts["home"]) == ["keystore.json"]


def test_a_live_lock_is_respected_and_a_dead_one_removed(ts) -> None:  # type: ignore[no-untyped-def]
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        lock = ts["home"] / "keystore.lock"
        lock.write_text(str(holder.pid))
        before = (ts["home"] / "keystore.json").read_bytes()
        ks = py_open(ts)
        with pytest.raises(TensorSealError) as e:
            seal_bytes(b"x", [ks.recipient()])
        assert e.value.code == "E_KEYSTORE" and "locked by another" in str(e.value)
        assert (ts["home"] / "keystore.json").read_bytes() == before
        assert listing(ts["home"]) == ["keystore.json", "keystore.lock"]
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its lock is stale and the next writer removes it.
    seal_bytes(b"x", [ks.recipient()])
    assert ts_wraps(ts) == [1]
    assert listing(ts["home"]) == ["keystore.json"]


def test_the_ts_cli_respects_a_lock_held_by_python(ts) -> None:  # type: ignore[no-untyped-def]
    before = (ts["home"] / "keystore.json").read_bytes()
    with keystore_lock(ts["home"]):
        p = run_cli(["keys", "rotate", "default"], ts["env"], check=False)
    assert p.returncode == 6 and "locked" in p.stderr, p.stderr
    assert (ts["home"] / "keystore.json").read_bytes() == before


def test_a_failed_write_leaves_the_file_and_the_object_unchanged(ts, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ks = py_open(ts)
    before = (ts["home"] / "keystore.json").read_bytes()

    def fail_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keystore_file.os, "replace", fail_replace)
    with pytest.raises(TensorSealError) as e:
        seal_bytes(b"x", [ks.recipient()])  # the stanza is never released
    assert e.value.code == "E_KEYSTORE" and "No space left" in str(e.value)
    assert (ts["home"] / "keystore.json").read_bytes() == before
    assert listing(ts["home"]) == ["keystore.json"]
    assert ks.list_keys()[0].wraps == (0,)
    monkeypatch.undo()
    seal_bytes(b"x", [ks.recipient()])
    assert ts_wraps(ts) == [1]


def test_the_wrap_limit_rotates_first_and_ts_opens_every_file(ts) -> None:  # type: ignore[no-untyped-def]
    ks = py_open(ts, wrap_limit=2)
    files = []
    for i in range(5):
        files.append(ts["dir"] / f"f{i}.tseal")
        files[-1].write_bytes(seal_bytes(bytes([i]) * 10, [ks.recipient()]))
    ks.flush()
    key = ts_key(ts)
    assert key["primaryVersion"] == 3
    assert [v["wraps"] for v in key["versions"]] == [2, 2, 1]
    for i, f in enumerate(files):
        run_cli(["open", str(f), "-o", str(f) + ".out"], ts["env"])
        assert Path(str(f) + ".out").read_bytes() == bytes([i]) * 10


def test_a_python_write_purges_versions_due_for_destruction(ts) -> None:  # type: ignore[no-untyped-def]
    run_cli(["keys", "rotate", "default"], ts["env"])
    (ts["dir"] / "p").write_bytes(b"old")
    run_cli(["seal", str(ts["dir"] / "p"), "-o", str(ts["dir"] / "old.tseal")], ts["env"])
    run_cli(["keys", "schedule-destroy", "default", "1", "--days", "1"], ts["env"])
    later = datetime.now(timezone.utc) + timedelta(days=2)
    ks = py_open(ts, now=lambda: later)
    seal_bytes(b"x", [ks.recipient()])
    v1 = ts_key(ts)["versions"][0]
    assert v1["state"] == "destroyed" and "destroyed" in v1
    doc = json.loads((ts["home"] / "keystore.json").read_text())
    assert "material" not in doc["keys"][0]["versions"][0]  # crypto-shredded
    assert ks.list_keys()[0].states == ("destroyed", "enabled")


def test_unlock_goes_past_a_refused_version_to_a_usable_stanza(ts) -> None:  # type: ignore[no-untyped-def]
    run_cli(["keys", "create", "b"], ts["env"])
    (ts["dir"] / "p").write_bytes(b"two keys")
    f = ts["dir"] / "p.tseal"
    run_cli(["seal", str(ts["dir"] / "p"), "-o", str(f), "-k", "default", "-k", "b"], ts["env"])
    run_cli(["keys", "rotate", "default"], ts["env"])
    run_cli(["keys", "disable", "default", "1"], ts["env"])
    assert open_file(f, [py_open(ts)]) == b"two keys"  # default v1 refused, b v1 opens
    run_cli(["keys", "rotate", "b"], ts["env"])
    run_cli(["keys", "disable", "b", "1"], ts["env"])
    with pytest.raises(TensorSealError) as e:
        open_file(f, [py_open(ts)])
    assert e.value.code == "E_KEY_STATE"
    assert "version 1 of key default is disabled" in str(e.value)
    assert "version 1 of key b is disabled" in str(e.value)
    p = run_cli(["open", str(f), "-o", str(ts["dir"] / "out")], ts["env"], check=False)
    assert p.returncode != 0 and "version 1 of key b is disabled" in p.stderr


def test_a_version_1_keystore_is_written_as_version_2_with_the_id_ts_gives_it(ts) -> None:  # type: ignore[no-untyped-def]
    from test_keystore import ROOT as V1_ROOT
    from test_keystore import check, sealed_version, write

    doc = {
        "format": "tensorseal-keystore",
        "version": 1,
        "root": {"kind": "key-file", "check": check()},
        "keys": [{"name": "default", "created": "2026-01-01T00:00:00.000Z", "primary": 1,
                  "versions": [sealed_version("default", 1, os.urandom(32), None)]}],
    }  # fmt: skip
    root = ts["dir"] / "v1root.hex"
    root.write_text(V1_ROOT.hex())
    py_home, ts_home = ts["dir"] / "py", ts["dir"] / "tsv1"
    write(py_home, doc)
    write(ts_home, json.loads((py_home / "keystore.json").read_text()))
    ks = Keystore.open(py_home, root_key_file=root)
    sealed = seal_bytes(b"v1", [ks.recipient()])
    run_cli(["keys", "create", "other"], {"TENSORSEAL_HOME": str(ts_home), "TENSORSEAL_ROOT_KEY_FILE": str(root)})
    py_doc = json.loads((py_home / "keystore.json").read_text())
    ts_doc = json.loads((ts_home / "keystore.json").read_text())
    assert py_doc["version"] == ts_doc["version"] == 2
    assert py_doc["id"] == ts_doc["id"]
    assert py_doc["keys"][0]["versions"][0]["wraps"] == 1
    env = {"TENSORSEAL_HOME": str(py_home), "TENSORSEAL_ROOT_KEY_FILE": str(root)}
    assert json.loads(run_cli(["keys", "show", "default", "--json"], env).stdout)["versions"][0]["wraps"] == 1
    assert open_bytes(sealed, [Keystore.open(py_home, root_key_file=root)]) == b"v1"


def test_a_closed_keystore_gives_back_its_lease_and_refuses_more(ts) -> None:  # type: ignore[no-untyped-def]
    with py_open(ts) as ks:
        for _ in range(2):
            seal_bytes(b"x", [ks.recipient()])
        assert ts_wraps(ts) == [3]
    assert ts_wraps(ts) == [2]
    with pytest.raises(TensorSealError) as e:
        seal_bytes(b"x", [ks.recipient()])
    assert e.value.code == "E_USAGE" and "closed" in str(e.value)
