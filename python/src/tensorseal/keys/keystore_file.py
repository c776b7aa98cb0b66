"""File-system plumbing for the keystore, the same protocol as ``src/keys/keystore-file.ts`` so
the TS CLI and this package can write one keystore side by side:

- atomic replacement of ``keystore.json`` by the package's atomic output (``output.py``, the
  engine's rules: a temporary file in the same directory, mode 0600, fsync, link or rename,
  fsync of the directory), so a crash leaves either the old or the new file;
- ``keystore.lock``: created already holding the writer's pid (written to a temporary name,
  then hard-linked to the lock name, which fails atomically if it exists); a lock whose process
  no longer exists on this host is removed by the next writer; otherwise a writer waits up to
  3 seconds, then fails (``E_KEYSTORE``).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import TensorSealError, fail
from ..output import write_file_atomic

KEYSTORE_FILE = "keystore.json"
LOCK_FILE = "keystore.lock"
LOCK_WAIT_S = 3.0
_LOCK_POLL_S = 0.025


def keystore_path(home: Path) -> Path:
    return home / KEYSTORE_FILE


def write_keystore_file(home: Path, data: bytes) -> None:
    """Replaces keystore.json with ``data`` (mode 0600) so readers never see a partial file."""
    target = keystore_path(home)
    try:
        write_file_atomic(target, data)
    except TensorSealError as e:
        fail("E_KEYSTORE", f"cannot write {target}: {e.message}")


@contextmanager
def keystore_lock(home: Path) -> Iterator[None]:
    """Holds ``keystore.lock`` in ``home`` for the block; waits briefly for another holder."""
    lock = home / LOCK_FILE
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            _take_lock(lock)
            break
        except FileExistsError:
            if _remove_stale_lock(lock):
                continue
            if time.monotonic() > deadline:
                fail(
                    "E_KEYSTORE",
                    f"the keystore in {home} is locked by another tensorseal process: retry, or remove {lock} if none is running",
                )
            time.sleep(_LOCK_POLL_S)
        except OSError as e:
            fail("E_KEYSTORE", f"cannot lock the keystore in {home}: {e.strerror or e}")
    try:
        yield
    finally:
        try:
            os.unlink(lock)
        except FileNotFoundError:
            pass


def _take_lock(lock: Path) -> None:
    tmp = lock.with_name(f"{lock.name}.{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, str(os.getpid()).encode("ascii"))
    finally:
        os.close(fd)
    try:
        os.link(tmp, lock)
    finally:
        os.unlink(tmp)


def _remove_stale_lock(lock: Path) -> bool:
    """True when the lock named a process that no longer exists (it is then removed)."""
    try:
        text = lock.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return False
    if not text.isdigit() or int(text) == os.getpid():
        return False  # being written, or held by this process
    try:
        os.kill(int(text), 0)
        return False
    except ProcessLookupError:
        pass
    except OverflowError:
        return False  # not a pid this host can have: leave it to a person, as TS does
    except OSError as e:
        if e.errno != errno.ESRCH:
            return False  # EPERM: alive, another user's
    try:
        os.unlink(lock)
    except FileNotFoundError:
        pass
    return True
