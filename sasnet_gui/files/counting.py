"""Background counting: a queue of image paths and one worker thread that predicts them in turn.

The worker (superqt ``thread_worker`` generator) reads the image, runs the predictor and shrinks
the prediction to what the GUI shows (``CountResult``) before yielding it, so the main thread only
receives small arrays: a density map at most ``DISPLAY_SIDE`` pixels on its long side, the patch
grid and the estimated heads. Cancel stops at the next image boundary (the generator's yield).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal

DISPLAY_SIDE = 512


@dataclass
class CountResult:
    """What the window keeps of one prediction (the full maps are too big to keep per file)."""

    path: str
    count: float
    density: np.ndarray  # (h', w') float32 people per display pixel; sums to ``count``
    confidence: np.ndarray  # (5, gh, gw) float32 selection weights P1..P5
    patch_rows: np.ndarray  # (gh + 1,) edges in image pixels
    patch_cols: np.ndarray  # (gw + 1,)
    image_size: tuple[int, int]  # (width, height)
    heads: np.ndarray  # (N, 2) estimated head points
    elapsed_s: float = 0.0

    @property
    def level_map(self) -> np.ndarray:
        """(gh, gw) uint8 selected level 1..5."""
        return (self.confidence.argmax(0) + 1).astype(np.uint8)

    def patch_at(self, x: float, y: float):
        i = int(np.searchsorted(self.patch_rows, y, side="right")) - 1
        j = int(np.searchsorted(self.patch_cols, x, side="right")) - 1
        if 0 <= i < len(self.patch_rows) - 1 and 0 <= j < len(self.patch_cols) - 1:
            return i, j
        return None

    def levels_of(self, points: np.ndarray) -> np.ndarray:
        """(N,) uint8 level 1..5 of the patch under each point (0 off the grid)."""
        if len(points) == 0:
            return np.zeros(0, np.uint8)
        i = np.searchsorted(self.patch_rows, points[:, 1], side="right") - 1
        j = np.searchsorted(self.patch_cols, points[:, 0], side="right") - 1
        ok = (i >= 0) & (i < len(self.patch_rows) - 1) & (j >= 0) & (j < len(self.patch_cols) - 1)
        out = np.zeros(len(points), np.uint8)
        out[ok] = self.level_map[i[ok], j[ok]]
        return out

    def patch_count(self, i: int, j: int) -> float:
        """People in patch (i, j), from the display density (mass-preserving, so close enough)."""
        sy = self.density.shape[0] / self.image_size[1]
        sx = self.density.shape[1] / self.image_size[0]
        r0, r1 = int(round(self.patch_rows[i] * sy)), int(round(self.patch_rows[i + 1] * sy))
        c0, c1 = int(round(self.patch_cols[j] * sx)), int(round(self.patch_cols[j + 1] * sx))
        return float(self.density[r0:max(r1, r0 + 1), c0:max(c1, c0 + 1)].sum(dtype=np.float64))

    def count_in_mask(self, mask_fn) -> float:
        """Model count inside a region: ``mask_fn(shape, scale_x, scale_y)`` gives the display mask."""
        sx = self.density.shape[1] / self.image_size[0]
        sy = self.density.shape[0] / self.image_size[1]
        return float(self.density[mask_fn(self.density.shape, sx, sy)].sum(dtype=np.float64))


def summarize(prediction, path: str = "", display_side: int = DISPLAY_SIDE) -> CountResult:
    """Shrink a ``Prediction`` to a ``CountResult`` (runs in the worker thread)."""
    dens = prediction.density
    h, w = dens.shape
    s = min(1.0, display_side / max(h, w))
    if s < 1.0:
        size = (max(1, round(w * s)), max(1, round(h * s)))
        small = cv2.resize(dens, size, interpolation=cv2.INTER_AREA)
        total, got = float(dens.sum(dtype=np.float64)), float(small.sum(dtype=np.float64))
        if got > 0:
            small *= total / got  # INTER_AREA averages; rescale so the mass (the count) is kept
    else:
        small = dens.copy()
    return CountResult(
        path=path, count=float(prediction.count), density=np.ascontiguousarray(small, np.float32),
        confidence=np.asarray(prediction.confidence, np.float32), patch_rows=prediction.patch_rows.copy(),
        patch_cols=prediction.patch_cols.copy(), image_size=tuple(prediction.image_size),
        heads=np.asarray(prediction.heads, np.float64), elapsed_s=float(prediction.elapsed_s),
    )


def _count_worker(queue: "CountingQueue", predictor):
    from sasnet_core.errors import SASNetError
    from sasnet_core.imageio import read_image

    while True:
        path = queue._pop()
        if path is None:
            return
        yield ("started", path, None)
        t0 = time.perf_counter()
        try:
            pred = predictor.predict(read_image(path))
            result = summarize(pred, path)
            result.elapsed_s = time.perf_counter() - t0
            yield ("done", path, result)
        except SASNetError as exc:
            yield ("failed", path, exc.detail)
        except (RuntimeError, ValueError, MemoryError) as exc:  # e.g. out of memory on a huge image
            yield ("failed", path, f"{type(exc).__name__}: {exc}")


class CountingQueue(QObject):
    """Counts queued images one after another off the GUI thread."""

    started = Signal(str)
    counted = Signal(str, object)  # path, CountResult
    failed = Signal(str, str)  # path, message
    idle = Signal()  # the queue ran dry or was cancelled
    progress = Signal(int, int)  # done, total since the queue was last idle

    def __init__(self, parent=None):
        super().__init__(parent)
        self._predictor = None
        self._pending: deque[str] = deque()
        self._lock = threading.Lock()
        self._worker = None
        self._done = 0
        self._total = 0

    def set_predictor(self, predictor) -> None:
        """A new model: what is queued is counted with it (the running image finishes first)."""
        self._predictor = predictor
        if predictor is None:
            self.cancel()
        else:
            self._ensure_running()

    def predictor(self):
        return self._predictor

    def enqueue(self, paths, front: bool = False) -> None:
        with self._lock:
            for p in [str(p) for p in paths]:
                if p in self._pending:
                    if not front:
                        continue
                    self._pending.remove(p)
                else:
                    self._total += 1
                if front:
                    self._pending.appendleft(p)
                else:
                    self._pending.append(p)
        self._ensure_running()

    def pending(self) -> list[str]:
        with self._lock:
            return list(self._pending)

    def is_running(self) -> bool:
        return self._worker is not None

    def cancel(self) -> None:
        """Drop what is queued and stop after the image being counted."""
        with self._lock:
            self._pending.clear()
        if self._worker is not None:
            self._worker.quit()

    def _pop(self) -> str | None:
        with self._lock:
            return self._pending.popleft() if self._pending else None

    def _ensure_running(self) -> None:
        if self._worker is not None or self._predictor is None:
            return
        with self._lock:
            if not self._pending:
                return
        from superqt.utils import thread_worker

        worker = thread_worker(_count_worker, start_thread=False)(self, self._predictor)
        worker.yielded.connect(self._on_yielded)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()

    def _on_yielded(self, item) -> None:
        kind, path, payload = item
        if kind == "started":
            self.started.emit(path)
            return
        self._done += 1
        if kind == "done":
            self.counted.emit(path, payload)
        else:
            self.failed.emit(path, payload)
        self.progress.emit(self._done, self._total)

    def _on_finished(self) -> None:
        self._worker = None
        with self._lock:
            more = bool(self._pending)
        if more and self._predictor is not None:  # queued after the worker saw an empty queue
            self._ensure_running()
            return
        self._done = self._total = 0
        self.idle.emit()

    def wait_idle(self, timeout_s: float = 30.0) -> None:
        """Block until the worker is gone (used when the window closes)."""
        if self._worker is not None:
            self._worker.quit()
            from PySide6.QtCore import QThreadPool

            QThreadPool.globalInstance().waitForDone(int(timeout_s * 1000))
