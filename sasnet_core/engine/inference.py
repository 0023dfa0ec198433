"""The inference engine: device, backend and precision, batching, tiling, downscaling, and what
it returns.

Two backends run the same BatchNorm-folded model: OpenVINO on the CPU (``openvino_backend``: whole
graph compiled for the processor, several times faster than eager torch) and torch for CUDA and
Apple GPUs and as the fallback. ``engine.choice`` decides which, and what ``auto`` precision means
on the hardware. The torch path uses channels_last tensors (oneDNN's fast convolution layout),
``torch.inference_mode`` and a forward pass that never builds the largest concatenations
(``fast_forward``); bf16/fp16 run under autocast, with the final sums in fp32.
Memory stays bounded: images whose activations would not fit the budget are split into
overlapping tiles (see ``tiling``), so a 4K frame is counted in about 2 GB.
A cancel bound to the counting thread (``sasnet_core.util.cancel``) is checked before every convolution
(torch), while an OpenVINO inference runs, and before every tile, so a stop takes effect within a
fraction of a second even inside a large image. A tiled image reports each finished tile to the
thread's tile listener (``sasnet_core.util.progress``), so a photo that takes minutes says how long.
"""
from __future__ import annotations

import contextlib
import copy
import os
import time
import weakref
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from sasnet_core.engine import uncertainty
from sasnet_core.engine.choice import (
    DEFAULT_BACKEND,
    DEFAULT_DEVICE,
    DEFAULT_PRECISION,
    choose_device,
    choose_engine,
)
from sasnet_core.engine.heads import estimate_heads
from sasnet_core.engine.openvino_backend import OpenVINORunner, convert
from sasnet_core.engine.patch_grid import PatchGrid, patch_edges
from sasnet_core.engine.quantize import int8_runner
from sasnet_core.engine.tiling import core_for_budget, plan_tiles
from sasnet_core.io.imageio import read_image, to_rgb8
from sasnet_core.model.config import PATCH_SIZE
from sasnet_core.model.fast_forward import fold_batchnorm, lean_forward
from sasnet_core.model.preprocess import model_input
from sasnet_core.model.sasnet import SASNet
from sasnet_core.util.cancel import checkpoint
from sasnet_core.util.progress import report_tiles
from sasnet_core.util.vocab import BACKENDS, INFERENCE_PRECISIONS, Backend
from sasnet_core.weights.registry import load_model

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# Peak activation bytes per input pixel of one forward pass, per backend and precision: measured
# on the CPU as the growth of a fresh process's peak resident memory from 960 x 540 to 1920 x 1080
# (benchmarks/bench_memory.py: torch fp32 1207, bf16 609; OpenVINO fp32 2207, bf16 1115, int8 1353),
# plus 10 %. OpenVINO plans its buffers for the whole graph and keeps more alive than torch's lean
# forward. Used to decide tiling and batching. The OpenVINO figures were measured on the graph of
# the plain forward with dynamic shapes; the graph is now converted from the lean forward, and a
# whole image of half a megapixel or more runs on one compiled for its shape
# (openvino_backend.STATIC_MIN_PIXELS): both need less, so the budget errs on the safe side.
BYTES_PER_PIXEL = {
    ("torch", "fp32"): 1330, ("torch", "bf16"): 670, ("torch", "fp16"): 670,
    ("openvino", "fp32"): 2430, ("openvino", "bf16"): 1230, ("openvino", "int8"): 1490,
}
# One untiled pass may take this share of the memory free when the predictor is built, up to
# MAX_BUDGET_MB: with 8 GB free, 1920 x 1080 is counted in one pass with every backend and
# precision (OpenVINO fp32 needs 4.8 GB), since tiles cost time (their margins are counted twice).
FREE_MEMORY_SHARE = 0.6
MAX_BUDGET_MB = 5120.0
# An image that must be tiled anyway is cut into tiles of at most this much activation memory, so
# an image of any size is counted in about 2 GB in all: besides one tile, `sasnet count` holds
# about 1.2 GB (libraries, the converted and the compiled model, the image and its full-size maps).
# OpenVINO's dynamic-shape model takes more per tile than the bytes-per-pixel figures (about
# 2.5 kB per pixel of the largest tile, plus 270 MB on its first inference); measured at
# 3840 x 2160 in bf16 with the tiles' buffers reused: 1.74 GB in all with 256 MB tiles (the
# tiles' shapes differ, and freeing the buffers at each change had taken it to 2.16 GB). On a
# machine with 8 GB free the images people count most (up to 1920 x 1080) are not tiled at all.
TILE_BUDGET_MB = 256.0
DEFAULT_MARGIN = 96
# An image above this many megapixels, as counted, takes minutes on a CPU (an 8000 x 6000 photo
# took 7 minutes on 2 cores) while crowds are rarely photographed with heads that need it:
# counting it gets a hint of downscaling, with the long side below.
LARGE_IMAGE_MEGAPIXELS = 20.0
SUGGESTED_MAX_SIDE = 4096


