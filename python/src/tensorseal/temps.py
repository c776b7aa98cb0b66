"""Names of temporary outputs, and removal of the ones a killed process left behind.

The same protocol as the TypeScript engine (``src/engine/stale-temps.ts``), so either language
cleans up after the other. A temporary name carries its writer's pid and that process's start
time (``<name>.tseal-tmp-<pid>-<start>-<16 hex>``, the start being field 22 of
``/proc/<pid>/stat``), so a later run can tell a dead writer's leftovers from a live writer's
work: a pid that is gone, or now belongs to a process that started at another time, cannot come
back. The first time a process creates an output in a directory it removes the dead writers'
temporaries there (files truncated first, directories wiped the same way) and says so with one
warning on the ``tensorseal`` logger. Only the current user's entries are touched.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import threading

from .errors import printable

MARK = ".tseal-tmp-"
TEMP_PATTERN = re.compile(r"\.tseal-tmp-(\d+)-(\d+)-[0-9a-f]{16}$")
# Room for the mark, pid, start time and random part within a 255-byte file name.
MAX_BASE_BYTES = 180

log = logging.getLogger("tensorseal")


def process_start_time(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (/proc), or None if it is not running."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("latin-1")
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces and parentheses: skip past it.
    fields = text[text.rfind(")") + 2 :].split(" ")
    return fields[19] if len(fields) > 19 else None


_own: tuple[int, str] | None = None


def own_start() -> str:
    """This process's start time ("0" without /proc). Per pid: a forked child has its own."""
    global _own
    pid = os.getpid()
    if _own is None or _own[0] != pid:
        _own = (pid, process_start_time(pid) or "0")
    return _own[1]


def temp_path_for(target: str) -> str:
    """A fresh temporary name next to ``target``."""
    d, base = os.path.split(target)
    while len(os.fsencode(base)) > MAX_BASE_BYTES:
        base = base[:-1]
    return os.path.join(d, f"{base}{MARK}{os.getpid()}-{own_start()}-{os.urandom(8).hex()}")


def writer_alive(pid: int, start: str) -> bool:
    """True while the process that made a temporary named with ``pid`` and ``start`` may run."""
    if pid == os.getpid():
        return True
    now = process_start_time(pid)
    if now is not None:
        return now == start or start == "0"
    if own_start() != "0":
        return False  # /proc works here, and has no such process
    try:
        os.kill(pid, 0)  # no /proc: a pid that exists is treated as the writer
        return True
    except OverflowError:
        return False
    except OSError as e:
        return e.errno == errno.EPERM


_scanned: set[str] = set()
_scanned_lock = threading.Lock()


def remove_stale_temps(directory: str) -> None:
    """Once per directory per process: removes temporaries of dead writers. Never raises."""
    key = os.path.abspath(directory)
    with _scanned_lock:
        if key in _scanned:
            return
        _scanned.add(key)
    try:
        names = os.listdir(key)
    except OSError:
        return
    removed: list[str] = []
    for name in names:
        m = TEMP_PATTERN.search(name)
        if not m or writer_alive(int(m[1]), m[2]):
            continue
        path = os.path.join(key, name)
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
        except OSError:
            continue  # gone meanwhile
        if not wipe_tree(path):
            removed.append(name)
    if removed:
        entries = "entry" if len(removed) == 1 else "entries"
        names_text = ", ".join(printable(n) for n in removed)
        log.warning(
            "removed %d temporary %s left in %s by an interrupted tensorseal run: %s",
            len(removed),
            entries,
            printable(key),
            names_text,
        )


def wipe_tree(path: str) -> list[str]:
    """Truncates every regular file (so a descriptor someone still holds reads nothing), unlinks
    it, and removes the directories, without following symbolic links. Returns the paths it
    could not remove."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return []
    except OSError:
        return [path]
    if stat.S_ISDIR(st.st_mode):
        try:
            entries = os.listdir(path)
        except OSError:
            return [path]
        left = [p for e in entries for p in wipe_tree(os.path.join(path, e))]
        try:
            os.rmdir(path)
        except OSError:
            left.append(path)
        return left
    try:
        if stat.S_ISREG(st.st_mode):
            _truncate_no_follow(path)
        os.unlink(path)
        return []
    except OSError:
        return [path]


def _truncate_no_follow(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _forget_scans_in_child() -> None:
    # A forked child is another writer: it scans for itself (and must not hold the lock copy).
    global _scanned_lock
    _scanned.clear()
    _scanned_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_scans_in_child)
