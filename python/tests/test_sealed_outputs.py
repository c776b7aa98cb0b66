"""``tensorseal.sealed_outputs``: a training script's outputs are written in RAM and leave it only
sealed, in the format of ``tensorseal exec --seal-outputs`` / ``seal-dir`` (the TS CLI's
``open-dir`` opens them). The block's end seals (normal exit or exception), links are refused
and not followed, an existing directory is refused unless ``force`` and it holds sealed outputs,
and a process killed by SIGTERM leaves no plaintext anywhere. Waits poll a marker file written
by the child, never a guessed delay.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import run_cli
from tensorseal import (
    KekIdentity,
    KekRecipient,
    UsageError,
    X25519Recipient,
    generate_identity,
    open_file,
    sealed_outputs,
)
from tensorseal.keys.x25519 import format_identity_file

KEK = bytes(range(32))
R, I = KekRecipient("default", 1, KEK), KekIdentity.single("default", 1, KEK)
pytestmark = pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs /dev/shm")


@pytest.fixture
def shm() -> Iterator[Path]:
    """A private base on /dev/shm, so other runs' directories do not interfere."""
    base = Path("/dev/shm") / f"tensorseal-pytest-{os.getpid()}-{os.urandom(4).hex()}"
    base.mkdir(mode=0o700)
    yield base
    subprocess.run(["rm", "-rf", str(base)], check=True)


def marker() -> bytes:
    return b"PLAINTEXT-MARKER-" + os.urandom(8).hex().encode()


def holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


def manifest(d: Path) -> dict:
    return json.loads(open_file(d / "tensorseal-manifest.json.tseal", [I]))


def write_outputs(out: str, m: bytes) -> None:
    Path(out, "checkpoint.pt").write_bytes(m * 1000)
    Path(out, "logs", "epoch-1").mkdir(parents=True)
    Path(out, "logs", "epoch-1", "metrics.json").write_bytes(b'{"loss": 0.5, "m": "' + m + b'"}')


def test_outputs_sealed_manifest_lists_them_ram_dir_gone(tmp_path: Path, shm: Path) -> None:
    m = marker()
    dest = tmp_path / "run.sealed"
    with sealed_outputs(dest, [R], tmpfs=str(shm)) as out:
        assert Path(out).parent == shm and (os.stat(out).st_mode & 0o777) == 0o700
        write_outputs(out, m)
    assert not os.path.exists(out)
    assert list(shm.iterdir()) == []
    assert sorted(p.name for p in dest.iterdir()) == ["checkpoint.pt.tseal", "logs", "tensorseal-manifest.json.tseal"]
    assert open_file(dest / "checkpoint.pt.tseal", [I]) == m * 1000
    files = manifest(dest)["files"]
    assert [(f["path"], f["size"]) for f in files] == [
        ("checkpoint.pt", len(m) * 1000),
        ("logs/epoch-1/metrics.json", len(m) + 22),
    ]
    assert holding(tmp_path, m) == [] and holding(shm, m) == []


def test_an_exception_in_the_block_still_seals_and_propagates(tmp_path: Path, shm: Path) -> None:
    m = marker()
    dest = tmp_path / "run.sealed"
    with pytest.raises(RuntimeError, match="diverged"):
        with sealed_outputs(dest, [R], tmpfs=str(shm)) as out:
            write_outputs(out, m)
            raise RuntimeError("loss diverged")
    assert open_file(dest / "checkpoint.pt.tseal", [I]) == m * 1000
    assert list(shm.iterdir()) == [] and holding(tmp_path, m) == []


def test_a_link_to_etc_passwd_is_refused_not_followed(tmp_path: Path, shm: Path) -> None:
    m = marker()
    dest = tmp_path / "run.sealed"
    with pytest.raises(UsageError, match=r"refused.*passwd \(a symbolic link, not followed\)"):
        with sealed_outputs(dest, [R], tmpfs=str(shm)) as out:
            write_outputs(out, m)
            os.symlink("/etc/passwd", os.path.join(out, "passwd"))
            os.mkfifo(os.path.join(out, "pipe"))
    assert not (dest / "passwd.tseal").exists() and not (dest / "pipe.tseal").exists()
    assert [f["path"] for f in manifest(dest)["files"]] == ["checkpoint.pt", "logs/epoch-1/metrics.json"]
    assert list(shm.iterdir()) == []


