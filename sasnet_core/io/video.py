"""Video frames with OpenCV: every Nth frame or one per time step, never a silent zero.

Frames are read until the stream ends, so a video whose container states no length (a Matroska
file without its Duration, as an interrupted recording leaves it) is counted in full, not as 0
frames.

A frame that cannot be decoded becomes a ``FrameRecord`` with ``image=None`` and an ``error``
message, so a count-over-time series shows a gap where the video is damaged instead of a count of
zero. A video that cannot be opened at all raises ``VideoReadError``.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from sasnet_core.util.errors import VideoReadError

# After this many undecodable frames in a row we assume the rest of the file is gone.
MAX_CONSECUTIVE_FAILURES = 25


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frame_count: int  # as the container states it; 0 when it does not (see frame_count_known)
    fps: float
    width: int
    height: int

    @property
    def frame_count_known(self) -> bool:
        """False for a container that does not state its length (an interrupted recording's
        Matroska file has no Duration): its frames are read until the stream ends."""
        return self.frame_count > 0

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


@dataclass
class FrameRecord:
    index: int
    time_s: float
    image: np.ndarray | None  # H x W x 3 uint8 RGB, or None when the frame is unreadable
    error: str | None = None


def capture(path: str | os.PathLike) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` of ``path`` without OpenCV's own lines on stderr (FFmpeg's are silenced
    where the package is imported): our errors name the file and say what is wrong, once."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2.VideoCapture(os.fspath(path))


def _open(path: Path) -> cv2.VideoCapture:
    import stat

    try:
        st = path.stat()
    except FileNotFoundError:
        raise VideoReadError("no such video file", path) from None
    except OSError as exc:
        raise VideoReadError(f"cannot read file ({exc.strerror or exc})", path) from None
    if not stat.S_ISREG(st.st_mode):  # a pipe or device would block or never end
        raise VideoReadError("is a folder, not a video file" if stat.S_ISDIR(st.st_mode)
                             else "not a regular file (a device, pipe or socket)", path)
    if st.st_size == 0:
        raise VideoReadError("file is empty", path)
    cap = capture(path)
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
    """The frame numbers to read: every Nth frame, or the frame nearest each multiple of time_step.
    Only as many as the container states (none where it states no length)."""
    stop = info.frame_count if stop is None else min(stop, info.frame_count)
    wanted = _wanted(info, every_n, time_step, start)
    out = []
    for index in wanted:
        if index >= stop:
            break
        out.append(index)
    return out


def _wanted(info: VideoInfo, every_n: int, time_step: float | None, start: int) -> Iterator[int]:
    """The wanted frame numbers from ``start`` on, without end."""
    if time_step is not None:
        if not time_step > 0:
            raise ValueError(f"time_step must be more than 0, got {time_step}")
        if info.fps <= 0:
            raise VideoReadError("the video states no frame rate, so frames cannot be chosen by time; "
                                 "choose them by number instead", info.path)
        last = None
        for k in itertools.count():
            index = start + int(round(k * time_step * info.fps))
            if index != last:
                yield index
            last = index
    if every_n < 1:
        raise ValueError(f"every_n must be at least 1, got {every_n}")
    yield from itertools.count(start, every_n)


def iter_frames(path: str | os.PathLike, every_n: int = 1, time_step: float | None = None,
                start: int = 0, stop: int | None = None) -> Iterator[FrameRecord]:
    """Yield the wanted frames in order. Skipped frames are grabbed, not decoded (fast).

    Frames are read until the stream ends (or ``stop``), not only as many as the container
    states: a container may state no length or a wrong one. A frame that cannot be read within
    the stated length is a damaged frame (a record with an error); past it, the end.
    """
    path = Path(path)
    info = open_video(path)
    wanted = _wanted(info, every_n, time_step, start)
    cap = _open(path)
    fps = info.fps if info.fps > 0 else 0.0
    try:
        pos, failures = 0, 0
        first = next(wanted)
        if first > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, first)
            pos = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
        for index in itertools.chain([first], wanted):
            if stop is not None and index >= stop:
                return
            ok = True
            while pos < index and ok:  # grab without decoding
                ok = cap.grab()
                pos += 1
            if ok:
                ok, frame = cap.read()
                pos += 1
            time_s = index / fps if fps else 0.0
            if ok and frame is not None:
                failures = 0
                yield FrameRecord(index, time_s, np.ascontiguousarray(frame[:, :, ::-1]))
                continue
            if index >= info.frame_count:
                return  # the stream ended where (or after) the container said
            failures += 1
            yield FrameRecord(index, time_s, None, "frame could not be decoded (damaged or truncated video)")
            if failures >= MAX_CONSECUTIVE_FAILURES:
                return
            if pos < index + 1:
                pos = index + 1
    finally:
        cap.release()


def count_frames(path: str | os.PathLike, cancel=None) -> int:
    """The number of frames the stream really holds, by reading it to its end (every frame is
    demuxed and decoded, so this takes a while on a long video: run it off the GUI thread). For a
    container that states no length (``VideoInfo.frame_count_known`` is False). ``cancel``: a
    callable returning True to give up, which returns the frames counted so far."""
    cap = _open(Path(path))
    n = 0
    try:
        while cap.grab():
            n += 1
            if cancel is not None and n % 64 == 0 and cancel():
                break
    finally:
        cap.release()
    return n


def read_frame(path: str | os.PathLike, index: int) -> np.ndarray:
    """One frame as RGB; raises VideoReadError when it cannot be decoded."""
    for record in iter_frames(path, start=index, stop=index + 1):
        if record.image is None:
            raise VideoReadError(f"frame {index}: {record.error}", path)
        return record.image
    raise VideoReadError(f"frame {index} is past the end of the video", path)
