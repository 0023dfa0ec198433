"""The app while one large image is counted: its row, the counts panel and the status bar say how
far it is and, for a photo of tens of megapixels, which setting makes it faster."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from sasnet_core.io.imageio import write_image


@pytest.fixture
def tiled_predictor():
    from sasnet_core.engine.inference import Predictor
    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet

    torch.manual_seed(0)
    return Predictor(SASNet(SASNetConfig(width_mult=0.125)), device="cpu", precision="fp32",
                     backend="torch", tile=64)


def test_a_large_image_shows_its_tiles_while_counted_and_the_max_side_hint(
        qtbot, main_window, fake_controller, tiled_predictor, tmp_path, monkeypatch):
    from sasnet_core.engine import inference
    from sasnet_gui.models.controller import MAX_SIDE_SETTING

    monkeypatch.setattr(inference, "LARGE_IMAGE_MEGAPIXELS", 0.01)  # 160 x 96 stands for 8000 x 6000
    image = tmp_path / "plaza.png"
    write_image(image, np.random.default_rng(0).integers(0, 255, (96, 160, 3), dtype=np.uint8))
    window = main_window
    with qtbot.waitSignal(window.session.imageShown, timeout=10_000):
        window.open_paths([str(image)])  # the person looks at the photo; then the model arrives
    row = window.files.row_of(str(image))
    seen = []

    def look(_path, event):  # what a person sees at each tile (the window has handled it already)
        status = window.files.index(row, 1)
        seen.append((event.done, window.files.data(status), window.files.data(status, Qt.ItemDataRole.ToolTipRole),
                     window.counts.texts()["model_note"], window.statusBar().currentMessage()))

    window.counter.tileProgress.connect(look)
    with qtbot.waitSignal(window.counter.counted, timeout=120_000):
        fake_controller.set(tiled_predictor)  # the model arrives: the image on screen is counted
    assert [done for done, *_ in seen] == list(range(7))  # 6 tiles, and the moment before the first
    statuses = [status for _, status, *_ in seen]
    assert statuses[0] == "counting 0%" and statuses[3] == "counting 50%" and statuses[-1] == "counting 100%"
    _, _, tip, note, message = seen[2]
    assert "\ncounting: tile 2/6 \u00b7 " in tip and " left" in tip.split("counting: ")[1]
    assert note.startswith("counting\u2026 tile 2/6 \u00b7") and note.endswith("left")
    hint = seen[0][4]
    assert hint.startswith("plaza.png: 160 x 96 pixels") and f"{MAX_SIDE_SETTING} 4096" in hint
    qtbot.wait(300)
    assert [done for done, *_ in seen].count(0) == 1  # counted once, not again when the model came
    # counted: the row and the panel no longer speak of tiles
    qtbot.waitUntil(lambda: window.files.data(window.files.index(row, 1)) != "counting 100%", timeout=10_000)
    assert "tile" not in window.counts.texts()["model_note"]
    assert "counting" not in window.files.data(window.files.index(row, 1), Qt.ItemDataRole.ToolTipRole)


def test_the_maximum_side_is_a_setting_of_the_models_dialog(qtbot, tmp_path):
    """The app's --max-side, named by the hint: set in Model ▸ Models…, kept, and counting with it."""
    from _gui_helpers import make_controller, register_tiny_model

    from sasnet_gui.models.controller import ModelController
    from sasnet_gui.models.dialog import ModelsDialog

    register_tiny_model(tmp_path, "tiny")
    controller = make_controller(qtbot)
    dialog = ModelsDialog(controller)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.max_side_spin.text() == "off" and controller.max_side is None
    spin = dialog.max_side_spin
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "2048")
    with qtbot.waitSignal(controller.predictorChanged, timeout=10_000):  # open images are counted again
        qtbot.keyClick(spin, Qt.Key.Key_Enter)
    assert controller.max_side == 2048 and controller.predictor().max_side == 2048
    assert "2048" in dialog.status_label.text()
    assert ModelController(load_default=False).max_side == 2048  # remembered for the next start

    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "20")  # too small to hold a head: refused in words, the field put back
    qtbot.keyClick(spin, Qt.Key.Key_Enter)
    assert controller.max_side == 2048 and spin.value() == 2048
    assert "at least 64" in dialog.status_label.text()


@pytest.mark.parametrize("stored", ["abc", "-5", "10", "", "1e9", "[1, 2]"])
def test_a_damaged_maximum_side_setting_counts_at_full_size(qtbot, stored):
    from sasnet_gui.models.controller import ModelController
    from sasnet_gui.settings import AppSettings

    settings = AppSettings()
    settings.set_value("models/max_side", stored)
    settings.sync()
    assert ModelController(load_default=False).max_side is None


def test_changing_the_maximum_side_while_an_image_is_counted_shows_its_count_at_the_new_side(
        qtbot, tmp_path, monkeypatch):
    """The image on screen is being counted when the person sets Maximum side in Model ▸ Models…:
    that count is not altered half way (it runs at the side it began with, and is dropped); the
    image is counted again, and the count shown is the one at the new side."""
    import threading

    from _gui_helpers import open_main_window, register_tiny_model

    from sasnet_core.engine.inference import Predictor
    from sasnet_gui.models.dialog import ModelsDialog
    from sasnet_gui.settings import AppSettings

    settings = AppSettings()
    settings.set_value("models/backend", "torch")  # no OpenVINO conversion: the test stays short
    settings.sync()
    register_tiny_model(tmp_path, "tiny")
    window = open_main_window(qtbot, load_default=True)
    qtbot.waitUntil(window.controller.has_model, timeout=60_000)
    image = tmp_path / "square.png"
    write_image(image, np.random.default_rng(1).integers(0, 255, (120, 200, 3), dtype=np.uint8))

    entered, release = threading.Event(), threading.Event()
    runs = []  # (side the predictor had when a count began, and when it ended)
    real = Predictor.predict_batch

    def slow(self, images):  # the first count waits until the setting has been changed
        begun = self.max_side
        try:
            if not entered.is_set():
                entered.set()
                release.wait(30)
            return real(self, images)
        finally:
            runs.append((begun, self.max_side))

    monkeypatch.setattr(Predictor, "predict_batch", slow)
    try:
        window.open_paths([str(image)])
        qtbot.waitUntil(entered.is_set, timeout=10_000)
        window.act_models.trigger()
        dialog = window.findChild(ModelsDialog)
        spin = dialog.max_side_spin
        spin.lineEdit().selectAll()
        qtbot.keyClicks(spin, "64")
        qtbot.keyClick(spin, Qt.Key.Key_Enter)
        assert window.controller.max_side == 64
        with qtbot.waitSignal(window.counter.counted, timeout=60_000,
                              check_params_cb=lambda path, _r: path == str(image)):
            release.set()
    finally:
        release.set()
    assert runs[0] == (None, None)  # the count under way kept the side it began with
    shown = window.session.results[str(image)].count
    at_64 = window.controller.predictor().predict(str(image)).count
    full = window.controller.predictor().with_max_side(None).predict(str(image)).count
    assert shown == pytest.approx(at_64, rel=1e-4) and at_64 != pytest.approx(full, rel=1e-3)
    window.counter.cancel()
    window.counter.wait_idle()
    window.close()