def test_existing_dir_refused_force_replaces_only_sealed_outputs(tmp_path: Path, shm: Path) -> None:
    dest = tmp_path / "run.sealed"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    ran = False
    with pytest.raises(UsageError, match="exists"):
        with sealed_outputs(dest, [R], tmpfs=str(shm)):
            ran = True
    with pytest.raises(UsageError, match="refusing to replace"):
        with sealed_outputs(dest, [R], tmpfs=str(shm), force=True):
            ran = True
    assert not ran and (dest / "notes.txt").read_text() == "mine"
    (dest / "notes.txt").unlink()
    dest.rmdir()
    with sealed_outputs(dest, [R], tmpfs=str(shm)) as out:
        Path(out, "a").write_bytes(b"1")
    with sealed_outputs(dest, [R], tmpfs=str(shm), force=True) as out:
        Path(out, "b").write_bytes(b"2")
    assert [f["path"] for f in manifest(dest)["files"]] == ["b"]
    assert sorted(p.name for p in dest.iterdir()) == ["b.tseal", "tensorseal-manifest.json.tseal"]
    assert [p.name for p in tmp_path.iterdir()] == ["run.sealed"], "no temporary left beside it"


def test_a_disk_directory_is_refused_for_plaintext(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="not a tmpfs or ramfs"):
        with sealed_outputs(tmp_path / "run.sealed", [R], tmpfs=str(tmp_path)):
            pass


def test_the_cli_open_dir_opens_python_sealed_outputs(tmp_path: Path, shm: Path) -> None:
    secret, public = generate_identity()
    id_file = tmp_path / "id.txt"
    id_file.write_text(format_identity_file(secret))
    m = marker()
    dest = tmp_path / "run.sealed"
    with sealed_outputs(dest, [X25519Recipient(public)], tmpfs=str(shm)) as out:
        write_outputs(out, m)
    plain = shm / "opened"
    run_cli(["open-dir", str(dest), "-o", str(plain), "-i", str(id_file)], env={"HOME": str(tmp_path)})
    assert (plain / "checkpoint.pt").read_bytes() == m * 1000
    assert m in (plain / "logs" / "epoch-1" / "metrics.json").read_bytes()


TRAIN = """
import os, signal, sys, pathlib
from tensorseal import KekRecipient, sealed_outputs
dest, shm, ready, m, handle = sys.argv[1:6]
if handle == "1":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # SIGTERM as an exception: outputs sealed
with sealed_outputs(dest, [KekRecipient("default", 1, bytes(range(32)))], tmpfs=shm) as out:
    epoch = 0
    while True:
        epoch += 1
        pathlib.Path(out, f"checkpoint-{epoch}.pt").write_bytes(m.encode() * (1000 + epoch))
        if epoch == 3:
            pathlib.Path(ready).write_text(str(os.getpid()))
        signal.pause() if epoch >= 3 else None
"""


@pytest.mark.parametrize("handle", ["0", "1"], ids=["default-SIGTERM-wipes", "SIGTERM-as-exit-seals"])
def test_training_script_killed_mid_way_leaves_no_plaintext(tmp_path: Path, shm: Path, handle: str) -> None:
    m = marker()
    script, dest, ready = tmp_path / "train.py", tmp_path / "run.sealed", tmp_path / "ready"
    script.write_text(TRAIN)
    p = subprocess.Popen([sys.executable, str(script), str(dest), str(shm), str(ready), m.decode(), handle])
    try:
        deadline = time.monotonic() + 60
        while not (ready.exists() and ready.read_text()):
            assert p.poll() is None, "the script ended before three epochs"
            assert time.monotonic() < deadline, "timed out waiting for three epochs"
            time.sleep(0.02)
        p.send_signal(signal.SIGTERM)
        code = p.wait(60)
    finally:
        if p.poll() is None:
            p.kill()
    assert holding(tmp_path, m) == [] and holding(shm, m) == []
    assert list(shm.iterdir()) == []
    if handle == "0":
        assert code == -signal.SIGTERM
        assert not dest.exists(), "outputs of a process killed without unwinding are lost, not half-written"
    else:
        assert code == 143
        assert [f["path"] for f in manifest(dest)["files"]] == [f"checkpoint-{i}.pt" for i in (1, 2, 3)]
        assert open_file(dest / "checkpoint-2.pt.tseal", [I]) == m * 1002
