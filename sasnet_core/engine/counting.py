"""Counting a stream of images or video frames: the one loop behind ``sasnet count``, the app's
file queue and video counting.

``count_stream`` takes inputs (image paths, arrays, ``Frame``s of a video) and yields one
``CountResult`` per input, in input order: a count, or a skipped record that names the file and
the problem (an unreadable image or frame, an image too large for memory). Decoded images are
collected up to ``batch_size`` and predicted together, images of one size (after downscaling)
sharing forward passes.

Inputs are read ahead (``sasnet_core.engine.prefetch``): while one batch is counted, a background thread
decodes and downscales the next ones (video frames too), at most ``read_ahead`` of them, so the
model does not wait for files and memory stays bounded.

A ``CancelToken`` stops the stream within a fraction of a second, also in the middle of one large
image: the predictor checks it before every convolution and every tile. A stopped stream simply
ends; the caller knows from its token why.

An image counted in tiles says how far it is: ``on_tile(path, TileProgress)`` is called before its
first tile and after each one (``sasnet_core.util.progress``), on the counting thread.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from sasnet_core.engine.patch_grid import PatchGrid
from sasnet_core.engine.prefetch import read_ahead as reader
from sasnet_core.io.imageio import read_image
from sasnet_core.util.cancel import Cancelled, CancelToken, cancellable
from sasnet_core.util.errors import SASNetError
from sasnet_core.util.progress import TileProgress, tile_listener

DISPLAY_SIDE = 512  # the app keeps density maps at most this many pixels on their long side


@dataclass
class CountResult(PatchGrid):
    """What counting one image or frame gives: the count and the maps a person looks at, or, for
    a skipped input, ``count`` None and ``error`` saying why.

    ``density`` is in people per pixel of its own grid, which may be smaller than the image (the
    app shrinks it to ``DISPLAY_SIDE``); it always sums to ``count``. Patch edges are in image
    pixels; the patches (level map, counts) are read as a ``Prediction``'s (``PatchGrid``).
    """

    path: str  # the image file, or the video a frame belongs to ("" for an array)
    count: float | None
    error: str | None = None
    frame: int | None = None  # video frames: index in the video and its time
    time_s: float | None = None
    image_size: tuple[int, int] | None = None  # (width, height)
    density: np.ndarray | None = None  # (h', w') float32
    confidence: np.ndarray | None = None  # (5, gh, gw) float32 selection weights P1..P5
    patch_rows: np.ndarray | None = None  # (gh + 1,) row edges of the patch cells
    patch_cols: np.ndarray | None = None  # (gw + 1,)
    heads: np.ndarray | None = None  # (N, 2) estimated head points (x, y)
    elapsed_s: float = 0.0

    @property
    def skipped(self) -> bool:
        return self.count is None

    def count_in_mask(self, mask_fn) -> float:
        """Count inside a region: ``mask_fn(shape, scale_x, scale_y)`` gives the mask on the grid."""
        sx = self.density.shape[1] / self.image_size[0]
        sy = self.density.shape[0] / self.image_size[1]
        return float(self.density[mask_fn(self.density.shape, sx, sy)].sum(dtype=np.float64))


@dataclass(frozen=True)
class Frame:
    """One video frame as an input: decoded (``image``) or not (``error`` says why)."""

    video: str
    index: int
    time_s: float
    image: np.ndarray | None
    error: str | None = None


def video_frames(path: str | os.PathLike, every_n: int = 1, time_step: float | None = None
                 ) -> Iterator[Frame]:
    """The frames to count of a video, as inputs for ``count_stream``."""
    # deferred: OpenCV's video reader, only when a video is counted
    from sasnet_core.io.video import iter_frames

    for rec in iter_frames(path, every_n=every_n, time_step=time_step):
        yield Frame(str(path), rec.index, rec.time_s, rec.image, rec.error)


# Why a result has no count when the model's own output is at fault (NaN or infinity: damaged
# weights, or a diverged training run), not the input: evaluation tells the two apart by it.
NOT_A_NUMBER = "the model gave a count that is not a number (damaged weights?)"


def summarize(prediction, path: str = "", display_side: int | None = DISPLAY_SIDE, *,
              maps: bool = True, heads: bool = True, frame: int | None = None,
              time_s: float | None = None) -> CountResult:
    """A ``Prediction`` as a ``CountResult``: the density shrunk to ``display_side`` (None: kept
    at full size), the head points estimated from the full-size map; ``maps=False`` keeps only
    the count (and heads, if asked)."""
    count = float(prediction.count)
    if not math.isfinite(count):
        return CountResult(path, None, NOT_A_NUMBER, frame, time_s)
    size = getattr(prediction, "image_size", None)
    result = CountResult(path, count, None, frame, time_s, image_size=None if size is None else tuple(size),
                         elapsed_s=float(getattr(prediction, "elapsed_s", 0.0)))
    if heads:
        result.heads = np.asarray(prediction.heads, np.float64)
    if maps:
        result.density = _shrink(prediction.density, display_side)
        result.confidence = np.asarray(prediction.confidence, np.float32)
        result.patch_rows = np.array(prediction.patch_rows)
        result.patch_cols = np.array(prediction.patch_cols)
    return result


def _shrink(density: np.ndarray, display_side: int | None) -> np.ndarray:
    h, w = density.shape
    if display_side is None or max(h, w) <= display_side:
        return np.ascontiguousarray(density, np.float32)
    import cv2

    s = display_side / max(h, w)
    small = cv2.resize(density, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    total, got = float(density.sum(dtype=np.float64)), float(small.sum(dtype=np.float64))
    if got > 0:
        small *= total / got  # INTER_AREA averages; rescale so the mass (the count) is kept
    return np.ascontiguousarray(small, np.float32)


@contextlib.contextmanager
def _leave_a_core_free(predictor):
    """On the CPU, run this thread's torch ops on all cores but one, so a GUI thread always
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


