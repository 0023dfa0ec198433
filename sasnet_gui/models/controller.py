"""The current model of the app: which checkpoint, on which device and precision.

``ModelController`` owns one ``Predictor`` (or None: the app still opens and annotates images
without a model). Loading a checkpoint takes seconds (torch.load of ~100 MB, BatchNorm folding),
so it runs in a superqt worker thread; views only listen to the signals:

    predictorChanged(object)  the new Predictor, or None
    loadFailed(str)           message naming the file and the problem
    busyChanged(bool)         a load is running
    registryChanged()         models were added to / removed from the registry through the GUI

Device and precision are remembered in the app's settings (``AppSettings``) and apply to the next
load; changing them reloads the current model.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from superqt.utils import create_worker

from sasnet_core.errors import SASNetError
from sasnet_core.registry import ModelRegistry
from sasnet_core.vocab import (DEFAULT_DEVICE, DEFAULT_INFERENCE_PRECISION, DEVICES,
                               INFERENCE_PRECISIONS as PRECISIONS)
from sasnet_gui.settings import AppSettings

log = logging.getLogger(__name__)
_DEVICE_KEY, _PRECISION_KEY = "models/device", "models/precision"

# How a person gets a model, in the app's words (menus, not shell commands); the command line
# has its own text in sasnet_core.registry.
HOW_TO_GET_A_MODEL = ("Use Model \u25b8 Get the Released Model\u2026 to download SHHA (dense crowds) or "
                      "SHHB (sparse street scenes) from the SASNet authors, drag a checkpoint (.pth) "
                      "onto the window, or add one with Add file in Model \u25b8 Models.")


def _load_predictor(weights, device: str, precision: str):
    """Worker body (runs off the GUI thread): resolve, load and prepare the model."""
    from sasnet_core.inference import Predictor

    return Predictor.from_weights(weights, device=device, precision=precision)


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return f"out of memory while loading the model; try device 'cpu' or precision 'bf16' ({text})"
    return text or type(exc).__name__


class ModelController(QObject):
    predictorChanged = Signal(object)
    loadFailed = Signal(str)
    busyChanged = Signal(bool)
    registryChanged = Signal()

    def __init__(self, parent: QObject | None = None, *, registry: ModelRegistry | None = None,
                 settings: AppSettings | None = None, load_default: bool = True):
        super().__init__(parent)
        self.registry = registry or ModelRegistry()
        self._settings = settings or AppSettings()
        self._device = self._read_setting(_DEVICE_KEY, DEVICES, DEFAULT_DEVICE)
        self._precision = self._read_setting(_PRECISION_KEY, PRECISIONS, DEFAULT_INFERENCE_PRECISION)
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

    def _change_setting(self, what: str, allowed: tuple, key: str, value: str) -> None:
        if value not in allowed:
            raise ValueError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
        if getattr(self, f"_{what}") == value:
            return
        setattr(self, f"_{what}", value)
        self._settings.set_value(key, str(value))
        self._settings.sync()
        if self._path is not None:  # the model in use moves to the new device / precision
            self.load(self._path, name=self._name)

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

    def is_busy(self) -> bool:
        return self._pending > 0 or self._default_scheduled

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
        worker = create_worker(_load_predictor, weights, self._device, self._precision,
                               _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda p: self._loaded(generation, weights, name, p))
        worker.errored.connect(lambda exc: self._failed(generation, exc))
        worker.finished.connect(lambda: self._workers.discard(worker))  # keep it alive till then
        self._workers.add(worker)
        self._pending += 1
        if self._pending == 1:
            self.busyChanged.emit(True)
        worker.start()

    def unload(self) -> None:
        """Use no model (e.g. the one in use was removed)."""
        self._generation += 1
        self._predictor, self._name, self._path = None, None, None
        self.predictorChanged.emit(None)

    def _one_done(self) -> None:
        # Before predictorChanged / loadFailed, so listeners already see is_busy() False.
        self._pending -= 1
        if self._pending == 0:
            self.busyChanged.emit(False)

    def _loaded(self, generation: int, weights, name: str | None, predictor) -> None:
        self._one_done()
        if generation != self._generation:
            return  # a newer load was asked for meanwhile
        info = getattr(predictor, "info", None)
        self._path = Path(info.path) if info is not None else Path(weights)
        self._name = name or self._registered_name(weights, self._path) or self._path.stem
        self._predictor = predictor
        self.predictorChanged.emit(predictor)

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
