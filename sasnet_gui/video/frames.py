"""Decode video frames off the GUI thread for scrubbing and playback.

One reader thread keeps a ``cv2.VideoCapture`` open: reading the next frame during playback is a
plain ``read()``; a jump seeks first. Requests coalesce, newest wins: dragging the slider over
a thousand frames decodes only the frames the thread has time for, never a backlog.
"""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal

from sasnet_core.io.video import capture


class FrameReader(QObject):
    frameReady = Signal(int, object)  # index, (H, W, 3) uint8 RGB
    frameFailed = Signal(int, str)  # index, message naming the file

    def __init__(self, path: str | Path, parent: QObject | None = None):
        super().__init__(parent)
        self.path = Path(path)
        self._cond = threading.Condition()
        self._pending: int | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"frames:{self.path.name}", daemon=True)
        self._thread.start()

    def request(self, index: int) -> None:
        with self._cond:
            self._pending = int(index)
            self._cond.notify()

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- reader thread ---------------------------------------------------------------------
    def _run(self) -> None:
        cap = capture(self.path)
        pos = 0  # index of the frame the next read() returns
        try:
            while True:
                with self._cond:
                    while self._pending is None and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    index, self._pending = self._pending, None
                frame = None
                if cap.isOpened():
                    if index != pos:
                        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
                    ok, frame = cap.read()
                    pos = index + 1 if ok else -1  # after a failure, seek again next time
                    if not ok:
                        frame = None
                if self._closed:
                    return
                if frame is None:
                    self.frameFailed.emit(index, f"{self.path}: frame {index} could not be decoded "
                                                 "(damaged or truncated video)")
                else:
                    self.frameReady.emit(index, np.ascontiguousarray(frame[:, :, ::-1]))
        finally:
            cap.release()