@dataclass
class _Pending:
    path: str
    frame: int | None
    time_s: float | None
    image: np.ndarray | None
    error: str | None

    def skipped(self, error: str | None = None) -> CountResult:
        return CountResult(self.path, None, error or self.error, self.frame, self.time_s)


def _load(item, prepare=None) -> _Pending:
    """Read one input; ``prepare`` (the predictor's) converts and downscales the image, so that
    work is done here, ahead of the forward pass, by the read-ahead thread."""
    entry = _read(item)
    if prepare is not None and entry.image is not None:
        try:
            entry.image = prepare(entry.image)
        except Exception as exc:  # noqa: BLE001 - only running out of memory is the input's fault
            if not _is_out_of_memory(exc):
                raise
            entry.image, entry.error = None, describe_failure(exc)
    return entry


def _read(item) -> _Pending:
    if isinstance(item, Frame):
        return _Pending(item.video, item.index, item.time_s, item.image,
                        None if item.image is not None else item.error or "the frame cannot be decoded")
    if isinstance(item, np.ndarray):
        return _Pending("", None, None, item, None)

    path = os.fspath(item)
    try:
        return _Pending(path, None, None, read_image(path), None)
    except SASNetError as exc:
        return _Pending(path, None, None, None, exc.detail)
    except OSError as exc:
        return _Pending(path, None, None, None, f"cannot read the file ({exc.strerror or exc})")


