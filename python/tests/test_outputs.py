"""Outputs follow the TypeScript engine's rules (src/engine/atomic.ts, output.ts, stale-temps.ts):

- the data goes to an anonymous O_TMPFILE file (else a named ``<name>.tseal-tmp-<pid>-<start>-
  <hex>`` temp), fsynced, then linked or renamed into place; a failure or an interrupt (an
  exception, KeyboardInterrupt, SIGTERM/SIGHUP at their default action) leaves the target as it
  was and no temp; a SIGKILL leaves nothing with O_TMPFILE, else a temp the next run removes;
- the first output in a directory removes dead writers' temps there (never a live writer's,
  never another user's), files truncated first, and logs one warning;
- a symbolic link is replaced, a device or FIFO is written in place, a directory is refused.

Both kinds of temporary run: anonymous (O_TMPFILE) and named (``tensorseal.output.O_TMPFILE``
set to 0, as on a file system without it). Waits come from what a child prints or holds open,
never from a guessed delay.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import tensorseal.output
from tensorseal import KekIdentity, KekRecipient, TensorSealError, open_bytes, open_file, seal_to_file
from tensorseal.safetensors import load_file, save_file

KEK = bytes(range(32))
R, I = KekRecipient("default", 1, KEK), KekIdentity.single("default", 1, KEK)
MARKER = b"PLAINTEXT-MARKER-91c2" * 8
TEMP = re.compile(r"\.tseal-tmp-(\d+)-(\d+)-(\d+)-[0-9a-f]{16}$")
NS = re.fullmatch(r"pid:\[(\d+)\]", os.readlink("/proc/self/ns/pid"))[1]  # this pid namespace
NAMED = "import tensorseal.output; tensorseal.output.O_TMPFILE = 0\n"


def pieces(n: int, fail_with: BaseException | None = None) -> Iterator[bytes]:
    for _ in range(n):
        yield MARKER + os.urandom(1 << 16)
    if fail_with is not None:
        raise fail_with


def start_time(pid: int) -> str:
    text = Path(f"/proc/{pid}/stat").read_text(encoding="latin-1")
    return text[text.rfind(")") + 2 :].split(" ")[19]


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def open_paths(pid: int, d: Path) -> list[str]:
    """What process ``pid`` has open in ``d`` (an anonymous file reads as ``d/#N (deleted)``)."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(f"{d}/"):
            out.append(target)
    return out


@pytest.fixture(params=["anon", "named"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    assert tensorseal.output.O_TMPFILE, "Linux with /proc: outputs must use O_TMPFILE"
    if request.param == "named":
        monkeypatch.setattr(tensorseal.output, "O_TMPFILE", 0)
    return str(request.param)


def test_success_replaces_a_regular_file_and_leaves_no_temp(tmp_path: Path, mode: str) -> None:
    target = tmp_path / "out.tseal"
    target.write_bytes(b"old")
    data = b"".join([MARKER] * 3)
    seal_to_file([data], target, [R], plaintext_length=len(data))
    assert open_file(target, [I]) == data
    assert listing(tmp_path) == ["out.tseal"]
    assert target.stat().st_mode & 0o777 == 0o600
    seal_to_file([data], tmp_path / "new.tseal", [R], plaintext_length=len(data))  # absent target
    assert open_file(tmp_path / "new.tseal", [I]) == data
    assert listing(tmp_path) == ["new.tseal", "out.tseal"]


def test_the_temporary_file_is_anonymous_or_named_after_its_writer(tmp_path: Path, mode: str) -> None:
    seen: list[tuple[list[str], list[str]]] = []

    def watch() -> Iterator[bytes]:
        yield from pieces(20)  # more than a chunk: ciphertext has reached the temporary file
        seen.append((listing(tmp_path), open_paths(os.getpid(), tmp_path)))

    long_name = "m" * 250
    seal_to_file(watch(), tmp_path / long_name, [R], plaintext_length=None)
    ((names, held),) = seen
    if mode == "anon":
        assert names == [], "nothing has a name before the output is complete"
        assert len(held) == 1 and re.fullmatch(rf"{tmp_path}/#\d+ \(deleted\)", held[0]), held
    else:
        (name,) = names
        assert name == "m" * 170 + name[170:], "the base name is cut to 170 bytes"
        m = TEMP.search(name)
        assert m and name[170:].startswith(".tseal-tmp-"), name
        assert (m[1], int(m[2]), m[3]) == (NS, os.getpid(), start_time(os.getpid()))
    assert listing(tmp_path) == [long_name]


@pytest.mark.parametrize("exc", [RuntimeError("source failed"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_a_failed_or_interrupted_seal_leaves_the_target_and_no_temp(
    tmp_path: Path, exc: BaseException, mode: str
) -> None:
    target = tmp_path / "out.tseal"
    target.write_bytes(b"previous output")
    with pytest.raises(type(exc)):
        seal_to_file(pieces(40, exc), target, [R], plaintext_length=None)
    assert target.read_bytes() == b"previous output"
    assert listing(tmp_path) == ["out.tseal"]
    # A declared length that the source does not match fails the same way.
    with pytest.raises(TensorSealError) as e:
        seal_to_file(pieces(2), target, [R], plaintext_length=10)
    assert e.value.code == "E_USAGE"
    assert listing(tmp_path) == ["out.tseal"]


def test_a_symbolic_link_is_replaced_not_followed(tmp_path: Path, mode: str) -> None:
    (tmp_path / "real").write_bytes(b"keep me")
    link, dangling = tmp_path / "link.tseal", tmp_path / "dangling.tseal"
    link.symlink_to(tmp_path / "real")
    dangling.symlink_to(tmp_path / "nowhere")
    for target in (link, dangling):
        save_file({"w": np.arange(3, dtype=np.float32)}, target, recipients=[R])
        assert not target.is_symlink() and stat.S_ISREG(target.lstat().st_mode)
        assert np.array_equal(load_file(target, identities=[I])["w"], np.arange(3, dtype=np.float32))
    assert (tmp_path / "real").read_bytes() == b"keep me"
    assert listing(tmp_path) == ["dangling.tseal", "link.tseal", "real"]


def test_a_directory_is_refused_and_nothing_is_left(tmp_path: Path, mode: str) -> None:
    (tmp_path / "dir.tseal").mkdir()
    (tmp_path / "to-dir.tseal").symlink_to(tmp_path / "dir.tseal")
    for target in (tmp_path / "dir.tseal", tmp_path / "to-dir.tseal"):
        with pytest.raises(TensorSealError) as e:
            seal_to_file([b"x"], target, [R], plaintext_length=1)
        assert e.value.code == "E_USAGE" and e.value.file == str(target), str(e.value)
        assert "is a directory: give a file name" in str(e.value)
        with pytest.raises(TensorSealError) as e:
            save_file({"w": np.zeros(3, np.float32)}, target, recipients=[R])
        assert e.value.code == "E_USAGE"
    assert listing(tmp_path) == ["dir.tseal", "to-dir.tseal"]
    assert listing(tmp_path / "dir.tseal") == []


def test_dev_null_is_written_in_place_and_stays_the_null_device() -> None:
    seal_to_file(pieces(20), "/dev/null", [R], plaintext_length=None)
    save_file({"w": np.zeros(3, np.float32)}, "/dev/null", recipients=[R])
    st = os.stat("/dev/null")
    assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
    assert not [n for n in os.listdir("/dev") if ".tseal-tmp-" in n]


def test_a_fifo_receives_the_output_as_a_stream_and_stays_a_fifo(tmp_path: Path, mode: str) -> None:
    d = tmp_path / "d"
    d.mkdir()
    fifo = d / "out.fifo"
    os.mkfifo(fifo)
    (d / "via-link").symlink_to(fifo)
    data = os.urandom((3 << 20) + 7)
    for target in (fifo, d / "via-link"):
        with open(tmp_path / "got", "wb") as got:
            reader = subprocess.Popen(["cat", str(fifo)], stdout=got)
        try:
            seal_to_file([data], target, [R], plaintext_length=len(data))
        except BaseException:
            reader.kill()  # it waits for a writer that will not come
            raise
        finally:
            reader.wait(timeout=120)
        assert open_bytes((tmp_path / "got").read_bytes(), [I]) == data
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and (d / "via-link").is_symlink()
    assert listing(d) == ["out.fifo", "via-link"]


def test_a_socket_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        with pytest.raises(TensorSealError) as e:
            seal_to_file([b"x"], path, [R], plaintext_length=1)
    assert e.value.code == "E_USAGE" and "the output is a socket" in str(e.value)
    assert stat.S_ISSOCK(path.lstat().st_mode) and listing(tmp_path) == ["s.sock"]


def test_a_regular_file_swapped_in_before_the_in_place_open_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the FIFO seen a moment ago were now a regular file: never written without the rename.
    target = tmp_path / "was-a-fifo"
    target.write_bytes(b"previous")
    monkeypatch.setattr(tensorseal.output, "output_kind", lambda path: "special")
    with pytest.raises(TensorSealError) as e:
        seal_to_file([b"x"], target, [R], plaintext_length=1)
    assert e.value.code == "E_USAGE" and "changed into a regular file" in str(e.value)
    assert target.read_bytes() == b"previous"


def test_dead_writers_temps_are_removed_by_the_first_output_in_the_directory(
    tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    live = subprocess.Popen(["sleep", "600"])
    try:
        live_start = start_time(live.pid)
        dead = dead_pid()
        hexpart = "0123456789abcdef"
        dead_file = f"a.tseal.tseal-tmp-{NS}-{dead}-4242-{hexpart}"
        reused_pid = f"b.tseal.tseal-tmp-{NS}-{live.pid}-{int(live_start) - 1}-{hexpart}"  # pid reused
        dead_dir = f".m.tseal-tmp-{NS}-{dead}-4242-{hexpart}"
        keep = [
            f"c.tseal.tseal-tmp-{NS}-{live.pid}-{live_start}-{hexpart}",  # a live writer's
            f"d.tseal.tseal-tmp-{NS}-{os.getpid()}-{start_time(os.getpid())}-{hexpart}",  # this process's
            f"e.tseal.tseal-tmp-{NS}-{dead}-4242-{hexpart}x",  # not a temporary's name
            f"f.tseal.tseal-tmp-{hexpart}",
            f"g.tseal.tseal-tmp-1-{dead}-4242-{hexpart}",  # another pid namespace: cannot be judged
        ]
        for name in [dead_file, reused_pid, *keep]:
            (tmp_path / name).write_bytes(MARKER)
        if os.geteuid() == 0:  # only root can give a file to another user
            keep.append(f"theirs.tseal-tmp-{NS}-{dead}-4242-{hexpart}")
            (tmp_path / keep[-1]).write_bytes(MARKER)
            os.chown(tmp_path / keep[-1], 65534, 65534)
        (tmp_path / dead_dir / "sub").mkdir(parents=True)
        (tmp_path / dead_dir / "sub" / "w.bin").write_bytes(MARKER)
        held = open(tmp_path / dead_file, "rb")  # someone still reading the leftover
        with held, caplog.at_level(logging.WARNING, logger="tensorseal"):
            seal_to_file([b"new"], tmp_path / "out.tseal", [R], plaintext_length=3)
            assert held.read() == b"", "a removed temporary file is emptied first"
        assert listing(tmp_path) == sorted([*keep, "out.tseal"])
        (record,) = [r for r in caplog.records if r.name == "tensorseal"]
        assert record.levelno == logging.WARNING
        names = ", ".join(sorted([dead_file, reused_pid, dead_dir]))
        msg = record.getMessage()
        prefix = f"removed 3 temporary entries left in {tmp_path} by an interrupted tensorseal run: "
        assert msg.startswith(prefix) and ", ".join(sorted(msg[len(prefix) :].split(", "))) == names, msg
        # Once per directory per process: a later output there does not scan again.
        (tmp_path / dead_file).write_bytes(MARKER)
        seal_to_file([b"new"], tmp_path / "out2.tseal", [R], plaintext_length=3)
        assert dead_file in listing(tmp_path)
    finally:
        live.kill()
        live.wait()


# A child that seals into argv[1], says "ready" once ciphertext is in the temporary file, then
# blocks on stdin until a signal ends it.
CHILD = """
import os, sys
from tensorseal import KekRecipient, seal_to_file
marker = {marker!r}
def gen():
    for _ in range(40):
        yield marker + os.urandom(1 << 16)
    print("ready", flush=True)
    sys.stdin.buffer.read(1)
    yield b"never"
seal_to_file(gen(), sys.argv[1], [KekRecipient("default", 1, bytes(range(32)))], plaintext_length=None)
"""


def start_child(target: Path, mode: str, prelude: str = "") -> subprocess.Popen[str]:
    code = (NAMED if mode == "named" else "") + prelude + CHILD.format(marker=MARKER)
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "ready\n", "the child did not start writing"
    return child


def assert_writing(child: subprocess.Popen[str], d: Path, mode: str) -> None:
    (held,) = open_paths(child.pid, d)
    if mode == "anon":
        assert re.fullmatch(rf"{d}/#\d+ \(deleted\)", held), held
        assert [n for n in os.listdir(d) if TEMP.search(n)] == []
    else:
        assert TEMP.search(held) and Path(held).stat().st_size > 0, held


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_while_writing_leaves_the_target_and_no_temp(tmp_path: Path, mode: str, sig: signal.Signals) -> None:
    target = tmp_path / "out.tseal"
    target.write_bytes(b"previous output")
    child = start_child(target, mode)
    assert_writing(child, tmp_path, mode)
    child.send_signal(sig)
    assert child.wait(timeout=120) == -sig, "dies of the signal, as without tensorseal"
    assert listing(tmp_path) == ["out.tseal"] and target.read_bytes() == b"previous output"


def test_a_host_signal_handler_keeps_the_decision_and_the_temp_is_removed(tmp_path: Path) -> None:
    host = "import signal, sys\nsignal.signal(signal.SIGTERM, lambda s, f: sys.exit(99))\n"
    child = start_child(tmp_path / "out.tseal", "named", host)
    assert_writing(child, tmp_path, "named")
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=120) == 99, "the host's handler ran"
    assert listing(tmp_path) == []


def test_after_the_output_the_host_signal_dispositions_are_as_before(tmp_path: Path) -> None:
    code = NAMED + (
        "import signal\n"
        "from tensorseal import KekRecipient, seal_to_file\n"
        "before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)]\n"
        "seal_to_file([b'x'], __import__('sys').argv[1], [KekRecipient('default', 1, bytes(32))], plaintext_length=1)\n"
        "assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)] == before\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "o.tseal")], check=True, timeout=120)


def test_sigkill_leaves_nothing_with_o_tmpfile(tmp_path: Path) -> None:
    child = start_child(tmp_path / "out.tseal", "anon")
    assert_writing(child, tmp_path, "anon")
    child.kill()
    assert child.wait(timeout=120) == -signal.SIGKILL
    assert listing(tmp_path) == []


def test_sigkill_with_named_temps_leaves_one_that_the_next_run_removes(tmp_path: Path) -> None:
    child = start_child(tmp_path / "out.tseal", "named")
    assert_writing(child, tmp_path, "named")
    child.kill()
    assert child.wait(timeout=120) == -signal.SIGKILL
    (left,) = listing(tmp_path)
    assert left.startswith(f"out.tseal.tseal-tmp-{NS}-{child.pid}-") and TEMP.search(left)
    assert MARKER[:32] not in (tmp_path / left).read_bytes(), "ciphertext only"
    # The next run (a fresh process: unconfigured logging prints the warning on stderr).
    code = NAMED + (
        "import sys\nfrom tensorseal import KekRecipient, seal_to_file\n"
        "seal_to_file([b'x'], sys.argv[1], [KekRecipient('default', 1, bytes(32))], plaintext_length=1)\n"
    )
    args = [sys.executable, "-c", code, str(tmp_path / "next.tseal")]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr == f"removed 1 temporary entry left in {tmp_path} by an interrupted tensorseal run: {left}\n"
    assert listing(tmp_path) == ["next.tseal"]


def test_a_forked_child_leaves_its_parents_output_alone(tmp_path: Path) -> None:
    # One child unwinds through the parent's `with` (sys.exit), one dies of SIGTERM (the
    # inherited handler): neither removes, commits nor writes to the parent's temporary file.
    code = NAMED + (
        "import os, signal, sys\nfrom tensorseal.output import atomic_output\n"
        "with atomic_output(sys.argv[1]) as f:\n"
        "    f.write(b'parent data')  # still in the buffer the children inherit\n"
        "    for how in ('exit', 'sigterm'):\n"
        "        pid = os.fork()\n"
        "        if pid == 0 and how == 'exit':\n"
        "            sys.exit(0)\n"
        "        if pid == 0:\n"
        "            os.kill(os.getpid(), signal.SIGTERM)\n"
        "        os.waitpid(pid, 0)\n"
        "        assert len(os.listdir(os.path.dirname(sys.argv[1]))) == 1, how\n"
        "    f.write(b' and more')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "o.bin")], check=True, timeout=120)
    assert (tmp_path / "o.bin").read_bytes() == b"parent data and more" and listing(tmp_path) == ["o.bin"]


def test_a_forked_child_names_its_temps_with_its_own_pid_and_start_time(tmp_path: Path) -> None:
    code = (
        "import os, re\nfrom tensorseal.temps import own_stamp, temp_path_for\n"
        "parent = own_stamp()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    stat = open('/proc/self/stat').read()\n"
        "    start = stat[stat.rfind(')') + 2 :].split(' ')[19]\n"
        "    m = re.search(r'-(\\d+)-(\\d+)-[0-9a-f]{16}$', temp_path_for('x'))\n"
        "    mine = (int(m[1]), m[2]) == (os.getpid(), start)\n"
        "    os._exit(0 if mine and own_stamp() != parent else 1)\n"
        "assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_keystore_file_is_written_by_the_same_rules(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from tensorseal.keys.keystore_file import write_keystore_file

    leftover = f"keystore.json.tseal-tmp-{NS}-{dead_pid()}-99-{'ab' * 8}"
    (tmp_path / leftover).write_bytes(b"{}")
    with caplog.at_level(logging.WARNING, logger="tensorseal"):
        write_keystore_file(tmp_path, b'{"k": 1}')
    assert listing(tmp_path) == ["keystore.json"] and (tmp_path / "keystore.json").read_bytes() == b'{"k": 1}'
    assert (tmp_path / "keystore.json").stat().st_mode & 0o777 == 0o600
    assert leftover in caplog.text
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keystore.json").mkdir()
    with pytest.raises(TensorSealError) as e:
        write_keystore_file(tmp_path / "d", b"{}")
    assert e.value.code == "E_KEYSTORE" and "is a directory" in str(e.value)

