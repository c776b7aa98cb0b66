"""Outputs: a reader never sees a partial file, and an interrupted writer leaves nothing.

The same rules as the TypeScript engine (``src/engine/atomic.ts``, ``output.ts``):

- A path that does not exist, or names a regular file or a symbolic link, gets an atomic
  output. The data goes to a temporary file in the target's directory (mode 0600), is fsynced,
  and only then takes the target's name; the directory is fsynced after. Where the file system
  allows it (Linux, O_TMPFILE) the temporary file is anonymous: it has no name until linkat
  gives it the target's, so even a SIGKILL or power loss leaves nothing behind. Elsewhere it
  is a named ``<target>.tseal-tmp-<ns>-<pid>-<start>-<random>`` (temps.py): removed on failure and
  on interrupts (interrupt.py), and a later run (Python or the CLI) removes those of dead
  writers. An existing target is replaced by rename: a symbolic link is replaced, not followed.
- A path that names a device, FIFO or socket (``/dev/null``, a named pipe), directly or through
  a symbolic link, is written in place as a stream and never renamed over: like stdout, it
  receives the output progressively, and a failure part way leaves what was already written.
- A directory is refused (``E_USAGE``).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO, Literal

from .errors import error
from .interrupt import on_interrupt
from .temps import remove_stale_temps, temp_path_for

# Linux's O_TMPFILE; the link into place goes through /proc/self/fd (linkat AT_SYMLINK_FOLLOW
# needs no privilege, unlike AT_EMPTY_PATH). Tests set it to 0 to exercise named temporaries.
O_TMPFILE: int = getattr(os, "O_TMPFILE", 0) if os.path.isdir("/proc/self/fd") else 0
# Errors meaning "this file system (or kernel) has no O_TMPFILE": use a named temp instead.
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}

OutputKind = Literal["file", "special"]


def output_kind(path: str) -> OutputKind:
    """"special" for an existing device, FIFO or socket (following symbolic links); else "file"."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return "file"  # absent (or unreadable: the atomic output then says why)
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        raise error("E_USAGE", "the output is a directory: give a file name").naming(path)
    return "special"


class atomic_output:
    """Context manager: a binary file for ``path`` that takes its name only on success.

    Yields a writable binary file. On a clean exit its content replaces ``path`` atomically (a
    device, FIFO or socket is written in place instead, see the module); on any exception,
    including KeyboardInterrupt, the temporary file is removed and ``path`` is left as it was.

    Example:
        >>> with atomic_output("out.bin") as f:  # doctest: +SKIP
        ...     f.write(b"ciphertext")
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._out: _AtomicFile | _InPlace | None = None
        self._pid = os.getpid()

    def __enter__(self) -> BinaryIO:
        if output_kind(self.path) == "special":
            self._out = _InPlace(self.path)
        else:
            self._out = _AtomicFile(self.path)
        return self._out.file

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._out is not None
        if self._pid != os.getpid():
            # A forked child leaving the block (say, by sys.exit): the output is its parent's.
            # Close this copy of the descriptor first, so that closing the file object cannot
            # flush the buffer it inherited into the parent's file (a forked child has one thread:
            # nothing can take the descriptor's number in between).
            f = self._out.file
            _quietly(lambda: os.close(f.fileno()))
            _quietly(f.close)
            return
        if exc_type is None:
            self._out.commit()
        else:
            self._out.abort()


def write_file_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes ``data`` to ``path`` (mode 0600): atomically for a file, in place for a device."""
    with atomic_output(path) as f:
        f.write(data)


def _io_error(path: str, what: str, e: OSError) -> Exception:
    return error("E_IO", f"cannot {what}: {e.strerror or e}").naming(path)


