"""Reading ahead: the next inputs are read (decoded, downscaled) on a background thread while the
current batch is counted, so the model does not wait for files between batches.

Bounded: at most ``depth`` loaded inputs wait beyond those the consumer holds, so a folder of 4K
images or a long video never piles up in memory. The source is pulled one item at a time, in order,
and only when there is room; a source that grows while it is read is followed as long as it has an
item when the reader asks (an exhausted iterator stays exhausted: a queue whose order may still
change until an input's turn should not be read ahead).

Threads: the reader runs no torch code, so the model keeps all its math threads
(``torch.get_num_threads()``). Decoding JPEG or PNG is single-threaded; ``cv2.setNumThreads`` is
left alone because it is process-wide in OpenCV, not per thread, and would also slow the
predictor's and the app's own resizes.

Order and errors: values come out in source order; an exception the source or ``load`` raises comes
out of the iterator at its place, after the values read before it. A stop (the ``CancelToken``, or
closing the iterator) ends the reader before its next input; closing waits for the input it is
reading, so no thread is left behind.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Callable, Iterable, Iterator, TypeVar

from sasnet_core.util.cancel import CancelToken

T = TypeVar("T")
THREAD_NAME = "sasnet-read-ahead"
_POLL_S = 0.05  # how often a consumer waiting for the reader looks at the cancel token
_END = object()


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


def read_ahead(items: Iterable, load: Callable[..., T], depth: int,
               cancel: CancelToken | None = None) -> Iterator[T]:
    """``load(item)`` for every item in order, computed up to ``depth`` items ahead on a thread.

    The thread starts at the first ``next()`` and ends when the items do, on a stop, or when the
    iterator is closed (or dropped).
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    reader = _Reader(iter(items), load, depth, cancel)
    reader.thread.start()
    try:
        yield from reader.values()
    finally:
        reader.stop()


class _Reader:
    def __init__(self, source: Iterator, load: Callable, depth: int, cancel: CancelToken | None):
        self._source, self._load, self._depth, self._cancel = source, load, depth, cancel
        self._ready: deque = deque()  # loaded values (and the end mark) not yet taken
        self._cond = threading.Condition()
        self._stopped = False
        # A daemon: a stream its consumer forgets (never closed) must not keep the process alive.
        self.thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)

    def _halted(self) -> bool:
        return self._stopped or (self._cancel is not None and self._cancel.cancelled)

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while len(self._ready) >= self._depth and not self._halted():
                        self._cond.wait(_POLL_S)
                    if self._halted():
                        return
                try:
                    item = next(self._source)
                except StopIteration:
                    self._put(_END)
                    return
                if self._halted():
                    return
                self._put(self._load(item))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there in order
            self._put(_Raised(exc))
        finally:
            self._source = self._load = None  # a generator source is released on this thread

    def _put(self, value) -> None:
        with self._cond:
            if not self._stopped:
                self._ready.append(value)
                self._cond.notify_all()

    def values(self) -> Iterator:
        while True:
            with self._cond:
                while not self._ready:
                    if self._cancel is not None and self._cancel.cancelled:
                        return
                    if not self.thread.is_alive() and not self._ready:
                        return  # stopped without an end mark (a stop from elsewhere)
                    self._cond.wait(_POLL_S)
                value = self._ready.popleft()
                self._cond.notify_all()
            if value is _END:
                return
            if isinstance(value, _Raised):
                raise value.exc
            yield value

    def stop(self) -> None:
        """End the reader and wait for it (it finishes the input it is reading first)."""
        with self._cond:
            self._stopped = True
            self._ready.clear()  # loaded images are let go at once
            self._cond.notify_all()
        if self.thread is not threading.current_thread():
            self.thread.join()