def large_image_hint(size: tuple[int, int], setting: str) -> str | None:
    """One line for an image of ``size`` (width, height, as counted) above
    LARGE_IMAGE_MEGAPIXELS: how ``setting`` (the CLI's option, the app's setting; followed by
    the side) makes it faster, and what it costs. None for smaller images."""
    w, h = size
    if w * h < LARGE_IMAGE_MEGAPIXELS * 1e6:
        return None
    s = SUGGESTED_MAX_SIDE / max(w, h)
    return (f"{w} x {h} pixels ({w * h / 1e6:.0f} megapixels) take long to count; {setting} "
            f"{SUGGESTED_MAX_SIDE} counts it at {round(w * s)} x {round(h * s)}, about "
            f"{max(1, round(1 / (s * s)))} times faster (heads shrink with the image: check the count)")


def bytes_per_pixel(backend: str, precision: str) -> int:
    return BYTES_PER_PIXEL.get((str(backend), str(precision)), max(BYTES_PER_PIXEL.values()))


def default_budget_mb(device: torch.device) -> float:
    """Activation memory for one untiled forward pass: FREE_MEMORY_SHARE of what is free now, at
    most MAX_BUDGET_MB."""
    return min(MAX_BUDGET_MB, FREE_MEMORY_SHARE * _available_memory_mb(device))


def _openvino_runner(model: SASNet, precision: str, cache, calibration):
    cache = Path(cache) if cache is not None else None
    ov_model, source = convert(model, cache, lean=precision != "int8")
    if precision == "int8":
        return int8_runner(model, ov_model, calibration, cache)
    return OpenVINORunner(ov_model, precision, source=source)


def _check_max_side(max_side: int | None) -> None:
    # A downscaled image keeps at least one whole patch.
    if max_side is not None and max_side < PATCH_SIZE:
        raise ValueError(f"max_side must be at least {PATCH_SIZE}, got {max_side}")


def _available_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free / 2**20
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 8192.0


@dataclass
class Prediction(PatchGrid):
    """What the model sees in one image, in original-image pixels and people (not model units)."""

    count: float
    density: np.ndarray  # (H, W) float32, people per pixel; sums to ``count``
    level_densities: np.ndarray | None  # (5, H, W) float32, each level's own estimate, P1..P5
    confidence: np.ndarray  # (5, h, w) float32 selection weights per k x k patch, P1..P5
    patch_rows: np.ndarray  # (h + 1,) row edges of the patch cells, original pixels
    patch_cols: np.ndarray  # (w + 1,) column edges
    image_size: tuple[int, int]  # (width, height) of the original image
    scale: float = 1.0  # the image was resized by this factor before the forward pass
    tiles: int = 1
    elapsed_s: float = 0.0
    source: str | None = None
    extra: dict = field(default_factory=dict)

    @cached_property
    def heads(self) -> np.ndarray:
        """(N, 2) estimated head points (x, y), N = round(count)."""
        return estimate_heads(self.density, self.count)

    @cached_property
    def patch_uncertainty(self) -> np.ndarray:
        """(h, w) uncertainty of every patch, in people (see ``sasnet_core.engine.uncertainty``);
        computed on first use, so counting alone never pays for it."""
        return uncertainty.patch_scores(self)

    @property
    def uncertainty(self) -> float:
        """The image's uncertainty: the sum of its patch scores, in people."""
        return float(self.patch_uncertainty.sum(dtype=np.float64))


@dataclass(frozen=True)
class Prepared:
    """An image made ready for one predictor ahead of its forward pass (``Predictor.prepare``):
    RGB uint8, downscaled for ``max_side``; a reading thread does this while the model counts."""

    image: np.ndarray  # what the forward pass sees
    scale: float  # ``image`` is the original resized by this factor
    shape: tuple[int, ...]  # the original image's shape: results are in its pixels


