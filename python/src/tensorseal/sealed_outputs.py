"""``sealed_outputs``: a training script's outputs live in RAM and leave it only sealed.

The Python side of ``tensorseal exec --seal-outputs`` (docs/INTEGRATIONS.md, "Outputs"), for a
script run without ``exec``. The block gets a fresh private directory on a RAM file system
(tmpfs or ramfs, default ``/dev/shm``; anything else is refused); when it ends, by a normal
exit or any exception (KeyboardInterrupt and ``sys.exit`` included), every regular file in it
is sealed into ``dir`` in the same format as ``exec`` and ``seal-dir`` write: ``<path>.tseal``
per file, bound by its encryption context to its path and a random run id, plus the sealed
``tensorseal-manifest.json.tseal`` of paths, sizes and plaintext SHA-256. ``tensorseal
open-dir DIR -o OUT`` opens it. The plaintext is then truncated and removed, whatever happened.

Rules, as for ``exec``: ``dir`` must not exist when the block starts (``force=True`` replaces
one that is empty or holds earlier sealed outputs, nothing else); ``dir`` appears whole
(temporary directory beside it, each file written atomically, directories fsynced, rename);
symbolic links and special files in the output directory are never followed nor sealed, and
raise ``E_USAGE`` naming them after the rest is sealed; if sealing fails the outputs are lost,
not left in plaintext, and the error names them. SIGTERM or SIGHUP at their default action end
the process without unwinding: the plaintext is then wiped (outputs lost); to get outputs
sealed on SIGTERM, turn it into an exception (``signal.signal(SIGTERM, lambda *_: sys.exit(143))``).
A SIGKILL leaves the RAM directory, named like exec's (``tensorseal-exec-outputs-<pid>-...``):
the next ``sealed_outputs`` or ``tensorseal exec`` on that file system removes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import string
from collections.abc import Iterator, Sequence

from .errors import TensorSealError, error
from .format.stanza import Recipient
from .interrupt import on_interrupt
from .output import fsync_dir, write_file_atomic
from .temps import may_be_alive, own_stamp, remove_stale_temps, temp_path_for, wipe_tree
from .writer import seal_bytes, seal_to_file

__all__ = ["sealed_outputs"]

MANIFEST_NAME = "tensorseal-manifest.json"
SEALED_SUFFIX = ".tseal"
PATH_CONTEXT = "tensorseal.path"
MODEL_CONTEXT = "tensorseal.model"
MANIFEST_CONTENT_TYPE = "application/vnd.tensorseal.manifest+json"
SAFETENSORS = "application/vnd.safetensors"
OCTET_STREAM = "application/octet-stream"
RAM_FS = {"tmpfs", "ramfs"}
# The name src/integrations/ram-dir.ts gives (owner stamp: pid, start time, pid namespace).
_RAM_NAME = re.compile(r"^tensorseal-exec-(.+)-(\d+)-(\d+)-(\d+)-[A-Za-z0-9]{6}$")
_PIECE = 8 << 20


@contextlib.contextmanager
def sealed_outputs(
    dir: str | os.PathLike[str],
    recipients: Sequence[Recipient],
    *,
    tmpfs: str = "/dev/shm",
    force: bool = False,
) -> Iterator[str]:
    """Yields a private RAM directory; seals what is written there into ``dir`` when the block ends.

    Args:
        dir: where the sealed outputs go (must not exist, unless ``force``).
        recipients: who may open them (at least one).
        tmpfs: a directory on tmpfs or ramfs for the plaintext.
        force: replace an existing ``dir`` that is empty or holds earlier sealed outputs.

    Example:
        >>> with sealed_outputs("run-42.sealed", [recipient]) as out:  # doctest: +SKIP
        ...     torch.save(model.state_dict(), os.path.join(out, "ckpt.pt"))
    """
    if not recipients:
        raise error("E_USAGE", "sealed_outputs needs at least one recipient")
    target = os.path.abspath(os.fspath(dir))
    _check_target(target, force)
    _check_ram_fs(tmpfs)
    _sweep_dead(tmpfs)
    ram = _make_ram_dir(tmpfs)
    release = on_interrupt(lambda: wipe_tree(ram))  # a SIGTERM at its default action: wipe, lose
    try:
        try:
            yield ram
        except BaseException:
            # The block raised: still seal what it wrote, then let its exception through. A
            # sealing failure is raised instead, chained to it (its __context__).
            _seal_all(ram, target, recipients, force)
            raise
        _seal_all(ram, target, recipients, force)
    finally:
        wipe_tree(ram)
        release()


def _seal_all(ram: str, target: str, recipients: Sequence[Recipient], force: bool) -> None:
    files, refused = _list_outputs(ram)
    lost: list[str] = []
    try:
        if files:
            lost = [p for p, _ in files]
            _seal_into(ram, files, target, recipients, force)
            lost = []
    except TensorSealError as e:
        raise error(e.code, f"sealing the outputs failed ({e.file + ': ' if e.file else ''}{e.message}); these outputs were wiped, not sealed: {', '.join(lost)}").naming(target) from e
    except OSError as e:
        raise error("E_IO", f"sealing the outputs failed ({e.strerror or e}); these outputs were wiped, not sealed: {', '.join(lost)}").naming(target) from e
    finally:
        wipe_tree(ram)
    if refused:
        listed = ", ".join(f"{p} ({why})" for p, why in refused)
        raise error("E_USAGE", f"outputs refused (not sealed, removed): {listed}").naming(target)


def _check_target(target: str, force: bool) -> None:
    parent = os.path.dirname(target)
    if not os.access(parent, os.W_OK):
        raise error("E_USAGE", f"{parent} is not a writable directory").naming(target)
    if not os.path.lexists(target):
        return
    if not force:
        raise error("E_USAGE", "the outputs directory exists: pass force=True to replace it").naming(target)
    _check_replaceable(target)


def _check_replaceable(target: str) -> None:
    st = os.lstat(target)
    ok = stat.S_ISDIR(st.st_mode) and (
        os.path.exists(os.path.join(target, MANIFEST_NAME + SEALED_SUFFIX)) or not os.listdir(target)
    )
    if not ok:
        raise error(
            "E_USAGE", f"refusing to replace it: neither empty nor a sealed directory (no {MANIFEST_NAME}{SEALED_SUFFIX})"
        ).naming(target)


def _check_ram_fs(path: str) -> None:
    """The file system type from /proc/self/mountinfo (Python has no statfs): tmpfs or ramfs only."""
    real = os.path.realpath(path)
    best, fstype = "", None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                sep = fields.index("-")
                mount = fields[4].encode().decode("unicode_escape")
                if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
                    best, fstype = mount, fields[sep + 1]
    except (OSError, ValueError) as e:
        raise error("E_IO", f"cannot tell the file system of {path}: {e}") from None
    if fstype not in RAM_FS:
        raise error(
            "E_UNSUPPORTED", f"{path} is not a tmpfs or ramfs ({fstype}): refusing to write plaintext there"
        )


def _make_ram_dir(base: str) -> str:
    stamp = own_stamp()  # <ns>-<pid>-<start>; the RAM name orders it <pid>-<start>-<ns>
    ns, pid, start = stamp.split("-") if stamp else ("0", str(os.getpid()), "0")
    alnum = string.ascii_letters + string.digits
    for _ in range(100):
        rand = "".join(alnum[b % len(alnum)] for b in os.urandom(6))
        path = os.path.join(base, f"tensorseal-exec-outputs-{pid}-{start}-{ns}-{rand}")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        os.chmod(path, 0o700)
        return path
    raise error("E_IO", f"cannot create a directory in {base}")


def _sweep_dead(base: str) -> None:
    """RAM directories of dead owners (a SIGKILLed script or exec) of this user: wiped."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        m = _RAM_NAME.match(name)
        if not m or may_be_alive(m[4], int(m[2]), m[3]):
            continue
        path = os.path.join(base, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
            wipe_tree(path)


def _list_outputs(root: str) -> tuple[list[tuple[str, os.stat_result]], list[tuple[str, str]]]:
    files: list[tuple[str, os.stat_result]] = []
    refused: list[tuple[str, str]] = []

    def walk(rel: str) -> None:
        for name in sorted(os.listdir(os.path.join(root, rel))):
            path = f"{rel}/{name}" if rel else name
            if path == MANIFEST_NAME:
                refused.append((path, "the name is reserved for the manifest"))
                continue
            if "\\" in path or len(path) > 4096:
                refused.append((path, "the name cannot be stored (backslash or too long)"))
                continue
            st = os.lstat(os.path.join(root, path))
            if stat.S_ISDIR(st.st_mode):
                walk(path)
            elif stat.S_ISREG(st.st_mode):
                files.append((path, st))
            else:
                refused.append((path, _kind(st)))

    walk("")
    files.sort(key=lambda f: f[0])
    return files, refused


def _kind(st: os.stat_result) -> str:
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link, not followed"
    if stat.S_ISFIFO(st.st_mode):
        return "a FIFO"
    if stat.S_ISSOCK(st.st_mode):
        return "a socket"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return "a device"
    return "not a regular file"


def _seal_into(
    ram: str,
    files: list[tuple[str, os.stat_result]],
    target: str,
    recipients: Sequence[Recipient],
    force: bool,
) -> None:
    parent = os.path.dirname(target)
    remove_stale_temps(parent)
    head, base = os.path.split(temp_path_for(target))
    tmp = os.path.join(head, "." + base)  # hidden, as the CLI's temporary directories
    release = on_interrupt(lambda: wipe_tree(tmp))
    try:
        os.mkdir(tmp, 0o700)
        run = os.urandom(16).hex()
        entries = []
        for path, seen in files:
            dst = os.path.join(tmp, path + SEALED_SUFFIX)
            os.makedirs(os.path.dirname(dst), mode=0o700, exist_ok=True)
            entries.append(_seal_one(os.path.join(ram, path), path, seen, dst, run, recipients))
        manifest = (json.dumps({"version": 1, "model": run, "files": entries}, indent=2) + "\n").encode()
        sealed = seal_bytes(
            manifest,
            recipients,
            content_type=MANIFEST_CONTENT_TYPE,
            context={PATH_CONTEXT: MANIFEST_NAME, MODEL_CONTEXT: run},
        )
        write_file_atomic(os.path.join(tmp, MANIFEST_NAME + SEALED_SUFFIX), sealed)
        for d, _, _ in os.walk(tmp, topdown=False):
            fsync_dir(d)
        _commit(tmp, target, force)
    except BaseException:
        wipe_tree(tmp)
        raise
    finally:
        release()


def _seal_one(
    src: str, path: str, seen: os.stat_result, dst: str, run: str, recipients: Sequence[Recipient]
) -> dict[str, object]:
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_ino, st.st_dev) != (seen.st_ino, seen.st_dev):
            raise error("E_IO", "replaced while the outputs were being sealed").naming(path)
        head = f.read(9)
        f.seek(0)
        digest = hashlib.sha256()

        def pieces() -> Iterator[bytes]:
            while piece := f.read(_PIECE):
                digest.update(piece)
                yield piece

        seal_to_file(
            pieces(),
            dst,
            recipients,
            plaintext_length=st.st_size,
            content_type=SAFETENSORS if _looks_like_safetensors(head, st.st_size) else OCTET_STREAM,
            context={PATH_CONTEXT: path, MODEL_CONTEXT: run},
        )
    return {"path": path, "size": st.st_size, "sha256": digest.hexdigest()}


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 1 < n <= max(0, size - 8) and head[8] == 0x7B


def _commit(tmp: str, target: str, force: bool) -> None:
    if not os.path.lexists(target):
        os.rename(tmp, target)
    else:
        if not force:
            raise error("E_USAGE", "the outputs directory appeared meanwhile: not replacing it").naming(target)
        _check_replaceable(target)
        head, base = os.path.split(temp_path_for(target))
        aside = os.path.join(head, "." + base)
        os.rename(target, aside)
        try:
            os.rename(tmp, target)
        except BaseException:
            os.rename(aside, target)
            raise
        wipe_tree(aside)  # ciphertext only; best effort
    fsync_dir(os.path.dirname(target))

