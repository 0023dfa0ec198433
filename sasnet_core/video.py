"""Video frames with OpenCV: every Nth frame or one per time step, never a silent zero.

A frame that cannot be decoded becomes a ``FrameRecord`` with ``image=None`` and an ``error``
message, so a count-over-time series shows a gap where the video is damaged instead of a count of
zero. A video that cannot be opened at all raises ``VideoReadError``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from sasnet_core.errors import VideoReadError

# After this many undecodable frames in a row we assume the rest of the file is gone.
MAX_CONSECUTIVE_FAILURES = 25


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frame_count: int
    fps: float
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


@dataclass
class FrameRecord:
    index: int
    time_s: float
    image: np.ndarray | None  # H x W x 3 uint8 RGB, or None when the frame is unreadable
    error: str | None = None


def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise VideoReadError("no such video file", path)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoReadError("cannot open video (damaged file or unsupported codec)", path)
    return cap


def open_video(path: str | os.PathLike) -> VideoInfo:
    path = Path(path)
    cap = _open(path)
    try:
        info = VideoInfo(
            path=path,
            frame_count=max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))),
            fps=float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        ok, _ = cap.read()
    finally:
        cap.release()
    if not ok:
        raise VideoReadError("video opens but its first frame cannot be decoded", path)
    return info


def frame_indices(info: VideoInfo, every_n: int = 1, time_step: float | None = None,
                  start: int = 0, stop: int | None = None) -> list[int]:
    """The frame numbers to read: every Nth frame, or the frame nearest each multiple of time_step."""
    stop = info.frame_count if stop is None else min(stop, info.frame_count)
    if time_step is not None:
        if time_step <= 0 or info.fps <= 0:
            raise ValueError("time_step needs a positive step and a video with a known frame rate")
        n = int(math.floor((stop - start - 1) / info.fps / time_step)) + 1 if stop > start else 0
        idx = sorted({start + int(round(i * time_step * info.fps)) for i in range(max(n, 0))})
        return [i for i in idx if i < stop]
    if every_n < 1:
        raise ValueError(f"every_n must be at least 1, got {every_n}")
    return list(range(start, stop, every_n))


def iter_frames(path: str | os.PathLike, every_n: int = 1, time_step: float | None = None,
                start: int = 0, stop: int | None = None) -> Iterator[FrameRecord]:
    """Yield the wanted frames in order. Skipped frames are grabbed, not decoded (fast)."""
    path = Path(path)
    info = open_video(path)
    wanted = frame_indices(info, every_n, time_step, start, stop)
    cap = _open(path)
    fps = info.fps if info.fps > 0 else 0.0
    try:
        pos, failures = 0, 0
        if wanted and wanted[0] > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, wanted[0])
            pos = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
        for index in wanted:
            while pos < index:  # grab without decoding
                if not cap.grab():
                    break
                pos += 1
            ok, frame = cap.read()
            pos += 1
            time_s = index / fps if fps else 0.0
            if not ok or frame is None:
                failures += 1
                yield FrameRecord(index, time_s, None, "frame could not be decoded (damaged or truncated video)")
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    return
                continue
            failures = 0
            yield FrameRecord(index, time_s, np.ascontiguousarray(frame[:, :, ::-1]))
    finally:
        cap.release()


def read_frame(path: str | os.PathLike, index: int) -> np.ndarray:
    """One frame as RGB; raises VideoReadError when it cannot be decoded."""
    for record in iter_frames(path, start=index, stop=index + 1):
        if record.image is None:
            raise VideoReadError(f"frame {index}: {record.error}", path)
        return record.image
    raise VideoReadError(f"frame {index} is past the end of the video", path)
