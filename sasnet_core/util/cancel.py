"""Cooperative cancellation: a token another thread sets, and checkpoints where work may stop.

A stop must take effect within about a second even in the middle of one large image, so the
checks sit inside the forward pass (before every convolution, see ``Predictor``), between tiles
and between images. The token is bound to the counting thread (``cancellable``), not passed
through every call, so a checkpoint deep in the model needs no extra argument and two threads
sharing one model each answer to their own token.
"""
from __future__ import annotations

import contextlib
import signal
import threading


class Cancelled(Exception):
    """The work was stopped on request (not an error: nothing is reported)."""


class CancelToken:
    """Set once, from any thread; the work notices at its next checkpoint."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


_bound = threading.local()


@contextlib.contextmanager
def cancellable(token: CancelToken | None):
    """Bind ``token`` to this thread, so every ``checkpoint()`` inside answers to it."""
    previous = getattr(_bound, "token", None)
    _bound.token = token
    try:
        yield token
    finally:
        _bound.token = previous


def checkpoint() -> None:
    """Raise ``Cancelled`` if this thread's bound token was set (a no-op when none is bound)."""
    token = getattr(_bound, "token", None)
    if token is not None and token.cancelled:
        raise Cancelled()


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop by a signal: SIGINT (Ctrl-C) or SIGTERM (``kill``, ``timeout``,
    systemd, job schedulers). A KeyboardInterrupt, so whatever Ctrl-C cleans up (temp files of
    atomic writes, loader processes) is cleaned up for SIGTERM too."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(signal.Signals(self.signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


def interrupted_by(exc: KeyboardInterrupt) -> Interrupted:
    """``exc`` as an :class:`Interrupted` (a plain KeyboardInterrupt is SIGINT's)."""
    return exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)


@contextlib.contextmanager
def signals_interrupt():
    """While inside, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread (SIGTERM's
    default would end the process on the spot, skipping every ``finally``). Elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame):
        raise Interrupted(signum)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handle)
        except (ValueError, OSError):  # pragma: no cover - unusual platforms
            pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: installed outside Python, cannot be put back
                signal.signal(sig, handler)
