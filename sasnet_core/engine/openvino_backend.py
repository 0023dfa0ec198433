"""Counting on the CPU with OpenVINO: the same model, compiled for the processor it runs on.

On CPUs oneDNN's convolutions in OpenVINO run the SASNet forward pass several times faster than
eager torch (whole-graph fusion, AMX/AVX-512 kernels, no Python between layers), so OpenVINO is
the CPU backend and torch stays the backend for CUDA and Apple GPUs, and the fallback.

* The BatchNorm-folded model is converted once per checkpoint with dynamic height and width and
  kept on disk as OpenVINO IR, keyed by a hash of its weights and architecture (``model_key``), so
  the app does not pay the conversion (about 15 s) twice. The entry is sealed with the sha256 of
  its files (``cache_digest``) and checked before use: one changed on disk is converted again,
  with a warning saying so, never counted with.
* The IR is compiled once per precision with its dynamic height and width, and that one compiled
  model counts every image size: on the CPU plugin it runs as fast as a model compiled for one
  static shape (measured at 1024 x 768: 2.7 s against 2.85 s) and compiles in a third of a second,
  so there is nothing to cache per shape (a compiled blob per shape on disk would grow with every
  new image size, about 80 MB each for the full model).
* The precision is always set explicitly: asked for nothing, the CPU plugin silently runs bf16
  on processors with AMX.
* The graph returns every output a ``Prediction`` carries (fused density, the five level
  densities, the normalised confidence), so overlays work the same with either backend.
* A stop request (``sasnet_core.util.cancel``) cancels the running inference request.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from sasnet_core.io import cache_digest, staging
from sasnet_core.model.fast_forward import lean_forward
from sasnet_core.model.sasnet import SASNet
from sasnet_core.util.cancel import Cancelled, checkpoint
from sasnet_core.util.paths import cache_dir

log = logging.getLogger(__name__)

# OpenVINO's names for the precisions this backend runs. An int8 model runs the layers NNCF left
# unquantized in its ``float_precision`` (bf16 where the hardware does bf16, see ``quantize``).
OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}
_POLL_MS = 50  # how often a running inference looks for a stop request
IR_FILE = "sasnet.xml"  # a cache folder's IR (weights beside it in sasnet.bin)
# A whole image of at least this many pixels runs on a model compiled for its exact shape: the
# CPU plugin then plans the activation buffers for that shape and reuses them across layers,
# which the dynamic-shape model cannot. Measured at 1024 x 768 fp32 (one inference, fresh
# process): 3.54 GB peak with the dynamic model, 2.75 GB with the static one, the same CPU time;
# compiling for a new shape costs about 0.5 s of CPU, paid once per image size. Smaller images
# (and the tiles of a large one, which come in several shapes) stay on the dynamic model, where
# a compile would cost more than the memory it saves.
STATIC_MIN_PIXELS = 512 * 1024


def unavailable_reason() -> str | None:
    """None when OpenVINO can run here, else one sentence saying why not."""
    try:
        load_openvino()
    except ImportError:
        return "OpenVINO is not installed (pip install openvino)"
    except Exception as exc:  # noqa: BLE001 - a broken install must not stop counting with torch
        return f"OpenVINO could not be loaded ({type(exc).__name__}: {exc})"
    return None


def default_cache_dir() -> Path:
    return cache_dir() / "openvino"


class _Outputs(torch.nn.Module):
    """The model's forward pass with the outputs a Prediction needs, as a plain tuple.

    ``lean``: trace ``fast_forward.lean_forward``, whose graph never builds the decoder's skip
    concatenation or the density heads' multi-branch concatenation (each convolution over a
    concatenation is a sum of convolutions over its parts). The same numbers; at 1024 x 768 fp32
    on a model compiled for that shape, 2.07 GB peak against 2.67 GB, and 9 % less CPU time.
    int8 quantizes the plain graph, whose density heads' last convolutions NNCF finds by name to
    keep them in float (``quantize.KEEP_FLOAT``)."""

    def __init__(self, model: SASNet, lean: bool = True):
        super().__init__()
        self.model = model
        self.lean = lean

    def forward(self, x):
        out = lean_forward(self.model, x) if self.lean else self.model(x)
        return out.density, out.level_densities, out.confidence


def model_key(model: SASNet, lean: bool = True) -> str:
    """A hash of what the converted graph depends on: weights, architecture, OpenVINO version, and
    which forward pass was traced."""
    h = hashlib.sha256()
    h.update(b"lean-forward" if lean else b"forward")
    h.update(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    h.update(load_openvino().__version__.encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:24]


# One OpenVINO Core for the whole process, made on first use and never released. OpenVINO's CPU
# plugin gives the thread that creates a Core an alternate signal stack of its own and, when that
# Core is freed, puts back the one it found. Two Cores freed in the order they were made (not the
# reverse) leave the thread on the first Core's stack, already unmapped: the next signal handled on
# the alternate stack (Python installs every handler with SA_ONSTACK; torch's data loader handles
# SIGCHLD, the app SIGINT and SIGTERM) cannot be delivered and the kernel kills the process with
# SIGSEGV. One Core that outlives every model keeps that stack valid.
_CORE = None
_CORE_LOCK = threading.Lock()


def decline_telemetry() -> None:
    """Send none of OpenVINO's or NNCF's usage telemetry from this process.

    Both send it unless a consent file in the user's home says no, without asking when no file
    exists; each event goes from a child forked from this process (the app, with its Qt and
    thread pools) that waits on the network with no timeout, and the process joins those
    children when it exits. Behind a proxy that holds the connection, a child that inherited a
    SIGTERM handler (the app's, which saves the annotations) never ends and the process never
    exits. Nobody was asked, so the answer is no: every consent check of the telemetry package
    declines, and a sender made before this (its owner imported NNCF first) stops sending."""
    try:
        # deferred: installed with OpenVINO, and only processes that use OpenVINO need this
        from openvino_telemetry import Telemetry
        from openvino_telemetry.utils.opt_in_checker import (
            ConsentCheckResult,
            OptInChecker,
        )
    except ImportError:
        return  # without the package, OpenVINO and NNCF send nothing
    OptInChecker.check = lambda self, *args, **kwargs: ConsentCheckResult.DECLINED
    try:
        Telemetry().consent = False  # the process-wide sender, when one was made already
    except RuntimeError:
        pass  # none made yet: the next one asks the check above


def load_openvino():
    """The ``openvino`` module, imported only after this process declined the telemetry that
    importing it sends (``decline_telemetry``). Every use of OpenVINO starts here."""
    decline_telemetry()
    # deferred: OpenVINO is optional and heavy; loaded when a model first needs it
    import openvino as ov

    return ov


def shared_core():
    """The process's one ``openvino.Core`` (see above); every compile and read goes through it."""
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            _CORE = load_openvino().Core()
        return _CORE


def ir_file(folder: Path) -> Path | None:
    """The IR's .xml in a cache folder when the folder holds a whole IR (.xml and .bin), else None."""
    xml = folder / IR_FILE
    return xml if xml.is_file() and xml.with_suffix(".bin").is_file() else None


def convert(model: SASNet, cache: Path | None = None, *, lean: bool = True):
    """(the OpenVINO model, dynamic height and width, of an eval-mode BatchNorm-folded ``model``;
    its IR file in ``cache``, or None where the cache could not be written). Read from the cache
    when converted before, else converted and written there atomically."""
    ov = load_openvino()
    core = shared_core()
    cache = Path(cache) if cache is not None else default_cache_dir()
    folder = cache / "ir" / model_key(model, lean)
    xml = ir_file(folder)
    if xml is not None:
        why = cache_digest.damage(folder)
        if why is None:
            try:
                return core.read_model(str(xml)), xml
            except Exception as exc:  # noqa: BLE001 - a damaged cache entry is rebuilt, never fatal
                why = f"cannot be read by OpenVINO ({type(exc).__name__})"
        log.warning(f"{folder}: the cached OpenVINO model {why}; converting the model again")
    # A damaged or half-present entry goes before rebuilding: the rename into place cannot
    # replace a folder that still holds files, and the next start would convert again.
    shutil.rmtree(folder, ignore_errors=True)
    k = model.config.block_size
    # The trace is taken at one shape with dynamic height and width; torch's warnings about
    # tracing (a shape check taken as a constant) say nothing the user can act on.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ov_model = ov.convert_model(_Outputs(model, lean).eval(), example_input=torch.zeros(1, 3, 2 * k, 2 * k),
                                    input=[(-1, 3, -1, -1)])
    for out, name in zip(ov_model.outputs, ("density", "levels", "confidence")):
        out.get_tensor().set_names({name})
    save_atomically(ov_model, folder)
    return ov_model, ir_file(folder)


