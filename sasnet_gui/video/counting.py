"""Count every Nth frame of a video (worker generator), store a frame for annotation.

These functions hold no Qt: the panel runs ``count_video`` with superqt's ``thread_worker`` and
``store_frame`` with ``create_worker``. Counting is the core engine's (``count_stream``); a stop
sets the ``CancelToken`` given to ``count_video`` and takes effect within a second, inside a frame.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from sasnet_core.annotations.annotation import SOURCE_MODEL, Annotation, save_annotation
from sasnet_core.annotations.store import annotation_file_for, find_annotation_file
from sasnet_core.engine.counting import (
    CountResult,
    count_stream,
    describe_failure,
    video_frames,
)
from sasnet_core.io.imageio import write_image
from sasnet_core.io.video import frame_indices, open_video
from sasnet_core.io.video_frames import frame_image_path, stored_frame_image
from sasnet_core.util.cancel import CancelToken
from sasnet_core.util.errors import SASNetError


class WorkerFailure(Exception):
    """A failure inside a worker generator.

    superqt's generator worker treats a RuntimeError (what torch raises for out-of-memory and
    device errors) as "the worker was deleted" and only warns; re-raised as this type, it
    reaches the ``errored`` signal and the person sees it.
    """


def count_video(predictor, path: str | os.PathLike, every_n: int = 1, batch_size: int = 1,
                cancel: CancelToken | None = None) -> Iterator[tuple[int, int, list[CountResult]]]:
    """Yield (done, total, new results) after each batch of frames: every ``every_n``-th frame.
    A skipped frame is a result with ``count`` None and ``error`` saying why."""
    try:
        total = len(frame_indices(open_video(path), every_n=every_n))
        yield 0, total, []
        done, out = 0, []
        frames = video_frames(path, every_n=every_n)
        for r in count_stream(predictor, frames, batch_size=batch_size, cancel=cancel, maps=False,
                              spare_core=True):
            out.append(r)
            if r.skipped or len(out) >= batch_size:  # a batch's results arrive together
                done += len(out)
                yield done, total, out
                out = []
        if out:
            done += len(out)
            yield done, total, out
        if cancel is not None and cancel.cancelled:
            yield done, total, []  # the runner notices a stop at a yield (superqt emits ``aborted`` there)
    except SASNetError:
        raise
    except Exception as exc:  # noqa: BLE001 - named for the person, see WorkerFailure
        raise WorkerFailure(f"{path}: counting failed: {describe_failure(exc)}") from exc


def _model_heads(predictor, rgb: np.ndarray, what: str) -> np.ndarray:
    try:
        (result,) = count_stream(predictor, [rgb], maps=False, heads=True, spare_core=True)
    except SASNetError:
        raise
    except Exception as exc:  # noqa: BLE001 - named for the person, see WorkerFailure
        raise WorkerFailure(f"{what}: the model failed: {describe_failure(exc)}") from exc
    if result.skipped:
        raise WorkerFailure(f"{what}: {result.error}")
    return result.heads


@dataclass(frozen=True)
class StoredFrame:
    image: Path
    annotation: Path
    created: bool  # False: an annotation existed already and was left as it is
    points: int


def store_frame(rgb: np.ndarray, video: str | os.PathLike, index: int, time_s: float,
                folder: str | os.PathLike, predictor=None, model_name: str | None = None
                ) -> StoredFrame:
    """Write the frame as a PNG and its annotation (the model's heads as SOURCE_MODEL points).

    A frame stored before keeps its annotation: a person may have corrected it since. One an
    older version stored under its older name is found too (``io.video_frames``).
    """
    earlier = stored_frame_image(video, index, folder)
    ann_path = find_annotation_file(earlier) if earlier is not None else None
    if ann_path is not None:
        return StoredFrame(earlier, ann_path, False, -1)
    image = frame_image_path(video, index, folder)
    heads = np.zeros((0, 2)) if predictor is None else _model_heads(predictor, rgb, f"{video}: frame {index}")
    try:
        image.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkerFailure(f"{image.parent}: cannot create the folder ({exc.strerror or exc})") from None
    write_image(image, rgb)
    ann_path = annotation_file_for(image)  # beside the frame, or in a project if read-only
    h, w = rgb.shape[:2]
    ann = Annotation(
        image_path=str(image), image_size=(w, h), points=heads,
        sources=np.full(len(heads), SOURCE_MODEL, np.uint8), reviewed=False,
        extra={"video_source": {"video": str(Path(video).resolve()), "frame": int(index),
                                "time_s": round(float(time_s), 3), "model": model_name}})
    save_annotation(ann, ann_path)
    return StoredFrame(image, ann_path, True, len(heads))
