"""Cooperative cancellation: a token another thread sets, and checkpoints where work may stop.

A stop must take effect within about a second even in the middle of one large image, so the
checks sit inside the forward pass (before every convolution, see ``Predictor``), between tiles
and between images. The token is bound to the counting thread (``cancellable``), not passed
through every call, so a checkpoint deep in the model needs no extra argument and two threads
sharing one model each answer to their own token.
"""
from __future__ import annotations

import contextlib
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
