"""Cooperative stop: SIGINT / SIGTERM (or a stop file) ask the loop to stop after the current step.

The loop then saves its last checkpoint and ends normally, so a cancelled run leaves a valid model.
A second SIGINT while stopping raises KeyboardInterrupt as usual (for a run that hangs). The stop
file exists for platforms where SIGTERM cannot be caught (Windows) and for callers that would
rather touch a file than send a signal.

Data-loader processes ignore both signals (``ignore_stop_signals``): ``timeout``, systemd, job
schedulers and Ctrl-C signal the whole process group, and a loader process that died of it made
torch raise "DataLoader worker ... killed by signal" in the middle of a step, before any
checkpoint. The training process stops them itself when its loader is closed: the run closes
its batches when it ends, also when a step raised (``loop._Run._steps``), because Python's exit
ends such processes with SIGTERM, which they ignore, and then waits for them forever.
"""
from __future__ import annotations

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
