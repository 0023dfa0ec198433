"""Shared helpers of the GUI tests for models, video and fine-tuning (import before any Qt widget).

Plain functions only: fixtures, ``studio_home`` among them, are in ``conftest.py``.
"""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

TINY_WIDTH = 0.125


def make_tiny_checkpoint(path: str | os.PathLike, seed: int = 0, name: str | None = None) -> Path:
    """A SASNet with 1/8 of the channels (fast on CPU), in our checkpoint format."""
    import torch

    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet
    from sasnet_core.weights.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    model = SASNet(SASNetConfig(width_mult=TINY_WIDTH))
    return save_checkpoint(path, model, {"name": name or Path(path).stem})


def make_video(path: str | os.PathLike, frames: int = 20, size: tuple[int, int] = (160, 128),
               fps: float = 10.0) -> Path:
    """An MJPG .avi of moving dark dots on a grey background; frame i has a bar i pixels wide."""
    import cv2

    path = Path(path)
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    rng = np.random.default_rng(0)
    pts = rng.uniform((8, 8), (w - 8, h - 8), size=(12, 2))
    for i in range(frames):
        img = np.full((h, w, 3), 170, np.uint8)
        for x, y in pts + (i, 0):
            cv2.circle(img, (int(x) % w, int(y)), 3, (40, 30, 30), -1)
        img[:4, : min(w, i * 4)] = (0, 0, 255)  # a frame marker a test can see
        writer.write(img)
    writer.release()
    return path


def make_annotated_images(folder: str | os.PathLike, n: int = 3, size: tuple[int, int] = (64, 64),
                          reviewed: bool | list[bool] = True, seed: int = 0) -> list[Path]:
    """Small synthetic crowd images with *.sasnet.json annotations beside them."""
    from sasnet_core.training.synthetic import make_blob_dataset

    return make_blob_dataset(Path(folder).resolve(), n_images=n, size=size, max_heads=8,
                             layout="annotations", seed=seed, reviewed=reviewed)


def register_tiny_model(home_tmp: Path, name: str = "tiny", make_default: bool = True) -> Path:
    """A tiny checkpoint registered under ``name`` in the (test) registry."""
    from sasnet_core.weights.registry import ModelRegistry

    path = make_tiny_checkpoint(home_tmp / f"{name}.pth", name=name)
    ModelRegistry().add(name, path, make_default=make_default)
    return path


def make_controller(qtbot, load_default: bool = True):
    """A ModelController on the test home; waits for the default model when one is registered."""
    from sasnet_core.weights.registry import ModelRegistry
    from sasnet_gui.models.controller import ModelController

    has_default = ModelRegistry().default() is not None
    controller = ModelController(load_default=False)
    if load_default and has_default:
        with qtbot.waitSignal(controller.predictorChanged, timeout=60000):
            controller.load_default()
    return controller


def fake_controller_class():
    """A stand-in for ModelController: the main window only needs its signals and getters.
    (Built on first use so importing this module does not import Qt before the tests set it up.)"""
    from PySide6.QtCore import QObject, Signal

    from sasnet_core.weights.registry import ModelRegistry

    class FakeController(QObject):
        predictorChanged = Signal(object)
        loadFailed = Signal(str)
        busyChanged = Signal(bool)
        registryChanged = Signal()
        stageChanged = Signal(str)
        engineNote = Signal(str)
        device, precision, backend = "cpu", "fp32", "auto"
        max_side = None  # a real controller's default: images counted at their own size

        def __init__(self, name: str = "tiny"):
            super().__init__()
            self._p = None
            self._name = name
            self.registry = ModelRegistry()  # the test's own (empty) registry
            self.loads: list = []  # what the views asked to load

        def predictor(self):
            return self._p

        def current_name(self):
            return self._name if self._p is not None else None

        def has_model(self) -> bool:
            return self._p is not None

        def is_busy(self) -> bool:
            return False

        def stage(self) -> str:
            return ""

        def engine_text(self):
            return self.current_name()

        def engine_notes(self) -> list:
            return []

        def set_calibration_images(self, source) -> None:
            pass

        def images_opened(self, *_args) -> None:
            pass

        def current_weights_path(self):
            return None

        def current_info(self):
            return None

        def current_kind(self):
            return None

        def load(self, weights, *, name=None) -> None:
            self.loads.append(weights)

        def unload(self) -> None:
            self.set(None)

        def set(self, predictor):
            self._p = predictor
            self.predictorChanged.emit(predictor)

    return FakeController


def open_main_window(qtbot, load_default: bool = False, size: tuple[int, int] = (1000, 700)):
    """The main window with a real ModelController on the test home, shown and exposed."""
    from sasnet_gui.main_window import MainWindow
    from sasnet_gui.models.controller import ModelController

    window = MainWindow(controller=ModelController(load_default=load_default))
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    return window
