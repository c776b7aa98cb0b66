"""Interrupts while a named temporary output exists (the TypeScript engine's ``interrupt.ts``).

An output with a name on disk (a temporary file, where the file system has no O_TMPFILE)
registers a synchronous cleanup here until it is renamed into place or removed. The cleanups
run:

- on an exception, including KeyboardInterrupt: not here, the writer's own ``try``/``finally``
  removes its temporary file, whoever raised;
- on SIGTERM, SIGHUP (and SIGINT where the host set it to the default action) whose action is
  the default one, i.e. the process would die without unwinding: while a cleanup is
  registered, a handler runs them and the process then dies of that same signal, so its parent
  sees what happened (-15 in ``subprocess``, 143 in a shell). A signal the host handles itself
  is left alone (its handler decides; if it raises, ``finally`` cleans up). Python lets only
  the main thread set handlers, so the handler is installed when the main thread opens an
  output; while it is there it covers outputs of every thread. An output opened only from
  other threads is left to the next run (temps.py) if such a signal kills the process;
- at interpreter exit, for an output nobody committed or aborted.

A forked child does not inherit its parent's cleanups: the temporary files are the parent's.
An anonymous (O_TMPFILE) output needs none of this: the kernel frees it with the process.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from collections.abc import Callable

Cleanup = Callable[[], None]

_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
_cleanups: dict[int, Cleanup] = {}
_installed: set[int] = set()  # signals whose default action this module replaced
_lock = threading.RLock()
_next_id = 0


def on_interrupt(cleanup: Cleanup) -> Callable[[], None]:
    """Registers ``cleanup`` until the returned release function is called."""
    global _next_id
    with _lock:
        _next_id += 1
        key = _next_id
        _cleanups[key] = cleanup
        _install()

    def release() -> None:
        with _lock:
            _cleanups.pop(key, None)
            _uninstall_if_idle()

    return release


def run_cleanups() -> None:
    """Runs (and forgets) every registered cleanup; best effort, one failing stops no other."""
    while _cleanups:
        try:
            _, cleanup = _cleanups.popitem()
        except KeyError:
            break
        try:
            cleanup()
        except Exception:
            pass  # nothing better to do while exiting


def _on_signal(signum: int, frame: object) -> None:
    run_cleanups()
    # Die of the signal itself, with its default action, as if no handler had been there.
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)
    os._exit(128 + signum)  # only if the signal did not end the process


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _install() -> None:
    if not _on_main_thread():
        return
    for s in _SIGNALS:
        if s in _installed:
            continue
        try:
            if signal.getsignal(s) is not signal.SIG_DFL:
                continue  # the host's (or Python's KeyboardInterrupt): it decides
            signal.signal(s, _on_signal)
        except (ValueError, OSError):
            continue  # not the main interpreter
        _installed.add(s)


def _uninstall_if_idle() -> None:
    if _cleanups or not _installed or not _on_main_thread():
        return
    for s in list(_installed):
        _installed.discard(s)
        try:
            if signal.getsignal(s) is _on_signal:  # not if the host replaced it meanwhile
                signal.signal(s, signal.SIG_DFL)
        except (ValueError, OSError):
            pass


def _forget_in_child() -> None:
    global _lock
    _cleanups.clear()
    _lock = threading.RLock()


atexit.register(run_cleanups)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
