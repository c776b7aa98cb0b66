"""Opening a run of whole chunks straight into their place in a destination buffer, on
several threads.

pyca/cryptography releases the GIL inside AES-GCM from release 50 on (48 held it), and
``os.preadv`` releases it while the kernel copies, so worker threads decrypt in parallel.
Each worker reads a few sealed chunks into its own scratch buffer, reused from read to read
(no allocation per chunk), and opens each one with ``decrypt_into`` into its place in the
destination: the plaintext is written once, where the caller wants it. Before each read the
worker faults in the destination pages that read will fill, in one call
(:mod:`tensorseal.prefault`).

The workers are plain threads taking tasks in turn (``concurrent.futures`` would import
``logging`` into every model load). Every worker finishes (or stops at its next read once
another failed, or the caller was interrupted) before :func:`open_whole_chunks` returns or
raises, so no thread writes into the destination after the call; the error raised is the one
of the lowest failing task that ran.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from .errors import fail
from .format.chunked import TAG_SIZE, ChunkCipher
from .prefault import populator

TASK_BYTES = 8 << 20
"""Plaintext per task: large enough to amortise the task's overhead, small enough that the
workers stay balanced (a 512 MiB model makes 64 tasks)."""
READ_BYTES = 2 << 20
"""Sealed bytes per read: each worker's scratch buffer (stays in cache while it is opened)."""
MAX_DEFAULT_THREADS = 8

ReadAt = Callable[[int, memoryview], None]
Count = Callable[[int, int], None]


def gil_free_aead() -> bool:
    """Whether the installed pyca/cryptography releases the GIL in AES-GCM (>= 50)."""
    from cryptography import __version__

    try:
        return int(__version__.split(".")[0]) >= 50
    except ValueError:  # pragma: no cover - a version string pyca never used
        return False


def default_threads() -> int:
    """Decryption threads when the caller names none: the CPUs this process may use, at most
    8 (AES-GCM runs at several GiB/s per core: more threads only wait on memory), or 1 when
    the AEAD holds the GIL."""
    if not gil_free_aead():
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_THREADS, cpus))


def check_threads(threads: int | None) -> int:
    """``threads`` or the default; ``E_USAGE`` below 1."""
    if threads is None:
        return default_threads()
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        fail("E_USAGE", f"threads must be a positive integer, got {threads!r}")
    return threads


def open_whole_chunks(
    cipher: ChunkCipher,
    read_at: ReadAt,
    base: int,
    chunk_size: int,
    first: int,
    stop: int,
    out: memoryview,
    threads: int,
    count: Count,
) -> None:
    """Opens the full chunks ``first .. stop - 1`` into ``out``.

    Args:
        cipher: the payload's keys (each worker uses its own copy).
        read_at: ``read_at(offset, buf)`` fills ``buf`` from the sealed file at ``offset``
            (raising ``E_TRUNCATED``/``E_IO`` when it cannot).
        base: file offset of sealed chunk 0.
        chunk_size: plaintext bytes per chunk (every chunk here is full).
        first, stop: the chunks to open.
        out: exactly ``(stop - first) * chunk_size`` bytes.
        threads: workers; 1 opens them on the calling thread.
        count: ``count(chunks, plaintext_bytes)`` after each task, failures included.
    """
    sealed = chunk_size + TAG_SIZE
    per_task = max(1, TASK_BYTES // chunk_size)
    per_read = max(1, min(READ_BYTES // sealed, stop - first))
    local = threading.local()
    failed = threading.Event()
    populate = populator(out)

    def run(lo: int, hi: int) -> None:
        if failed.is_set():
            return
        aead = getattr(local, "cipher", None)
        if aead is None:
            aead = local.cipher = cipher.copy()
            local.scratch = memoryview(bytearray(per_read * sealed))
        scratch: memoryview = local.scratch
        opened = 0
        try:
            for at in range(lo, hi, per_read):
                if failed.is_set():
                    return
                n = min(per_read, hi - at)
                populate((at - first) * chunk_size, (at - first + n) * chunk_size)
                read_at(base + at * sealed, scratch[: n * sealed])
                for k in range(n):
                    i = at + k - first
                    opened += 1
                    aead.open_into(at + k, scratch[k * sealed : (k + 1) * sealed], out[i * chunk_size : (i + 1) * chunk_size])
        except BaseException:
            failed.set()
            raise
        finally:
            count(opened, opened * chunk_size)

    tasks = [(lo, min(lo + per_task, stop)) for lo in range(first, stop, per_task)]
    if threads <= 1 or len(tasks) <= 1:
        local.cipher = cipher  # the calling thread needs no copy of its own
        local.scratch = memoryview(bytearray(per_read * sealed))
        for lo, hi in tasks:
            run(lo, hi)
        return
    errors: dict[int, BaseException] = {}
    todo = iter(enumerate(tasks))
    take = threading.Lock()

    def worker() -> None:
        while not failed.is_set():
            with take:
                item = next(todo, None)
            if item is None:
                return
            k, (lo, hi) = item
            try:
                run(lo, hi)
            except BaseException as e:  # run has set `failed`: the others stop at their next read
                errors[k] = e
                return

    workers = [
        threading.Thread(target=worker, name=f"tensorseal-open_{n}", daemon=True)
        for n in range(min(threads, len(tasks)))
    ]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    except BaseException:  # an interrupt while starting or waiting: stop the workers, wait for them
        failed.set()
        for w in workers:
            try:
                w.join()
            except RuntimeError:  # not started yet: it will find `failed` set and take no task
                pass
        raise
    if errors:
        raise errors[min(errors)]
