"""The current model of the app: which checkpoint, on which device, backend and precision.

``ModelController`` owns one ``Predictor`` (or None: the app still opens and annotates images
without a model). Loading a checkpoint takes seconds (torch.load of ~100 MB, BatchNorm folding;
on the CPU the first use of a checkpoint also converts it for OpenVINO, about 15 s, then cached),
so it runs in a superqt worker thread; views only listen to the signals:

    predictorChanged(object)  the new Predictor, or None
    loadFailed(str)           message naming the file and the problem
    busyChanged(bool)         a load is running
    stageChanged(str)         what the running load is doing ("Preparing the model for this CPU…")
    engineNote(str)           something to tell the user once about the engine in use (OpenVINO
                              missing, int8 waiting for images, int8's measured count difference)
    registryChanged()         models were added to / removed from the registry through the GUI

Device, backend and precision are remembered in the app's settings (``AppSettings``) and apply to
the next load; changing them reloads the current model. ``auto`` is resolved by
``sasnet_core.engine.choice``; ``engine_text()`` says what it resolved to.

int8 is calibrated on the user's own images (``sasnet_core.engine.quantize``): the views hand the
controller their image list (``set_calibration_images``). Choosing int8 with no image open is
refused; int8 remembered from an earlier session counts with ``auto`` until images are opened
(``images_opened``), then the model is quantized on them.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from superqt.utils import create_worker

from sasnet_core.cli.argtypes import MIN_IMAGE_SIDE
from sasnet_core.engine.choice import (
    DEFAULT_BACKEND,
    DEFAULT_DEVICE,
    DEFAULT_PRECISION,
    choose_device,
    choose_engine,
)
from sasnet_core.util.errors import EngineUnavailableError, SASNetError
from sasnet_core.util.vocab import BACKENDS, DEVICES, Backend, Precision
from sasnet_core.util.vocab import INFERENCE_PRECISIONS as PRECISIONS
from sasnet_core.weights.registry import ModelRegistry
from sasnet_core.weights.released import Identity, kind_label
from sasnet_gui.settings import AppSettings
from sasnet_gui.widgets import HOW_TO_GET_A_MODEL

log = logging.getLogger(__name__)
_DEVICE_KEY, _PRECISION_KEY, _BACKEND_KEY = "models/device", "models/precision", "models/backend"
_MAX_SIDE_KEY = "models/max_side"
# The app's name of ``--max-side`` (downscale images whose long side exceeds it), as the hint for a
# very large image names it.
MAX_SIDE_SETTING = "Maximum side in Model \u25b8 Models\u2026 set to"

LOADING = "Loading model\u2026"
PREPARING = "Preparing the model for this CPU\u2026"
QUANTIZING = "Preparing the model for this CPU: int8 calibration on your images\u2026"
INT8_NEEDS_IMAGES = "open some images first: int8 calibrates on them"
INT8_WAITS = ("int8 calibrates on your images: open some and the model is quantized on them; "
              "until then it counts with the automatic precision")

# How a person gets a model, in the app's words (menus, not shell commands); the command line
# has its own text in sasnet_core.weights.registry.


def _resolved_engine(device: str, precision: str, backend: str):
    """What ``auto`` means here (EngineChoice); raises a SASNetError for a pair that cannot run."""
    return choose_engine(choose_device(device), precision, backend)


def _load_predictor(weights, device: str, precision: str, backend: str, calibration, max_side=None):
    """Worker body (runs off the GUI thread): resolve, load and prepare the model. Yields what it
    is doing when that takes long: OpenVINO converts a checkpoint on its first use, int8 also
    quantizes it on the calibration images."""
    # deferred: torch, loaded on the worker thread so the window opens first
    from sasnet_core.engine.inference import Predictor

    engine = _resolved_engine(device, precision, backend)
    if engine.backend == Backend.OPENVINO:
        yield QUANTIZING if engine.precision == Precision.INT8 else PREPARING
    return Predictor.from_weights(weights, device=device, precision=precision, backend=backend,
                                  calibration=calibration, max_side=max_side)


def _valid_max_side(value, strict: bool = False) -> int | None:
    """A maximum side from a setting or a person: None for off (0, empty); a stored value that is
    not a usable side is off, a person's is refused (``strict``)."""
    try:
        side = int(value or 0)
    except (TypeError, ValueError):
        side = -1
    if side == 0:
        return None
    if side >= MIN_IMAGE_SIDE:
        return side
    if strict:
        raise ValueError(f"the maximum side must be 0 (off) or at least {MIN_IMAGE_SIDE} pixels, got {value!r}")
    return None


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return f"out of memory while loading the model; try device 'cpu' or precision 'bf16' ({text})"
    return text or type(exc).__name__