class _AtomicFile:
    """A temporary file beside ``target``: anonymous where possible, else named."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.dir = os.path.dirname(target) or "."
        self._tmp: str | None = None  # None while the file is anonymous, or once committed
        self._closed = False
        self._release = _noop
        remove_stale_temps(self.dir)
        fd = self._open_anonymous()
        if fd is None:
            fd = self._open_named()
        self._fd = fd
        try:
            os.fchmod(fd, 0o600)  # exactly, whatever the umask
            self.file: BinaryIO = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            self._closed = True
            self.abort()
            raise

    def _open_anonymous(self) -> int | None:
        if not O_TMPFILE:
            return None
        try:
            return os.open(self.dir, O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError as e:
            if e.errno in _NO_TMPFILE:
                return None
            raise _io_error(self.target, f"create a temporary file in {self.dir}", e) from None

    def _open_named(self) -> int:
        tmp = temp_path_for(self.target)
        # Registered before the file exists: a signal right after open() must still remove it.
        self._tmp = tmp
        self._release = on_interrupt(self._discard)
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as e:
            self._tmp = None
            self._release()
            raise _io_error(self.target, f"create a temporary file in {self.dir}", e) from None

    def commit(self) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            dir_fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            self.abort()
            raise _io_error(self.target, "write the output", e) from None
        try:
            self._commit(dir_fd)
        except OSError as e:
            self.abort()
            raise _io_error(self.target, "write the output", e) from None
        except BaseException:
            self.abort()
            raise
        finally:
            os.close(dir_fd)

    def _commit(self, dir_fd: int) -> None:
        if self._tmp is None:
            # Straight to the target's name when it is free: nothing named exists before it is
            # whole. Otherwise link a temporary name and rename that over the target.
            if self._link(self.target, dir_fd):
                self._close()
                _fsync_dir_fd(dir_fd)
                return
            named = temp_path_for(self.target)
            self._release = on_interrupt(self._discard)
            self._tmp = named  # before the name exists: an interrupt from now on removes it
            try:
                linked = self._link(named, dir_fd)
            except BaseException:
                self._tmp = None
                raise
            if not linked:
                self._tmp = None
                raise error("E_IO", f"cannot create {named}: it exists").naming(self.target)
        self._close()
        _refuse_special_target(self.target)
        try:
            os.replace(self._tmp, self.target)
        except OSError as e:
            raise _io_error(self.target, "rename the output into place", e) from None
        self._tmp = None
        self._release()
        _fsync_dir_fd(dir_fd)

    def _link(self, name: str, dir_fd: int) -> bool:
        """Gives the anonymous file the name ``name``; False when ``name`` exists."""
        try:
            # A directory fd makes CPython call linkat(2), and follow_symlinks=True makes it pass
            # AT_SYMLINK_FOLLOW, which resolves /proc/self/fd/N to the open file itself (plain
            # link(2) fails with EXDEV). The source path is absolute, so the fd is not used.
            os.link(f"/proc/self/fd/{self.file.fileno()}", name, src_dir_fd=dir_fd, follow_symlinks=True)
            return True
        except FileExistsError:
            return False
        except OSError as e:
            raise _io_error(self.target, f"create {name}", e) from None

    def abort(self) -> None:
        """Best effort: the original error matters more than a failing cleanup."""
        self._discard()
        self._release()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self.file.close()

    def _discard(self) -> None:
        """Empties and unlinks a named temp. Synchronous so it can run from a signal handler."""
        tmp = self._tmp
        if not self._closed:
            self._closed = True
            if tmp is not None:
                # Truncating first frees its blocks even if something still holds it open.
                _quietly(lambda: os.ftruncate(self._fd, 0))
            _quietly(lambda: self.file.close())  # not there yet if interrupted while opening
        if tmp is not None:
            _quietly(lambda: os.unlink(tmp))
        self._tmp = None


class _InPlace:
    """An existing device, FIFO or socket, opened for writing without creating or truncating."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as e:
            if e.errno == errno.ENXIO:
                raise error(
                    "E_USAGE", "the output is a socket (or a device with nothing behind it): cannot write to it"
                ).naming(path) from None
            raise _io_error(path, "open the output for writing", e) from None
        # The path may have been swapped for a regular file since output_kind: that one would be
        # written without the atomic rename, so refuse it.
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise error("E_USAGE", "the output changed into a regular file while opening it: retry").naming(path)
        self.file: BinaryIO = os.fdopen(fd, "wb")

    def commit(self) -> None:
        try:
            self.file.close()
        except OSError as e:
            raise _io_error(self.path, "write the output", e) from None

    def abort(self) -> None:
        _quietly(self.file.close)


def _refuse_special_target(target: str) -> None:
    """rename(2) would replace a device, FIFO, socket or directory with a regular file: refuse."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise error("E_USAGE", "the output is no longer a regular file: not replacing it").naming(target)


def fsync_dir(d: str) -> None:
    """Makes a rename in ``d`` durable; file systems that refuse fsync on directories are fine."""
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        _fsync_dir_fd(fd)
    finally:
        os.close(fd)


def _fsync_dir_fd(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EISDIR, errno.EPERM):
            raise


def _quietly(fn: object) -> None:
    try:
        fn()  # type: ignore[operator]
    except Exception:
        pass


def _noop() -> None:
    pass
