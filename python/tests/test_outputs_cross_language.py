"""Python and the TS CLI share one temporary-output protocol (``<name>.tseal-tmp-<ns>-<pid>-
<start>-<hex>``): each removes the other's dead writers' leftovers, never a live writer's, and Python
writes into a FIFO that the CLI reads as a stream.

Needs Node.js and the built CLI (`npx tsc -p tsconfig.json` in the repository root); fails, not
skips, when it is missing. Waits poll what a process has written, never a guessed delay.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from helpers import node, require_cli, run_cli
from tensorseal import X25519Recipient, generate_identity, seal_bytes, seal_to_file
from tensorseal.keys.x25519 import format_identity_file

T = TypeVar("T")
TEMP = re.compile(r"\.tseal-tmp-(\d+)-(\d+)-(\d+)-[0-9a-f]{16}$")  # ns, pid, start
NS = re.fullmatch(r"pid:\[(\d+)\]", os.readlink("/proc/self/ns/pid"))[1]  # type: ignore[index]
NAMED = "import tensorseal.output; tensorseal.output.O_TMPFILE = 0\n"


def start_time(pid: int) -> str:
    text = Path(f"/proc/{pid}/stat").read_text(encoding="latin-1")
    return text[text.rfind(")") + 2 :].split(" ")[19]


def wait_for(what: str, probe: Callable[[], T | None], seconds: float = 120) -> T:
    deadline = time.monotonic() + seconds
    while True:
        got = probe()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class World:
    """An X25519 identity file, a sealed 6 MiB input, an output directory, a CLI environment."""

    dir: Path
    out: Path
    plain: bytes
    recipient: X25519Recipient
    env: dict[str, str]
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def cli(self, *args: str) -> list[str]:
        return [node(), str(require_cli()), *args]

    def popen(self, args: list[str], **kw: Any) -> subprocess.Popen[str]:
        env = {**os.environ, **self.env}
        p = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)
        self.started.append(p)
        return p


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    secret, public = generate_identity()
    (tmp_path / "id.txt").write_text(format_identity_file(secret))
    plain = os.urandom(6 << 20)
    (tmp_path / "in.tseal").write_bytes(seal_bytes(plain, [X25519Recipient(public)]))
    (tmp_path / "out").mkdir()
    env = {"TENSORSEAL_HOME": str(tmp_path / "home"), "TENSORSEAL_NATIVE": "0"}  # named temps
    w = World(tmp_path, tmp_path / "out", plain, X25519Recipient(public), env)
    yield w
    for p in w.started:  # a CLI still waiting on its FIFO after a failed test
        if p.poll() is None:
            p.kill()
            p.communicate()


class FedOpen:
    """``tensorseal open FIFO -o OUT`` fed by the test: it writes what it was given and waits."""

    def __init__(self, w: World, name: str) -> None:
        self.out = w.out / name
        self.fifo = w.dir / f"{name}.fifo"
        os.mkfifo(self.fifo)
        args = w.cli("open", str(self.fifo), "-o", str(self.out), "-i", str(w.dir / "id.txt"))
        self.proc = w.popen(args, stdout=subprocess.DEVNULL)
        self.sealed = (w.dir / "in.tseal").read_bytes()
        self.fd = wait_for("the CLI to open its input", self._open_feed)
        os.set_blocking(self.fd, True)
        self._feed(self.sealed[: 4 << 20])  # header and some chunks; the rest held back

    def _open_feed(self) -> int | None:
        try:
            return os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO or self.proc.poll() is not None:
                raise
            return None  # no reader yet

    def temp(self) -> Path:
        """The CLI's named temporary output, once plaintext is in it."""

        def probe() -> Path | None:
            for p in self.out.parent.iterdir():
                m = TEMP.search(p.name)
                if p.name.startswith(self.out.name) and m and int(m[2]) == self.proc.pid and p.stat().st_size > 0:
                    return p
            return None

        return wait_for("plaintext in the CLI's temporary output", probe)

    def _feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def finish(self) -> subprocess.CompletedProcess[str]:
        self._feed(self.sealed[4 << 20 :])
        os.close(self.fd)
        _, err = self.proc.communicate(timeout=120)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, "", err)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=120)
        os.close(self.fd)


def test_python_removes_a_dead_cli_writers_temp_and_keeps_a_live_ones(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    out = world.out
    live = FedOpen(world, "live.bin")
    dead = FedOpen(world, "dead.bin")
    live_temp, dead_temp = live.temp(), dead.temp()
    assert TEMP.search(live_temp.name)[3] == start_time(live.proc.pid)  # type: ignore[index]
    dead.kill()
    assert dead.proc.returncode == -signal.SIGKILL
    live_size = live_temp.stat().st_size
    with caplog.at_level(logging.WARNING, logger="tensorseal"):
        seal_to_file([b"from python"], out / "py.tseal", [world.recipient], plaintext_length=11)
    assert caplog.messages == [
        f"removed 1 temporary entry left in {out} by an interrupted tensorseal run: {dead_temp.name}"
    ]
    assert live_temp.exists() and live_temp.stat().st_size >= live_size, "a live writer's temp is never touched"
    r = live.finish()
    assert r.returncode == 0, r.stderr
    assert (out / "live.bin").read_bytes() == world.plain
    assert sorted(p.name for p in out.iterdir()) == ["live.bin", "py.tseal"]


def test_the_cli_removes_a_dead_python_writers_temp_and_keeps_a_live_ones(world: World) -> None:
    out = world.out
    code = NAMED + (
        "import os, signal, sys\nfrom tensorseal import KekRecipient, seal_to_file\n"
        "def gen():\n"
        "    for i in range(8):\n"
        "        if i == 4: os.kill(os.getpid(), signal.SIGKILL)\n"
        "        yield os.urandom(1 << 20)\n"
        "seal_to_file(gen(), sys.argv[1], [KekRecipient('default', 1, bytes(32))], plaintext_length=None)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code, str(out / "py.tseal")])
    assert p.wait(timeout=120) == -signal.SIGKILL
    (left,) = os.listdir(out)
    assert left.startswith(f"py.tseal.tseal-tmp-{NS}-{p.pid}-") and TEMP.search(left)
    # This process is a live Python writer: its temporary file must survive the CLI's clean-up.
    mine = f"other.tseal.tseal-tmp-{NS}-{os.getpid()}-{start_time(os.getpid())}-{'cd' * 8}"
    (out / mine).write_bytes(b"in progress")
    args = ["open", str(world.dir / "in.tseal"), "-o", str(out / "x.bin"), "-i", str(world.dir / "id.txt")]
    r = run_cli(args, world.env)
    assert f"tensorseal: removed 1 temporary entry left in {out} by an interrupted tensorseal run: {left}" in r.stderr
    assert sorted(os.listdir(out)) == sorted([mine, "x.bin"])
    assert (out / "x.bin").read_bytes() == world.plain


def test_python_writes_a_fifo_that_the_cli_reads_as_a_stream(world: World) -> None:
    out, fifo = world.out, world.dir / "pipe.tseal"
    os.mkfifo(fifo)
    data = os.urandom((5 << 20) + 3)
    cli = world.popen(world.cli("open", str(fifo), "-o", str(out / "plain.bin"), "-i", str(world.dir / "id.txt")))
    try:
        seal_to_file([data[: 1 << 20], data[1 << 20 :]], fifo, [world.recipient], plaintext_length=len(data))
    except BaseException:
        cli.kill()
        raise
    finally:
        _, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    assert (out / "plain.bin").read_bytes() == data
    assert fifo.is_fifo() and sorted(os.listdir(out)) == ["plain.bin"]