class ModelController(QObject):
    predictorChanged = Signal(object)
    loadFailed = Signal(str)
    busyChanged = Signal(bool)
    stageChanged = Signal(str)
    engineNote = Signal(str)
    registryChanged = Signal()

    def __init__(self, parent: QObject | None = None, *, registry: ModelRegistry | None = None,
                 settings: AppSettings | None = None, load_default: bool = True):
        super().__init__(parent)
        self.registry = registry or ModelRegistry()
        self._settings = settings or AppSettings()
        self._device = self._read_setting(_DEVICE_KEY, DEVICES, DEFAULT_DEVICE)
        self._precision = self._read_setting(_PRECISION_KEY, PRECISIONS, DEFAULT_PRECISION)
        self._backend = self._read_setting(_BACKEND_KEY, BACKENDS, DEFAULT_BACKEND)
        self._max_side = _valid_max_side(self._settings.value(_MAX_SIDE_KEY, 0))
        self._calibration_source = lambda: []
        # The newest load counts with auto until images are opened, and what it loads.
        self._int8_waits = False
        self._target: tuple | None = None
        self._stage = LOADING
        self._notes_told: set[str] = set()  # each note is shown once a session
        self._predictor = None
        self._name: str | None = None
        self._path: Path | None = None
        self._generation = 0  # only the newest load may set the model
        self._workers: set = set()
        self._pending = 0  # loads started and not yet answered
        # Busy from the start when the default model will load: views say "Loading model…" rather
        # than "no model" during the moment before the load begins.
        self._default_scheduled = load_default
        if load_default:
            # After the event loop starts, so the window shows first and listeners are connected.
            QTimer.singleShot(0, self.load_default)

    # -- settings --------------------------------------------------------------------------
    def _read_setting(self, key: str, allowed: tuple, fallback: str) -> str:
        value = str(self._settings.value(key, fallback))
        return value if value in allowed else fallback

    @property
    def device(self) -> str:
        return self._device

    @device.setter
    def device(self, value: str) -> None:
        self._change_setting("device", DEVICES, _DEVICE_KEY, value)

    @property
    def precision(self) -> str:
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        self._change_setting("precision", PRECISIONS, _PRECISION_KEY, value)

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._change_setting("backend", BACKENDS, _BACKEND_KEY, value)

    @property
    def max_side(self) -> int | None:
        """Images whose long side exceeds this are downscaled before counting (None: never)."""
        return self._max_side

    @max_side.setter
    def max_side(self, value: int | None) -> None:
        """A new maximum side (0 or None: off): the model in use counts with it at once, and as a
        new model would, every open image is counted again."""
        side = _valid_max_side(value, strict=True)
        if side == self._max_side:
            return
        self._max_side = side
        self._settings.set_value(_MAX_SIDE_KEY, int(side or 0))
        self._settings.sync()
        if self._predictor is not None:
            # A new predictor, not the one changed in place: the image (or video) being counted
            # keeps one side throughout, and the file queue drops what the old one counts and
            # counts the image again with this one.
            self._predictor = self._predictor.with_max_side(side)
            self.predictorChanged.emit(self._predictor)

    def _change_setting(self, what: str, allowed: tuple, key: str, value: str) -> None:
        """Remember a new device / backend / precision and reload the model in use with it; raises
        a SASNetError (the setting unchanged) for a combination this machine cannot run."""
        if value not in allowed:
            raise ValueError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
        if getattr(self, f"_{what}") == value:
            return
        wanted = {"device": self._device, "precision": self._precision, "backend": self._backend, what: value}
        # Images are asked for only when int8 is chosen: int8 waiting for them (see load) must not
        # block a change of device.
        self.check_engine(**wanted, images=what == "precision")
        setattr(self, f"_{what}", value)
        self._settings.set_value(key, str(value))
        self._settings.sync()
        if self._path is not None:  # the model in use moves to the new device / precision
            self.load(self._path, name=self._name)

    def check_engine(self, device: str, precision: str, backend: str, *, images: bool = True) -> None:
        """Raise a SASNetError saying why ``device``/``precision``/``backend`` cannot count here
        (no such GPU, fp16 with OpenVINO, int8 without OpenVINO or NNCF, or, with ``images``,
        int8 with no image open to calibrate on)."""
        engine = _resolved_engine(device, precision, backend)
        if engine.precision == Precision.INT8:
            # deferred: torch and NNCF (optional and heavy)
            from sasnet_core.engine.quantize import nncf_missing_reason

            reason = nncf_missing_reason()
            if reason is not None:
                raise EngineUnavailableError(reason)
            if images and not self._calibration_images():
                raise EngineUnavailableError(INT8_NEEDS_IMAGES)

    # -- int8 calibration ------------------------------------------------------------------
    def set_calibration_images(self, source) -> None:
        """``source()`` lists the images int8 may calibrate on (the open file list); the core
        picks a handful spread over it."""
        self._calibration_source = source

    def _calibration_images(self) -> list[str]:
        try:
            return [str(p) for p in self._calibration_source()]
        except Exception:  # noqa: BLE001 - a view torn down at exit: no images
            log.exception("listing the calibration images failed")
            return []

    def images_opened(self, *_args) -> None:
        """Images were opened: int8 that waited for them can now quantize the model in use."""
        # Also while that load still runs (at start the default model and the images given on
        # the command line are opened in the same moment).
        if self._int8_waits and self._target is not None and self._calibration_images():
            weights, name = self._target
            self.load(weights, name=name)

    # -- state -----------------------------------------------------------------------------
    def predictor(self):
        return self._predictor

    def has_model(self) -> bool:
        return self._predictor is not None

    def current_name(self) -> str | None:
        return self._name

    def current_weights_path(self) -> Path | None:
        return self._path

    def current_info(self):
        """The CheckpointInfo of the model in use (kind, metadata), or None."""
        return getattr(self._predictor, "info", None)

    def current_kind(self) -> str | None:
        """What kind of model is in use, in the words every listing uses
        (``sasnet_core.weights.released.kind_label``): "released" only when the registry hashed this very
        file (same size and time) as a released one; None without a model."""
        info = self.current_info()
        if info is None:
            return None
        status = None
        try:
            path = Path(info.path).resolve()
            stat = path.stat()
            for entry in self.registry.entries():
                known = Identity.from_dict(entry.identity) if entry.identity else None
                if (known is not None and entry.path.resolve() == path and known.size == stat.st_size
                        and known.mtime == stat.st_mtime):
                    status = known.status
                    break
        except (OSError, SASNetError):  # a damaged registry or a vanished file: not called released
            status = None
        return kind_label(info.kind, info.metadata, status)

    def is_busy(self) -> bool:
        return self._pending > 0 or self._default_scheduled

    def stage(self) -> str:
        """What the running load is doing, for the views to show while ``is_busy()``."""
        return self._stage

    def engine_text(self) -> str | None:
        """'SHHA · OpenVINO bf16 · cpu': the model in use and what ``auto`` resolved to."""
        p = self._predictor
        if p is None:
            return None
        engine = getattr(p, "engine", None)
        how = engine.describe() if engine is not None else str(getattr(p, "precision", ""))
        return " \u00b7 ".join(part for part in (self._name, how, p.device.type) if part)

    def engine_notes(self) -> list[str]:
        """What the user should know about the engine in use: why it is not the one asked for,
        and int8's measured count difference from fp32 on their images."""
        p = self._predictor
        if p is None:
            return []
        notes = []
        engine = getattr(p, "engine", None)
        if engine is not None and engine.note:
            notes.append(engine.note)
        if self._int8_waits:
            notes.append(INT8_WAITS)
        report = getattr(getattr(p, "runner", None), "int8_report", None)
        if report is not None:
            notes.append(report.describe())
        return notes

    @staticmethod
    def how_to_get_a_model() -> str:
        return HOW_TO_GET_A_MODEL

    # -- loading ---------------------------------------------------------------------------
    def load_default(self) -> bool:
        """Load the registry's default model in the background; False when there is none."""
        try:
            entry = self.registry.default()
        except Exception as exc:  # a damaged registry: say so, keep running without a model
            self._default_done()
            self.loadFailed.emit(_error_text(exc))
            return False
        if entry is None:
            self._default_done()
            return False
        self.load(entry.name)
        self._default_scheduled = False
        return True

    def _default_done(self) -> None:
        if self._default_scheduled:
            self._default_scheduled = False
            if self._pending == 0:
                self.busyChanged.emit(False)

    def load(self, weights: str | os.PathLike, *, name: str | None = None) -> None:
        """Load a checkpoint file or registered model name off the GUI thread."""
        self._generation += 1
        generation = self._generation
        precision, calibration, int8_waits = self._precision, None, False
        if precision == Precision.INT8:
            calibration = self._calibration_images()
            if not calibration:  # int8 from an earlier session, nothing open yet: see images_opened
                precision, int8_waits = str(DEFAULT_PRECISION), True
        self._int8_waits, self._target = int8_waits, (weights, name)
        worker = create_worker(_load_predictor, weights, self._device, precision, self._backend, calibration,
                               self._max_side, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(lambda stage: self._set_stage(generation, stage))
        worker.returned.connect(lambda p: self._loaded(generation, weights, name, p))
        worker.errored.connect(lambda exc: self._failed(generation, exc))
        worker.finished.connect(lambda: self._workers.discard(worker))  # keep it alive till then
        self._workers.add(worker)
        self._pending += 1
        self._stage = LOADING
        if self._pending == 1:
            self.busyChanged.emit(True)
        self.stageChanged.emit(LOADING)
        worker.start()

    def _set_stage(self, generation: int, stage: str) -> None:
        if generation == self._generation:
            self._stage = stage
            self.stageChanged.emit(stage)

    def unload(self) -> None:
        """Use no model (e.g. the one in use was removed)."""
        self._generation += 1
        self._predictor, self._name, self._path = None, None, None
        self._int8_waits, self._target = False, None
        self.predictorChanged.emit(None)

    def _one_done(self) -> None:
        # Before predictorChanged / loadFailed, so listeners already see is_busy() False.
        self._pending -= 1
        if self._pending == 0:
            self.busyChanged.emit(False)

    def _loaded(self, generation: int, weights, name: str | None, predictor) -> None:
        if isinstance(predictor, BaseException):
            # superqt's generator workers return a RuntimeError raised in the body instead of
            # emitting errored (torch and OpenVINO raise RuntimeErrors).
            self._failed(generation, predictor)
            return
        self._one_done()
        if generation != self._generation:
            return  # a newer load was asked for meanwhile
        info = getattr(predictor, "info", None)
        self._path = Path(info.path) if info is not None else Path(weights)
        self._name = name or self._registered_name(weights, self._path) or self._path.stem
        self._predictor = predictor
        self.predictorChanged.emit(predictor)
        for note in self.engine_notes():
            if note not in self._notes_told:
                self._notes_told.add(note)
                self.engineNote.emit(note)

    def _registered_name(self, weights, path: Path) -> str | None:
        try:
            entries = self.registry.entries()
        except Exception:  # noqa: BLE001 - a damaged registry only costs us the nice name
            return None
        for e in entries:
            if e.name == str(weights):
                return e.name
        for e in entries:
            if e.path.resolve() == path.resolve():
                return e.name
        return None

    def _failed(self, generation: int, exc: BaseException) -> None:
        self._one_done()
        if not isinstance(exc, (SASNetError, OSError, MemoryError)):  # a bug: keep its traceback
            log.error("loading a model failed", exc_info=(type(exc), exc, exc.__traceback__))
        if generation == self._generation:
            self.loadFailed.emit(_error_text(exc))

    def wait(self, timeout_ms: int = 60000) -> bool:
        """Block until running loads finish (scripts and shutdown; never from a slot)."""
        from PySide6.QtCore import QThreadPool

        return QThreadPool.globalInstance().waitForDone(timeout_ms)
