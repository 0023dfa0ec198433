"""Count every Nth frame of a video (worker generator), export counts, store a frame for annotation.

These functions hold no Qt: the panel runs ``count_video`` with superqt's ``thread_worker`` (each
``yield`` is where a cancel takes effect) and ``store_frame`` with ``create_worker``.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from sasnet_core.annotation import SOURCE_MODEL, Annotation, save_annotation
from sasnet_core.annotation_store import annotation_file_for, find_annotation_file
from sasnet_core.atomic import atomic_write_text
from sasnet_core.errors import SASNetError
from sasnet_core.imageio import write_image
from sasnet_core.video import iter_frames, open_video, frame_indices

CSV_COLUMNS = ("frame", "time_s", "count", "error")


@dataclass(frozen=True)
class CountRecord:
    index: int
    time_s: float
    count: float | None  # None: the frame was skipped (``error`` says why)
    error: str | None = None


class WorkerFailure(Exception):
    """A failure inside a worker generator.

    superqt's generator worker treats a RuntimeError (what torch raises for out-of-memory and
    device errors) as "the worker was deleted" and only warns; re-raised as this type, it
    reaches the ``errored`` signal and the person sees it.
    """


@contextlib.contextmanager
def leave_a_core_free(predictor):
    """On the CPU, run this thread's torch ops on all cores but one, so the GUI thread always
    finds a core (with every core busy, its 10 ms timer was measured up to 170 ms late).

    ``torch.set_num_threads`` is per thread with the OpenMP backend, and pool threads are
    reused, so the old value is put back.
    """
    device = getattr(getattr(predictor, "device", None), "type", None)
    cores = os.cpu_count() or 1
    if device != "cpu" or cores < 2:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(before, cores - 1)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def count_video(predictor, path: str | os.PathLike, every_n: int = 1, batch_size: int = 1
                ) -> Iterator[tuple[int, int, list[CountRecord]]]:
    """Yield (done, total, new records) after each batch of frames: every ``every_n``-th frame."""
    with leave_a_core_free(predictor):
        yield from _count_video(predictor, path, every_n, batch_size)


def _count_video(predictor, path, every_n: int, batch_size: int):
    try:
        info = open_video(path)
        total = len(frame_indices(info, every_n=every_n))
        done, batch = 0, []
        yield 0, total, []
        for rec in iter_frames(path, every_n=every_n):
            if rec.image is None:
                out = [CountRecord(rec.index, rec.time_s, None, rec.error)]
            else:
                batch.append(rec)
                if len(batch) < batch_size:
                    continue
                out = _predict(predictor, batch)
                batch = []
            done += len(out)
            yield done, total, out
        if batch:
            out = _predict(predictor, batch)
            yield done + len(out), total, out
    except SASNetError:
        raise
    except Exception as exc:  # noqa: BLE001 - named for the person, see WorkerFailure
        raise WorkerFailure(f"{path}: counting failed: {_describe(exc)}") from exc


def _predict(predictor, records) -> list[CountRecord]:
    preds = predictor.predict_batch([r.image for r in records])
    return [CountRecord(r.index, r.time_s, float(p.count)) for r, p in zip(records, preds)]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return f"out of memory ({text}); try a smaller precision (bf16) or the CPU"
    return text


def counts_csv_text(records: list[CountRecord]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in sorted(records, key=lambda r: r.index):
        writer.writerow([r.index, f"{r.time_s:.3f}", "" if r.count is None else f"{r.count:.3f}",
                         r.error or ""])
    return buf.getvalue()


def write_counts_csv(path: str | os.PathLike, records: list[CountRecord]) -> Path:
    path = Path(path)
    atomic_write_text(path, counts_csv_text(records))
    return path


def frame_image_path(video: str | os.PathLike, index: int, folder: str | os.PathLike) -> Path:
    return Path(folder) / f"{Path(video).stem}_frame{index}.png"


def default_frames_folder(video: str | os.PathLike) -> Path:
    video = Path(video)
    return video.with_name(f"{video.stem}_frames")


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

    A frame stored before keeps its annotation: a person may have corrected it since.
    """
    image = frame_image_path(video, index, folder)
    ann_path = find_annotation_file(image)
    if ann_path is not None and image.is_file():
        return StoredFrame(image, ann_path, False, -1)
    try:
        with leave_a_core_free(predictor):
            heads = predictor.predict(rgb).heads if predictor is not None else np.zeros((0, 2))
    except SASNetError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise WorkerFailure(f"{video}: frame {index}: the model failed: {_describe(exc)}") from exc
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
