"""Names of temporary outputs, and removal of the ones a killed process left behind.

The same protocol as the TypeScript engine (``src/engine/stale-temps.ts`` and
``process-stamp.ts``), so either language cleans up after the other. A temporary name carries
its writer's process stamp: pid namespace, pid and start time
(``<name>.tseal-tmp-<ns>-<pid>-<start>-<16 hex>``; ns is the inode of ``/proc/self/ns/pid``,
start is field 22 of ``/proc/<pid>/stat``), so a later run can tell a dead writer's leftovers
from a live writer's work: a pid that is gone, or now belongs to a process that started at
another time, cannot come back; a writer in another pid namespace (a container sharing the
directory) cannot be judged and is left alone. The first time a process creates an output in a
directory it removes the dead writers' temporaries there (files truncated first, directories
wiped the same way) and says so with one warning on the ``tensorseal`` logger. Only the current
user's entries are touched. Without /proc nothing is ever judged dead.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading

from .errors import printable

MARK = ".tseal-tmp-"
TEMP_PATTERN = re.compile(r"\.tseal-tmp-(\d+)-(\d+)-(\d+)-[0-9a-f]{16}$")
# Room for the mark, stamp and random part within a 255-byte file name.
MAX_BASE_BYTES = 170


def start_time_of(pid: int) -> str | None:
    """The start time of ``pid`` as /proc shows it; None when no such process runs (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("latin-1")
    except OSError:
        return None
    # "pid (comm) state ...": comm may hold spaces and parentheses, so split after the last ")".
    fields = text[text.rfind(")") + 2 :].split(" ")
    if not fields or fields[0] in ("Z", "X"):
        return None
    start = fields[19] if len(fields) > 19 else ""
    return start if start.isdigit() else None


def pid_namespace() -> str | None:
    """The inode number of this process's pid namespace, or None."""
    try:
        m = re.fullmatch(r"pid:\[(\d+)\]", os.readlink("/proc/self/ns/pid"))
    except OSError:
        return None
    return m[1] if m else None


_own: tuple[int, str | None] | None = None


def own_stamp() -> str | None:
    """``<ns>-<pid>-<start>`` of this process, or None without /proc. Per pid: a forked child has its own."""
    global _own
    pid = os.getpid()
    if _own is None or _own[0] != pid:
        ns, start = pid_namespace(), start_time_of(pid)
        _own = (pid, f"{ns}-{pid}-{start}" if ns and start else None)
    return _own[1]


def temp_path_for(target: str) -> str:
    """A fresh temporary name next to ``target``."""
    d, base = os.path.split(target)
    while len(os.fsencode(base)) > MAX_BASE_BYTES:
        base = base[:-1]
    tag = own_stamp() or f"0-{os.getpid()}-0"
    return os.path.join(d, f"{base}{MARK}{tag}-{os.urandom(8).hex()}")


def may_be_alive(ns: str, pid: int, start: str) -> bool:
    """False only when the writer is certainly gone: same pid namespace, pid free or reused."""
    if own_stamp() is None or ns != pid_namespace():
        return True
    return start_time_of(pid) == start


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
        if not m or may_be_alive(m[1], int(m[2]), m[3]):
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
        import logging  # only here: every `import tensorseal` (and model load) would pay for it

        logging.getLogger("tensorseal").warning(
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