def describe_failure(exc: BaseException) -> str:
    """One line for a failure of the model on one input (out of memory names a way out)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, MemoryError) or "out of memory" in text.lower() or "allocate" in text.lower():
        return f"out of memory ({text}); try bf16 precision, a smaller maximum side or smaller tiles"
    return text


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "allocate" in text)


def default_read_ahead(batch_size: int) -> int:
    """Inputs read ahead by default: the next whole batch (at least two inputs), so it is ready
    when the current one is counted, and never more than one batch waits in memory."""
    return max(2, batch_size)


def count_stream(predictor, inputs: Iterable, *, batch_size: int = 1, cancel: CancelToken | None = None,
                 display_side: int | None = None, maps: bool = True, heads: bool = False,
                 spare_core: bool = False, read_ahead: int | None = None,
                 on_tile: Callable[[str, TileProgress], None] | None = None) -> Iterator[CountResult]:
    """Count every input, yielding one ``CountResult`` per input in input order.

    inputs: image paths, RGB arrays or ``Frame``s, in any mix; pulled lazily, one at a time, so a
        queue that grows while counting is followed (as long as it has an item when asked).
    batch_size: decoded images predicted together (1 gives each result as soon as it is ready).
    display_side / maps / heads: what each result keeps (see ``summarize``).
    spare_core: leave one CPU core to the caller's other threads (the app's GUI thread).
    read_ahead: inputs decoded and downscaled ahead on a background thread while a batch is
        counted (None: ``default_read_ahead``). 0 pulls each input only when its turn comes: for
        a queue whose order may change until then (the app's file queue, where the image a
        person opens goes first and its row says "counting" only while it is counted).
    A set ``cancel`` token ends the stream at the next checkpoint, without a result for the input
    being counted, and ends the read-ahead thread.
    on_tile: ``(path, TileProgress)`` for each tile of an image counted in tiles (see above).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    depth = default_read_ahead(batch_size) if read_ahead is None else read_ahead
    if depth < 0:
        raise ValueError(f"read_ahead must be 0 or more, got {depth}")
    token = cancel or CancelToken()
    load = functools.partial(_load, prepare=getattr(predictor, "prepare", None))
    if depth:
        entries = reader(inputs, load, depth, token)
    else:
        entries = _load_each(inputs, load, token)
    buf: list[_Pending] = []
    decoded = 0
    try:
        for entry in entries:
            if token.cancelled:
                return
            buf.append(entry)
            decoded += entry.image is not None
            if decoded >= batch_size or decoded == 0:
                yield from _flush(predictor, buf, token, spare_core, display_side, maps, heads, on_tile)
                buf, decoded = [], 0
        if buf and not token.cancelled:
            yield from _flush(predictor, buf, token, spare_core, display_side, maps, heads, on_tile)
    except Cancelled:
        return
    finally:
        entries.close()  # ends the read-ahead thread, also when the caller stops early


def _load_each(inputs: Iterable, load, token: CancelToken) -> Iterator[_Pending]:
    for item in inputs:
        if token.cancelled:
            return
        yield load(item)


def _flush(predictor, buf: list[_Pending], token, spare_core, display_side, maps, heads, on_tile=None):
    todo = [e for e in buf if e.image is not None]
    outcomes = _predict(predictor, [e.image for e in todo], token, spare_core,
                        [e.path for e in todo], on_tile) if todo else []
    by_id = {id(e): o for e, o in zip(todo, outcomes)}
    for e in buf:
        outcome = by_id.get(id(e))
        if outcome is None:
            yield e.skipped()
        elif isinstance(outcome, str):
            yield e.skipped(outcome)
        else:
            yield summarize(outcome, e.path, display_side, maps=maps, heads=heads, frame=e.frame, time_s=e.time_s)


def _predict(predictor, images: list[np.ndarray], token, spare_core: bool, paths: list[str] | None = None,
             on_tile=None) -> list:
    """A prediction per image, or a message where the model ran out of memory on it (a batch that
    does not fit is retried one image at a time)."""
    spare = _leave_a_core_free(predictor) if spare_core else contextlib.nullcontext()
    paths = paths or [""] * len(images)
    try:
        with cancellable(token), spare, tile_listener(_tile_reporter(paths, on_tile)):
            return predictor.predict_batch(images)
    except Exception as exc:  # noqa: BLE001 - only running out of memory is the input's fault
        if not _is_out_of_memory(exc):
            raise
        if len(images) == 1:
            return [describe_failure(exc)]
    return [_predict(predictor, [im], token, spare_core, [p], on_tile)[0] for im, p in zip(images, paths)]


def _tile_reporter(paths: list[str], on_tile):
    """The tile listener of one batch: an event names its image by its place in the batch."""
    if on_tile is None:
        return None
    return lambda event: on_tile(paths[event.item] if 0 <= event.item < len(paths) else "", event)
