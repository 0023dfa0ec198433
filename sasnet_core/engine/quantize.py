"""int8 counting: the OpenVINO model quantized by NNCF, calibrated on the user's own images.

Post-training quantization needs a handful of inputs like the ones it will count to choose the
ranges of its int8 activations; the images being counted are the best there are, so ``calibration``
is those images (paths or RGB arrays). At most ``CALIBRATION_IMAGES`` of them, spread over the list,
are used, downscaled to ``CALIBRATION_SIDE`` and normalised exactly as counting does
(``model.preprocess.model_input``, the model's own input).

* The layers where int8 costs the most accuracy for the least speed stay in float (``KEEP_FLOAT``):
  they run bf16 where the CPU computes bf16 natively, else fp32.
* The quantized IR is cached beside the float IR, keyed by the model, the calibration images'
  content and these settings, so counting the same images again does not quantize again.
* At quantization time the float (fp32) model counts the calibration images too, and the count
  difference int8 vs fp32 is kept with the cached model (``Int8Report``), so the user is told how
  far int8 moves their counts on their own images, and whether that was measured on downscaled
  copies of them. The cache entry is sealed (``cache_digest``): a changed model or report is
  quantized again, and the report read back is checked as any input is.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from sasnet_core.engine import openvino_backend
from sasnet_core.engine.choice import cpu_has_native_bf16
from sasnet_core.engine.openvino_backend import (
    OV_PRECISION,
    OpenVINORunner,
    ir_file,
    model_key,
    save_atomically,
)
from sasnet_core.io.cache_digest import damage
from sasnet_core.io.imageio import read_image, to_rgb8
from sasnet_core.model.preprocess import model_input
from sasnet_core.util.cancel import checkpoint
from sasnet_core.util.errors import EngineUnavailableError, SASNetError

log = logging.getLogger(__name__)

CALIBRATION_IMAGES = 8  # NNCF's ranges settle after a handful of images; each one costs a forward
CALIBRATION_SIDE = 768  # calibration images are downscaled to this long side (speed)
# NNCF name patterns of the layers kept in float. The density heads' last 1x1 convolutions turn
# features into people per pixel: their int8 rounding goes straight into the count, and they cost
# little time (one output channel). Measured on the full-size model (random weights, 3 UCF_CC_50
# images, count vs fp32, mean / max): all int8 0.57 % / 1.0 %; these five convolutions in float
# 0.37 % / 0.81 %; the whole density heads 0.38 % / 0.86 %; the confidence heads 0.89 % / 1.17 %;
# int8 time the same for all four within the noise of a busy machine.
KEEP_FLOAT = (r".*density_head\d\.1\.conv.*",)
# Bumped whenever the recipe (settings above, NNCF options) changes: old cache entries then go unused.
RECIPE = 2
# Counts int8 should keep within of fp32; beyond it the report says so and names the precisions
# that do (a small or weakly trained model can move several per cent).
INT8_TOLERANCE = 0.01
MIN_REFERENCE_COUNT = 1.0  # relative differences are taken against at least one person
REPORT_FILE = "int8_report.json"  # beside the quantized IR in its cache folder
INSTALL_HINT = "pip install 'sasnet-studio[int8]' (or pip install nncf)"


@dataclass(frozen=True)
class Int8Report:
    """How far int8 moved the counts from fp32 on the calibration images.

    Those are copies downscaled to ``CALIBRATION_SIDE`` where an image is larger (quantizing
    and measuring at full size would take minutes): a figure measured on a copy is said to be
    one, since an image counted at another size, or of another shape (a 1 x 5000 strip is a
    1 x 768 copy), may move further."""

    images: int
    mean_rel_diff: float  # mean of |int8 - fp32| / max(fp32, 1 person), as a fraction
    max_rel_diff: float
    downscaled: int = 0  # how many of ``images`` were measured on downscaled copies
    side: int = CALIBRATION_SIDE  # the long side of those copies

    def describe(self) -> str:
        if not self.downscaled:
            on = f"{self.images} of your images"
        elif self.downscaled == self.images:
            on = f"{self.side}-px copies of {self.images} of your images"
        else:
            on = f"{self.images} of your images ({self.downscaled} of them as {self.side}-px copies)"
        text = (f"int8 calibrated on {on}: counts within "
                f"{100 * self.mean_rel_diff:.2f} % of fp32 (max {100 * self.max_rel_diff:.2f} %)")
        if self.downscaled:
            text += " on those copies; at full size counts may differ more"
        if self.mean_rel_diff > INT8_TOLERANCE:  # the trade-off is the person's to make, knowingly
            text += (f", more than the {100 * INT8_TOLERANCE:g} % int8 aims for with this model; "
                     "precision bf16 or fp32 counts as the model does")
        return text

    @classmethod
    def from_dict(cls, data) -> "Int8Report":
        """A report read back from the cache, checked as any input is: ValueError saying what
        is wrong (a count that is not a whole number in range, a fraction below 0 or not finite,
        a mean above the maximum), never a report that says something impossible."""
        if not isinstance(data, dict):
            raise ValueError(f"it holds {type(data).__name__} instead of an object")
        unknown = set(data) - {"images", "mean_rel_diff", "max_rel_diff", "downscaled", "side"}
        if unknown:
            raise ValueError(f"unknown field {sorted(unknown)[0]!r}")

        def whole(key, low, high, default=None):
            v = data.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
                raise ValueError(f"{key!r} is {v!r}, not a whole number from {low} to {high}")
            return v

        def fraction(key):
            v = data.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{key!r} is {v!r}, not a fraction of 0 or more")
            return float(v)

        images = whole("images", 1, CALIBRATION_IMAGES)
        report = cls(images, fraction("mean_rel_diff"), fraction("max_rel_diff"),
                     whole("downscaled", 0, images, 0), whole("side", 1, 1 << 20, CALIBRATION_SIDE))
        if report.mean_rel_diff > report.max_rel_diff * (1 + 1e-9):
            raise ValueError("its mean difference is above its maximum")
        return report


def _nncf():
    """NNCF, imported only after this process declined its telemetry (NNCF decides whether to
    send when it is first imported; see ``openvino_backend.decline_telemetry``)."""
    openvino_backend.decline_telemetry()
    import nncf

    return nncf


def nncf_missing_reason() -> str | None:
    """None when NNCF can be imported, else one sentence saying how to install it."""
    try:
        _nncf()
    except ImportError:
        return f"int8 counting needs NNCF, which is not installed: {INSTALL_HINT}"
    except Exception as exc:  # noqa: BLE001 - a broken install gets the same one-line answer
        return f"int8 counting needs NNCF, which could not be loaded ({type(exc).__name__}: {exc})"
    return None


def int8_runner(model, ov_model, calibration: Sequence | None, cache: Path | None):
    """An ``OpenVINORunner`` of ``ov_model`` quantized to int8 on ``calibration``, read from the cache
    when these images quantized this model before; ``runner.int8_report`` says how far its counts
    are from fp32 on them."""
    reason = nncf_missing_reason()
    if reason is not None:
        raise EngineUnavailableError(reason)
    downscaled: list[bool] = []
    images = calibration_inputs(calibration, model.config.block_size, downscaled)
    if not images:
        raise EngineUnavailableError(
            "int8 needs a few of your images to calibrate on, and none were given or could be read; "
            "count images (not only videos), or choose precision bf16 or fp32")
    cache = Path(cache) if cache is not None else openvino_backend.default_cache_dir()
    float_precision = "bf16" if cpu_has_native_bf16() else "fp32"
    folder = cache / "int8" / f"{model_key(model)}-{_calibration_key(images, float_precision)}"
    found = _read_cached(folder)
    if found is not None:
        quantized, report = found
    else:
        quantized = _quantize(ov_model, images)
        report = _compare(ov_model, quantized, images, float_precision, model.config.count_scale,
                          downscaled=sum(downscaled))
        save_atomically(quantized, folder, {REPORT_FILE: json.dumps(asdict(report))})
    runner = OpenVINORunner(quantized, "int8", float_precision=float_precision, source=ir_file(folder))
    runner.int8_report = report
    return runner


def calibration_inputs(calibration: Sequence | None, block_size: int,
                       downscaled: list | None = None) -> list[np.ndarray]:
    """Up to CALIBRATION_IMAGES model inputs (1, 3, H, W) from images spread over ``calibration``;
    images that cannot be read are passed over for the next ones. ``downscaled``: a list that
    gets, for each input, whether it is a downscaled copy of its image."""
    import cv2

    items = list(calibration or [])
    # Evenly spread over the list first (a folder's first images are often one scene), then the
    # rest in order, so unreadable images are replaced by others.
    n = min(CALIBRATION_IMAGES, len(items))
    first = sorted({round(i * (len(items) - 1) / max(n - 1, 1)) for i in range(n)})
    order = first + sorted(set(range(len(items))) - set(first))
    out = []
    for i in order:
        if len(out) == CALIBRATION_IMAGES:
            break
        item = items[i]
        try:
            image = read_image(item) if isinstance(item, (str, os.PathLike)) else to_rgb8(np.asarray(item))
        except (SASNetError, ValueError, TypeError):
            continue
        h, w = image.shape[:2]
        if downscaled is not None:
            downscaled.append(max(h, w) > CALIBRATION_SIDE)
        if max(h, w) > CALIBRATION_SIDE:
            s = CALIBRATION_SIDE / max(h, w)
            image = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        out.append(model_input(np.ascontiguousarray(image)[None], block_size).numpy())
    return out


def _calibration_key(images: list[np.ndarray], float_precision: str) -> str:
    """What the quantized model and its report depend on besides the model: the inputs, the recipe
    and the precision its float layers were measured in."""
    nncf = _nncf()

    h = hashlib.sha256()
    settings = {"recipe": RECIPE, "keep_float": KEEP_FLOAT, "side": CALIBRATION_SIDE,
                "float": float_precision, "nncf": nncf.__version__}
    h.update(json.dumps(settings).encode())
    for x in images:
        h.update(str(x.shape).encode())
        h.update(x.tobytes())
    return h.hexdigest()[:16]


def _quantize(ov_model, images: list[np.ndarray]):
    import contextlib
    import io
    import logging

    nncf = _nncf()

    # NNCF logs notes at INFO and draws its progress bars on stdout, where they would land in the
    # middle of `sasnet count --json` output; the command says itself what it did.
    logging.getLogger("nncf").setLevel(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()):
        return nncf.quantize(
            ov_model, nncf.Dataset(images, _between_images), subset_size=len(images),
            ignored_scope=nncf.IgnoredScope(patterns=list(KEEP_FLOAT), validate=False),
        )


def _between_images(x: np.ndarray) -> np.ndarray:
    """NNCF's per-item transform: where a stop request (``sasnet_core.util.cancel``) ends quantizing."""
    checkpoint()
    return x


