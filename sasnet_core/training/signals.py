"""Cooperative stop: SIGINT / SIGTERM (or a stop file) ask the loop to stop after the current step.

The loop then saves its last checkpoint and ends normally, so a cancelled run leaves a valid model.
A second SIGINT while stopping raises KeyboardInterrupt as usual (for a run that hangs). The stop
file exists for platforms where SIGTERM cannot be caught (Windows) and for callers that would
rather touch a file than send a signal.

Data-loader processes ignore both signals (``ignore_stop_signals``): ``timeout``, systemd, job
schedulers and Ctrl-C signal the whole process group, and a loader process that died of it made
torch raise "DataLoader worker ... killed by signal" in the middle of a step, before any
checkpoint. The training process stops them itself when its loader is closed, and ends any
that are left when it exits (``end_loader_processes_at_exit``).
"""
from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import threading


class StopRequest:
    """Context manager installing the handlers (main thread only; elsewhere it just polls)."""

    def __init__(self, stop_file: str | os.PathLike | None = None):
        self.reason: str | None = None
        self.stop_file = os.fspath(stop_file) if stop_file else None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.reason = signal.Signals(signum).name

    def request(self, reason: str = "requested") -> None:
        self.reason = self.reason or reason

    @property
    def requested(self) -> bool:
        if self.reason is None and self.stop_file and os.path.exists(self.stop_file):
            self.reason = "stop file"
        return self.reason is not None

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    self._previous[sig] = signal.signal(sig, self._handle)
                except (ValueError, OSError):  # pragma: no cover - unusual platforms
                    pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def ignore_stop_signals(worker_id: int | None = None) -> None:
    """A DataLoader ``worker_init_fn``: SIGINT and SIGTERM are the training process's to handle
    (it stops after the step, then ends its loader processes)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


_EXIT_HOOK = threading.Lock()
_exit_hooked = False


def end_loader_processes_at_exit() -> None:
    """Kill this process's daemonic children when it exits (registered once per process).

    Python's exit ends daemonic children with SIGTERM and then waits for each. Loader processes
    ignore SIGTERM (above), so one whose loader was still referenced at exit (a run that raised,
    its traceback kept by a caller) made the process wait forever after its work was done.
    Handlers registered with ``atexit`` run in reverse order, so this one runs before
    multiprocessing's and leaves it nothing to wait for."""
    global _exit_hooked
    with _EXIT_HOOK:
        if not _exit_hooked:
            atexit.register(_kill_daemonic_children)
            _exit_hooked = True


def _kill_daemonic_children() -> None:
    for child in multiprocessing.active_children():
        if child.daemon:
            child.kill()
            child.join(timeout=5)