class Predictor:
    """Count people in images with a SASNet model.

    device: "auto" (cuda, then mps, then cpu; see ``engine.choice.choose_device``) or a torch
        device string. The defaults of device, precision and backend are ``engine.choice``'s,
        the same as ``sasnet count`` and the app.
    precision: "auto" (bf16 where the hardware computes it natively, else fp32; see
        ``engine.choice``), "fp32", "bf16", "fp16" (torch only) or "int8" (OpenVINO, calibrated on
        ``calibration``: a handful of the user's images).
    backend: "auto" (OpenVINO on the CPU when installed, else torch), "torch" or "openvino".
    ov_cache: where OpenVINO keeps converted and compiled models (default: the app's cache).
    max_side: downscale images whose long side exceeds this (the paper uses 1920 for UCF-QNRF);
        the count and the returned maps stay in original-image units.
    tile: None = tile only when the budget requires it; 0 = never tile; N = tiles of N x N pixels.
    memory_budget_mb: activation memory one forward pass may use (default: from free memory).
    keep_levels: also return the five per-level density maps (the GUI shows them; counting needs
        only the fused map, and 4K images need 160 MB less without them).
    copy_model: leave ``model`` untouched (fold BatchNorm into a copy); False folds it in place.
    """

    def __init__(
        self,
        model: SASNet,
        device: str | torch.device = DEFAULT_DEVICE,
        precision: str = DEFAULT_PRECISION,
        max_side: int | None = None,
        tile: int | None = None,
        memory_budget_mb: float | None = None,
        margin: int = DEFAULT_MARGIN,
        channels_last: bool = True,
        keep_levels: bool = True,
        copy_model: bool = True,
        backend: str = DEFAULT_BACKEND,
        ov_cache: str | os.PathLike | None = None,
        calibration: Sequence | None = None,
    ):
        if precision not in INFERENCE_PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(INFERENCE_PRECISIONS)}, got {precision!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        _check_max_side(max_side)
        if tile is not None and tile < 0:
            raise ValueError(f"tile must be 0 (off) or a positive size, got {tile}")
        self.device = choose_device(device)
        self.engine = choose_engine(self.device, precision, backend)
        self.backend = str(self.engine.backend)
        self.precision = str(self.engine.precision)
        self.max_side = max_side
        self.tile = tile
        self.margin = margin
        self.keep_levels = keep_levels
        self.config = model.config
        self.channels_last = channels_last
        folded = fold_batchnorm(model, inplace=not copy_model)
        self.runner = None
        if self.backend == Backend.OPENVINO:
            self.runner = _openvino_runner(folded, self.precision, ov_cache, calibration)
            self.model = None  # the compiled graph holds the weights; no second copy in memory
        else:
            self.model = folded.to(self.device)
            if channels_last:
                self.model = self.model.to(memory_format=torch.channels_last)
            _add_stop_points(self.model)
        if memory_budget_mb is None:
            memory_budget_mb = default_budget_mb(self.device)
        self.memory_budget_mb = memory_budget_mb

    @classmethod
    def from_weights(cls, weights: str | os.PathLike | None, **kwargs) -> "Predictor":
        """A predictor for a weights file or registry name; ``kwargs`` as ``Predictor``'s (same
        defaults)."""
        model, info = load_model(weights, device="cpu")
        predictor = cls(model, copy_model=False, **kwargs)
        predictor.info = info
        return predictor

    def with_max_side(self, max_side: int | None) -> "Predictor":
        """This predictor counting at another ``max_side``: a new object sharing the model (or the
        compiled OpenVINO runner, which serialises its inferences with a lock), so a count already
        running with this one keeps the side it started with, and a caller that compares
        predictors sees the change."""
        _check_max_side(max_side)
        other = copy.copy(self)
        other.max_side = max_side
        return other

    @property
    def int8_report(self):
        """How far int8 moved the counts from fp32 on the calibration images (``quantize.Int8Report``),
        None for other precisions."""
        return getattr(self.runner, "int8_report", None)

    # -- budget ------------------------------------------------------------------------------
    @property
    def budget_pixels(self) -> int:
        return int(self.memory_budget_mb * 2**20 / bytes_per_pixel(self.backend, self.precision))

    @property
    def tile_budget_pixels(self) -> int:
        """Pixels of one tile, once an image does not fit ``budget_pixels`` (see TILE_BUDGET_MB)."""
        budget = min(self.memory_budget_mb, TILE_BUDGET_MB)
        return int(budget * 2**20 / bytes_per_pixel(self.backend, self.precision))

    def _needs_tiles(self, h: int, w: int) -> bool:
        if self.tile == 0:
            return False
        if self.tile:
            return h > self.tile or w > self.tile
        return h * w > self.budget_pixels

    # -- public API ----------------------------------------------------------------------------
    def predict(self, image: np.ndarray | str | os.PathLike) -> Prediction:
        return self.predict_batch([image])[0]

    def prepare(self, image: np.ndarray) -> "Prepared":
        """``image`` converted and downscaled the way the forward pass takes it (see ``Prepared``)."""
        image = np.asarray(image)
        small, scale = self._resize(image)
        return Prepared(small, scale, image.shape)

    def predict_batch(self, images: Sequence[np.ndarray | str | os.PathLike | "Prepared"]) -> list[Prediction]:
        """Predict several images; those of the same size share forward passes."""
        sources = [str(im) if isinstance(im, (str, Path)) else None for im in images]
        arrays = [read_image(im) if isinstance(im, (str, Path)) else im if isinstance(im, Prepared)
                  else np.asarray(im) for im in images]
        results: list[Prediction | None] = [None] * len(arrays)
        prepared = [(a.image, a.scale) if isinstance(a, Prepared) else self._resize(a) for a in arrays]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (small, _) in enumerate(prepared):
            groups.setdefault(small.shape[:2], []).append(i)
        for (h, w), idx in groups.items():
            if self._needs_tiles(h, w):
                for i in idx:
                    results[i] = self._predict_tiled(prepared[i][0], arrays[i].shape, prepared[i][1], i)
                continue
            per_batch = max(1, self.budget_pixels // max(h * w, 1)) if self.tile != 0 else len(idx)
            for s in range(0, len(idx), per_batch):
                checkpoint()
                chunk = idx[s : s + per_batch]
                t0 = time.perf_counter()
                batch = np.stack([prepared[i][0] for i in chunk])
                dens, levels, conf = self._forward(self._to_tensor(batch), whole=True)
                elapsed = (time.perf_counter() - t0) / len(chunk)
                for b, i in enumerate(chunk):
                    results[i] = self._finish(
                        dens[b, 0], levels[b] if levels is not None else None, conf[b],
                        arrays[i].shape, prepared[i][1], 1, elapsed,
                    )
        for r, src in zip(results, sources):
            r.source = src
        return results

    # -- internals -----------------------------------------------------------------------------
    def _resize(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            image = to_rgb8(image)
        h, w = image.shape[:2]
        if self.max_side and max(h, w) > self.max_side:
            s = self.max_side / max(h, w)
            size = (max(1, round(w * s)), max(1, round(h * s)))
            return cv2.resize(image, size, interpolation=cv2.INTER_AREA), s
        return image, 1.0

    def _to_tensor(self, batch: np.ndarray) -> torch.Tensor:
        x = model_input(batch, self.config.block_size)
        if self.runner is not None:
            return x  # OpenVINO takes plain NCHW arrays
        x = x.to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @torch.inference_mode()
    def _forward(self, x: torch.Tensor, whole: bool = False):
        """(density (B,1,H,W), levels (B,5,H,W) or None, confidence (B,5,h,w)), fp32 on the CPU.
        ``whole``: ``x`` holds whole images, not tiles of one."""
        if self.runner is not None:
            d, lv, c = self.runner.forward(x.contiguous().numpy(), keep_levels=self.keep_levels, whole=whole)
            return torch.from_numpy(d), (torch.from_numpy(lv) if lv is not None else None), torch.from_numpy(c)
        dtype = PRECISIONS[self.precision]
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32), \
                _ieee_fp32(self.device, dtype):
            out = lean_forward(self.model, x)
        to = lambda t: t.float().cpu()  # noqa: E731
        return to(out.density), (to(out.level_densities) if self.keep_levels else None), to(out.confidence)

    def _predict_tiled(self, image: np.ndarray, orig_shape, scale: float, item: int = 0) -> Prediction:
        t0 = time.perf_counter()
        h, w = image.shape[:2]
        k = self.config.block_size
        core = self.tile or core_for_budget(self.tile_budget_pixels, self.margin, k)
        # Largest first: the backend keeps the buffers of its largest input and reuses them for
        # the smaller edge tiles, so none of them allocates again.
        tiles = sorted(plan_tiles(h, w, core, self.margin, k),
                       key=lambda t: (t.y1 - t.y0) * (t.x1 - t.x0), reverse=True)
        density = np.zeros((h, w), np.float32)
        levels = np.zeros((5, h, w), np.float32) if self.keep_levels else None
        gh, gw = max(h // k, 1), max(w // k, 1)
        conf = np.zeros((5, gh, gw), np.float32)
        report_tiles(0, len(tiles), 0.0, item, (w, h))
        for done, t in enumerate(tiles, 1):
            checkpoint()
            d, lv, c = self._forward(self._to_tensor(image[None, t.y0 : t.y1, t.x0 : t.x1]))
            ys, xs = slice(t.cy0 - t.y0, t.cy1 - t.y0), slice(t.cx0 - t.x0, t.cx1 - t.x0)
            density[t.cy0 : t.cy1, t.cx0 : t.cx1] = d[0, 0, ys, xs].numpy()
            if levels is not None:
                levels[:, t.cy0 : t.cy1, t.cx0 : t.cx1] = lv[0, :, ys, xs].numpy()
            # Patches whose top-left corner lies in this core; tile origins are multiples of k.
            gi = np.arange(t.cy0 // k, min(gh, -(-t.cy1 // k)))
            gj = np.arange(t.cx0 // k, min(gw, -(-t.cx1 // k)))
            li = np.clip(gi - t.y0 // k, 0, c.shape[2] - 1)
            lj = np.clip(gj - t.x0 // k, 0, c.shape[3] - 1)
            conf[:, gi[:, None], gj[None, :]] = c[0].numpy()[:, li[:, None], lj[None, :]]
            report_tiles(done, len(tiles), time.perf_counter() - t0, item, (w, h))
        return self._finish(
            torch.from_numpy(density), torch.from_numpy(levels) if levels is not None else None,
            torch.from_numpy(conf), orig_shape, scale, len(tiles), time.perf_counter() - t0,
        )

    def _finish(self, density, levels, conf, orig_shape, scale, tiles, elapsed) -> Prediction:
        cs = self.config.count_scale
        H, W = orig_shape[:2]
        dens = density.numpy()
        h, w = dens.shape
        # Padding (tiny images) is cut away; the count is what lies inside the image.
        dens = dens[: min(h, round(H * scale)), : min(w, round(W * scale))]
        count = float(dens.sum(dtype=np.float64)) / cs
        lv = levels.numpy()[:, : dens.shape[0], : dens.shape[1]] if levels is not None else None
        dens = dens / cs
        if lv is not None:
            lv = lv / cs
        if scale != 1.0:
            dens = _resize_mass(dens, W, H)
            lv = np.stack([_resize_mass(m, W, H) for m in lv]) if lv is not None else None
        gh, gw = conf.shape[-2:]
        return Prediction(
            count=count, density=np.ascontiguousarray(dens, dtype=np.float32),
            level_densities=None if lv is None else lv.astype(np.float32, copy=False),
            confidence=conf.numpy().astype(np.float32, copy=False),
            patch_rows=patch_edges(H, gh), patch_cols=patch_edges(W, gw),
            image_size=(W, H), scale=scale, tiles=tiles, elapsed_s=elapsed,
        )


def _ieee_fp32(device: torch.device, dtype: torch.dtype):
    """fp32 convolutions in IEEE fp32 on CUDA: cuDNN runs them in TF32 by default on Ampere and
    later GPUs (a 10-bit mantissa), which moves counts by about 1e-3, while fp32 is the
    precision that matches the authors' forward (and training's TF32 setting is process-wide)."""
    if device.type != "cuda" or dtype != torch.float32:
        return contextlib.nullcontext()
    cudnn = torch.backends.cudnn
    return cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark,
                       deterministic=cudnn.deterministic, allow_tf32=False)


def _stop_point(module, args) -> None:
    checkpoint()


def _add_stop_points(model: torch.nn.Module) -> None:
    """A cancellation check before every convolution (the steps that take time); at most one per
    module, however many predictors share the model."""
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d) and module not in _STOP_POINTS:
            module.register_forward_pre_hook(_stop_point)
            _STOP_POINTS.add(module)


# The convolutions that already carry the hook: a weak set, so a model that is dropped is not kept
# alive by it, and nothing is written onto torch's own objects.
_STOP_POINTS: "weakref.WeakSet[torch.nn.Module]" = weakref.WeakSet()


def _resize_mass(density: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a density map and keep its total mass (the count) unchanged."""
    total = float(density.sum(dtype=np.float64))
    out = cv2.resize(density, (width, height), interpolation=cv2.INTER_LINEAR)
    s = float(out.sum(dtype=np.float64))
    return out * (total / s) if s > 0 else out
