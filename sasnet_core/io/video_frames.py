"""What is written per video frame: the file name of a stored or saved frame, and the per-frame
counts table.

A frame's files are named ``<video stem>_frame<index, 6 digits>`` (``street_frame000021.png``,
``street_frame000021.npy``): the command line's ``--save-*`` outputs and the frames the app stores
for annotation alike, so they sort in frame order. The app once stored frames as
``street_frame21.png``; those are still found (``stored_frame_image``), never renamed: a
person's annotation next to one points at it.

The counts table is CSV with ``COUNTS_CSV_COLUMNS``: frame index, its time in seconds, the count
(empty when the frame was skipped) and why it was skipped.
"""
from __future__ import annotations

import csv
import glob
import io
import os
from pathlib import Path
from typing import Iterable, Protocol

from sasnet_core.io.atomic import atomic_write_text

FRAME_IMAGE_SUFFIX = ".png"  # lossless: the frame a person annotates is the frame that was counted
COUNTS_CSV_COLUMNS = ("frame", "time_s", "count", "error")


def frame_stem(video_stem: str, index: int) -> str:
    """``<video stem>_frame000021``: the name of frame ``index``'s files, without a suffix."""
    return f"{video_stem}_frame{int(index):06d}"


def frame_files_pattern(video_stem: str, suffix: str) -> str:
    """A glob for every frame file of a video with ``suffix`` (an earlier run's outputs)."""
    return f"{glob.escape(video_stem)}_frame*{suffix}"


def frame_image_path(video: str | os.PathLike, index: int, folder: str | os.PathLike) -> Path:
    """Where frame ``index`` of ``video`` is stored as an image in ``folder``."""
    return Path(folder) / f"{frame_stem(Path(video).stem, index)}{FRAME_IMAGE_SUFFIX}"


def stored_frame_image(video: str | os.PathLike, index: int, folder: str | os.PathLike) -> Path | None:
    """The image of frame ``index`` stored in ``folder`` before, under today's name or the name
    older versions of the app gave it (``street_frame21.png``); None when there is none."""
    current = frame_image_path(video, index, folder)
    older = Path(folder) / f"{Path(video).stem}_frame{int(index)}{FRAME_IMAGE_SUFFIX}"
    return next((p for p in (current, older) if p.is_file()), None)


def default_frames_folder(video: str | os.PathLike) -> Path:
    """``<video stem>_frames`` beside the video: where its frames are stored unless told otherwise."""
    video = Path(video)
    return video.with_name(f"{video.stem}_frames")


class FrameCount(Protocol):
    frame: int
    time_s: float
    count: float | None
    error: str | None


def counts_csv_text(records: Iterable[FrameCount]) -> str:
    """The counts table of ``records`` (frame, time_s, count, error), in frame order."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COUNTS_CSV_COLUMNS)
    for r in sorted(records, key=lambda r: r.frame):
        writer.writerow([r.frame, f"{r.time_s:.3f}", "" if r.count is None else f"{r.count:.3f}",
                         r.error or ""])
    return buf.getvalue()


def write_counts_csv(path: str | os.PathLike, records: Iterable[FrameCount]) -> Path:
    """Write the counts table atomically (a previous table stays whole until the new one is)."""
    path = Path(path)
    atomic_write_text(path, counts_csv_text(records))
    return path