STAGE_PREFIX = ".tmp-"  # a cache entry is written into a stage of this name, then renamed into place


def save_atomically(ov_model, folder: Path, beside: dict[str, str] | None = None) -> None:
    """Write the IR (and the text files ``beside``, name -> content) into a stage beside
    ``folder``, then rename it into place (``io.staging``): a reader never sees half of it, and a
    cache that cannot be written (read-only home) only costs the next start a conversion.
    Stages of processes that are gone (killed while converting, or quit while a model was
    loading), each the size of the model, are swept first."""
    ov = load_openvino()

    try:
        with staging.staged(folder.parent, STAGE_PREFIX) as tmp:
            ov.save_model(ov_model, str(tmp / IR_FILE), compress_to_fp16=False)
            for name, text in (beside or {}).items():
                (tmp / name).write_text(text)
            cache_digest.seal(tmp)
            staging.install(tmp, folder)  # False: another process won the race; its copy is as good
    except OSError:
        pass


class OpenVINORunner:
    """Runs an OpenVINO SASNet model on the CPU, compiled once for every input shape.

    ``precision``: "fp32", "bf16", or "int8" for a model NNCF has quantized (its remaining float
    layers run in ``float_precision``). ``source``: the model's IR on disk; once compiled, the
    model is dropped from memory (the compiled model holds its own copy of the weights, so keeping
    both costs the size of the model again) and read back from there for another thread count.
    """

    def __init__(self, ov_model, precision: str, float_precision: str = "fp32",
                 source: Path | None = None):
        if precision not in (*OV_PRECISION, "int8"):
            raise ValueError(f"OpenVINO runs fp32, bf16 or int8, not {precision!r}")
        self.precision = precision
        self.hint = OV_PRECISION[float_precision if precision == "int8" else precision]
        self.core = shared_core()
        self.model = ov_model
        self.source = Path(source) if source is not None else None
        # By thread count (the app leaves a core free): the compiled model and its one inference
        # request, reused so its buffers are allocated once per shape, not once per call.
        self._compiled: dict[int, tuple[object, object]] = {}
        self._largest = 0  # input elements of the largest inference since buffers were freed
        # ((threads, input shape), compiled model, request) of the last whole image large enough
        # for a model of its own shape (STATIC_MIN_PIXELS); one at a time, so its buffers go
        # before another shape's are planned.
        self._static: tuple[tuple, object, object] | None = None
        self._lock = threading.Lock()  # one inference at a time on the shared request

    def compiled(self, threads: int):
        return self._session(threads)[0]

    def _session(self, threads: int) -> tuple[object, object]:
        """(compiled model, its inference request) for ``threads``, compiled on first use."""
        hit = self._compiled.get(threads)
        if hit is None:
            model = self.model if self.model is not None else self.core.read_model(str(self.source))
            compiled = self.core.compile_model(model, "CPU", self._properties(threads))
            hit = self._compiled[threads] = (compiled, compiled.create_infer_request())
            if self.source is not None and self.source.is_file():
                self.model = None
        return hit

    def _properties(self, threads: int) -> dict:
        return {"INFERENCE_PRECISION_HINT": self.hint, "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_NUM_THREADS": int(threads)}

    def _static_session(self, threads: int, shape: tuple) -> tuple[object, object]:
        """(compiled model, request) for inputs of exactly ``shape``, compiled on first use."""
        key = (threads, tuple(int(n) for n in shape))
        if self._static is not None and self._static[0] == key:
            return self._static[1], self._static[2]
        self._static = None  # the previous shape's buffers go before this one's are planned
        for compiled, _ in self._compiled.values():  # and the dynamic model's
            compiled.release_memory()
        self._largest = 0
        if self.source is not None and self.source.is_file():
            model = self.core.read_model(str(self.source))
            self.model = None  # read back from the IR when needed: one copy of the weights less
        else:
            model = self.model.clone()  # the dynamic model stays as it is for tiles
        model.reshape({0: list(key[1])})
        compiled = self.core.compile_model(model, "CPU", self._properties(threads))
        del model
        self._static = (key, compiled, compiled.create_infer_request())
        return compiled, self._static[2]

    def _release_on_size_change(self, shape: tuple) -> None:
        # A compiled model keeps the activation buffers of its largest inference so far and reuses
        # them for smaller inputs. The tiles of an image come in several shapes, the largest
        # first, and run on one set of buffers: freeing them at every change of shape had the
        # process grow by 400 MB in eight 448 x 448 tiles of a 4K image (re-allocation), and it
        # stayed flat without. They are freed before an input larger than any since the last
        # release (one forward pass never holds the memory of two) and before one of under a
        # quarter of that size (the next image is small: the large one's buffers go back).
        pixels = int(np.prod(shape))
        if self._largest and (pixels > self._largest or 4 * pixels < self._largest):
            for compiled, _ in self._compiled.values():
                compiled.release_memory()
            self._largest = 0
        self._largest = max(self._largest, pixels)

    def forward(self, x: np.ndarray, keep_levels: bool = True, whole: bool = False):
        """(density (B,1,H,W), levels (B,5,H,W) or None, confidence (B,5,h,w)) as float32 arrays,
        for a normalised NCHW float32 batch ``x``. ``whole``: ``x`` holds whole images, not tiles
        (a large one runs on a model compiled for its shape, see STATIC_MIN_PIXELS)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        with self._lock:
            return self._forward(x, keep_levels, whole)

    def _forward(self, x: np.ndarray, keep_levels: bool, whole: bool = False):
        threads = torch.get_num_threads()
        static = whole and x.shape[-2] * x.shape[-1] >= STATIC_MIN_PIXELS
        if static:
            compiled, request = self._static_session(threads, x.shape)
        else:
            self._static = None  # a tile or a small image: the last large image's buffers go
            self._release_on_size_change(x.shape)
            compiled, request = self._session(threads)
        request.start_async({0: x})
        try:
            while not request.wait_for(_POLL_MS):
                checkpoint()
        except Cancelled:
            request.cancel()
            # A cancelled request refuses every later call: the next inference gets a new one.
            if static:
                self._static = (self._static[0], compiled, compiled.create_infer_request())
            else:
                self._compiled[threads] = (compiled, compiled.create_infer_request())
            raise
        # Copies: the request's buffers are reused by the next inference on this compiled model.
        density = request.get_tensor("density").data.copy()
        levels = request.get_tensor("levels").data.copy() if keep_levels else None
        confidence = request.get_tensor("confidence").data.copy()
        return density, levels, confidence