def _counts(ov_model, images: list[np.ndarray], hint: str, count_scale: float) -> np.ndarray:
    """The count of every image by ``ov_model`` compiled once for any shape."""
    core = openvino_backend.shared_core()
    compiled = core.compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
    return np.array([float(compiled(_between_images(x))["density"].sum(dtype=np.float64)) / count_scale
                     for x in images])


def _compare(float_model, quantized, images, float_precision: str, count_scale: float,
             downscaled: int = 0) -> Int8Report:
    reference = _counts(float_model, images, OV_PRECISION["fp32"], count_scale)
    int8 = _counts(quantized, images, OV_PRECISION[float_precision], count_scale)
    rel = np.abs(int8 - reference) / np.maximum(np.abs(reference), MIN_REFERENCE_COUNT)
    return Int8Report(images=len(images), mean_rel_diff=float(rel.mean()), max_rel_diff=float(rel.max()),
                      downscaled=downscaled, side=CALIBRATION_SIDE)


def _read_cached(folder: Path):
    """(quantized model, report) from a complete cache entry, else None (a damaged one is removed)."""
    xml, report = ir_file(folder), folder / REPORT_FILE
    if xml is None or not report.is_file():
        return None
    why = damage(folder)
    if why is None:
        try:
            found = Int8Report.from_dict(json.loads(report.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            why = f"has an unusable {REPORT_FILE} ({exc})"
        else:
            try:
                return openvino_backend.shared_core().read_model(str(xml)), found
            except Exception as exc:  # noqa: BLE001 - a damaged cache entry is quantized again, never fatal
                why = f"cannot be read by OpenVINO ({type(exc).__name__})"
    log.warning(f"{folder}: the cached int8 model {why}; quantizing the model again")
    shutil.rmtree(folder, ignore_errors=True)
    return None

