"""Background counting of the file list: a queue of image paths that one worker thread feeds to
the counting engine (``sasnet_core.engine.counting.count_stream``).

The worker keeps only what the window shows (a density map at most ``DISPLAY_SIDE`` pixels on its
long side, the patch grid and the estimated heads), so the GUI thread receives small arrays.
Stop and quit take effect within a second, also in the middle of a large image: the engine checks
the queue's cancel token before every convolution. Results cross to the GUI thread as queued
signals; once the window is gone, a late result is dropped instead of raising. An image counted in
tiles reports each tile (``tileProgress``), so a photo that takes minutes says how far it is.
"""
from __future__ import annotations

import threading
from collections import deque

from PySide6.QtCore import QCoreApplication, QObject, Signal

from sasnet_core.engine.counting import DISPLAY_SIDE, count_stream, describe_failure
from sasnet_core.util.cancel import CancelToken

QUIT_WAIT_S = 1.0  # how long closing the window waits for the worker to reach a checkpoint


class CountingQueue(QObject):
    """Counts queued images one after another off the GUI thread."""

    started = Signal(str)
    counted = Signal(str, object)  # path, CountResult
    failed = Signal(str, str)  # path, message
    stopped = Signal()  # a stop (``cancel``) took effect: the worker has ended; ``idle`` follows
    idle = Signal()  # the queue ran dry or was stopped
    progress = Signal(int, int)  # done, total since the queue was last idle
    tileProgress = Signal(str, object)  # path, sasnet_core.util.progress.TileProgress of the image being counted
    _report = Signal(object, str, str, object)  # from the worker: token, kind, path, payload

    def __init__(self, parent=None):
        super().__init__(parent)
        self._predictor = None
        self._pending: deque[str] = deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._token: CancelToken | None = None
        self._in_flight: str | None = None
        self._stop_requested = False
        self._closed = False
        # The progress since the queue was last idle, over distinct images: ``_batch`` holds every
        # image queued in that time (queued, being counted or counted), ``_counted`` those counted.
        # An image queued again while it waits or is being counted is the same work, not more.
        self._batch: set[str] = set()
        self._counted: set[str] = set()
        self._report.connect(self._on_report)
        app = QCoreApplication.instance()
        if app is not None:  # QApplication.quit() without closing the window stops counting too
            app.aboutToQuit.connect(self.shutdown)

    def set_predictor(self, predictor) -> None:
        """A new model: what is queued is counted with it; the image being counted is stopped
        at once and counted again with the new model."""
        self._predictor = predictor
        if predictor is None:
            self.cancel()
            return
        with self._lock:
            if self._token is not None and not self._token.cancelled:
                if self._in_flight is not None and self._in_flight not in self._pending:
                    self._pending.appendleft(self._in_flight)
                self._token.cancel()
        self._ensure_running()

    def predictor(self):
        return self._predictor

    def enqueue(self, paths, front: bool = False) -> None:
        with self._lock:
            for p in [str(p) for p in paths]:
                if p == self._in_flight and self._token is not None and not self._token.cancelled:
                    continue  # being counted with this model: its result is coming (a large image
                    # asked for again as it is shown would otherwise be counted twice, minutes each)
                if p in self._pending:
                    if not front:
                        continue
                    self._pending.remove(p)
                self._batch.add(p)
                self._counted.discard(p)  # counted before in this batch: it is counted again
                if front:
                    self._pending.appendleft(p)
                else:
                    self._pending.append(p)
        self._ensure_running()

    def pending(self) -> list[str]:
        with self._lock:
            return list(self._pending)

    def is_running(self) -> bool:
        return self._thread is not None

    def cancel(self) -> None:
        """Drop what is queued and stop the image being counted (within about a second)."""
        with self._lock:
            self._pending.clear()
            self._batch.clear()  # what is queued after a stop is a new batch
            self._counted.clear()
            if self._token is not None and not self._token.cancelled:
                self._token.cancel()
                self._stop_requested = True

    def shutdown(self, timeout_s: float = QUIT_WAIT_S) -> None:
        """Stop for good (the window closes): cancel, wait up to ``timeout_s`` for the worker,
        and start nothing afterwards."""
        self._closed = True
        self.cancel()
        self.wait_idle(timeout_s)

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Block until the worker thread has ended; False if it is still running after the wait."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True

    # -- the worker ------------------------------------------------------------------------------
    def _ensure_running(self) -> None:
        if self._thread is not None or self._predictor is None or self._closed:
            return
        with self._lock:
            if not self._pending:
                return
            self._token = token = CancelToken()
        self._thread = threading.Thread(target=self._work, args=(self._predictor, token),
                                        name="sasnet-counting")
        self._thread.start()

    def _pop(self, token: CancelToken) -> str | None:
        # Under the lock with the cancel check, so a path is never taken by a worker being stopped.
        with self._lock:
            self._in_flight = None if token.cancelled or not self._pending else self._pending.popleft()
            return self._in_flight

    def _work(self, predictor, token: CancelToken) -> None:
        # Not a daemon thread: at exit Python waits for it (it is past a checkpoint within a second)
        # rather than freezing it inside a torch call, which can abort the process.
        def pull():
            while (path := self._pop(token)) is not None:
                self._send(token, "started", path, None)
                yield path

        try:
            while not token.cancelled:
                try:
                    # read_ahead=0: an image is taken from the queue only when its turn comes,
                    # so one the person opens meanwhile still goes first, and "started" names the
                    # image being counted (``_in_flight``).
                    for r in count_stream(predictor, pull(), batch_size=1, cancel=token, read_ahead=0,
                                          display_side=DISPLAY_SIDE, heads=True, spare_core=True,
                                          on_tile=lambda path, event: self._send(token, "tiles", path, event)):
                        self._send(token, "failed" if r.skipped else "done", r.path, r.error if r.skipped else r)
                    break  # the queue ran dry, or a stop ended the stream
                except Exception as exc:  # noqa: BLE001 - reported for the image being counted; the rest go on
                    path = self._in_flight
                    if path is not None:
                        self._send(token, "failed", path, f"{type(exc).__name__}: {describe_failure(exc)}")
        finally:
            with self._lock:
                self._in_flight = None
            self._send(token, "end", "", None)

    def _send(self, token, kind: str, path: str, payload) -> None:
        try:
            self._report.emit(token, kind, path, payload)
        except RuntimeError:  # the queue was deleted with its window: nobody is listening
            pass

    def _on_report(self, token, kind: str, path: str, payload) -> None:
        if token is not self._token:
            return
        if kind == "end":
            self._finished()
        elif token.cancelled:
            return  # stopped, or counted with a model that was replaced since: not shown
        elif kind == "started":
            self.started.emit(path)
        elif kind == "tiles":
            self.tileProgress.emit(path, payload)
        else:
            with self._lock:
                self._counted.add(path)
                self._batch.add(path)
                done, total = len(self._counted), len(self._batch)
            if kind == "done":
                self.counted.emit(path, payload)
            else:
                self.failed.emit(path, payload)
            self.progress.emit(done, total)

    def _finished(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()  # it sent its last word: only returning is left
        stopped, self._stop_requested = self._stop_requested, False
        with self._lock:
            more = bool(self._pending)
        if more and self._predictor is not None and not self._closed:  # a new model, or queued late
            self._ensure_running()
            return
        with self._lock:
            self._batch.clear()
            self._counted.clear()
        if stopped:
            self.stopped.emit()
        self.idle.emit()
