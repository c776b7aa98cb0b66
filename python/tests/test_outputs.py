"""Outputs are atomic: written to a temporary file beside the target, fsynced and renamed; a
failure or an interrupt removes the temporary file and leaves the target as it was; a target
that is not a regular file is never replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tensorseal import KekIdentity, KekRecipient, TensorSealError, open_file, seal_to_file
from tensorseal.safetensors import save_file

KEK = bytes(range(32))
R, I = KekRecipient("default", 1, KEK), KekIdentity.single("default", 1, KEK)
MARKER = b"PLAINTEXT-MARKER-91c2" * 8


def pieces(n: int, fail_with: BaseException | None = None) -> Iterator[bytes]:
    for _ in range(n):
        yield MARKER + os.urandom(1 << 16)
    if fail_with is not None:
        raise fail_with


def test_success_replaces_a_regular_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.tseal"
    target.write_bytes(b"old")
    data = b"".join([MARKER] * 3)
    seal_to_file([data], target, [R], plaintext_length=len(data))
    assert open_file(target, [I]) == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tseal"]
    assert target.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("exc", [RuntimeError("source failed"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_a_failed_or_interrupted_seal_leaves_the_target_and_no_temp(tmp_path: Path, exc: BaseException) -> None:
    target = tmp_path / "out.tseal"
    target.write_bytes(b"previous output")
    with pytest.raises(type(exc)):
        seal_to_file(pieces(4, exc), target, [R], plaintext_length=None)
    assert target.read_bytes() == b"previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tseal"]
    # A declared length that the source does not match fails the same way.
    with pytest.raises(TensorSealError) as e:
        seal_to_file(pieces(2), target, [R], plaintext_length=10)
    assert e.value.code == "E_USAGE"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tseal"]


def _special(tmp_path: Path, kind: str) -> Path:
    target = tmp_path / f"{kind}.tseal"
    if kind == "directory":
        target.mkdir()
    elif kind == "symlink":
        (tmp_path / "real").write_bytes(b"keep me")
        target.symlink_to(tmp_path / "real")
    else:
        os.mkfifo(target)
    return target


@pytest.mark.parametrize("kind", ["directory", "symlink", "fifo"])
def test_a_target_that_is_not_a_regular_file_is_never_replaced(tmp_path: Path, kind: str) -> None:
    target = _special(tmp_path, kind)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(TensorSealError) as e:
        seal_to_file([b"x"], target, [R], plaintext_length=1)
    assert e.value.code == "E_USAGE" and e.value.file == str(target), str(e.value)
    with pytest.raises(TensorSealError) as e:
        save_file({"w": np.zeros(3, np.float32)}, target, recipients=[R])
    assert e.value.code == "E_USAGE"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if kind == "symlink":
        assert target.is_symlink() and (tmp_path / "real").read_bytes() == b"keep me"


def test_a_killed_seal_leaves_no_partial_target_and_no_plaintext(tmp_path: Path) -> None:
    code = (
        "import os, signal, sys\n"
        "from tensorseal import KekRecipient, seal_to_file\n"
        f"marker = {MARKER!r}\n"
        "def gen():\n"
        "    for i in range(8):\n"
        "        if i == 4: os.kill(os.getpid(), signal.SIGKILL)\n"
        "        yield marker + os.urandom(1 << 16)\n"
        "seal_to_file(gen(), sys.argv[1], [KekRecipient('default', 1, bytes(range(32)))], plaintext_length=None)\n"
    )
    target = tmp_path / "out.tseal"
    p = subprocess.run([sys.executable, "-c", code, str(target)], timeout=120)
    assert p.returncode == -signal.SIGKILL
    assert not target.exists()
    for left in tmp_path.iterdir():  # at most a ciphertext temporary file, named as such
        assert left.name.startswith("out.tseal.tseal-tmp-"), left.name
        assert MARKER[:32] not in left.read_bytes()
