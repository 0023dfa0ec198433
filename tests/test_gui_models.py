"""The model controller and the Models dialog, driven through their real widgets (offscreen)."""
from __future__ import annotations

from _gui_helpers import make_controller, make_tiny_checkpoint, register_tiny_model
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox  # noqa: E402

from sasnet_core.util import paths  # noqa: E402
from sasnet_core.weights.checkpoint import save_checkpoint  # noqa: E402
from sasnet_core.weights.registry import ModelRegistry  # noqa: E402
from sasnet_gui.widgets import HOW_TO_GET_A_MODEL  # noqa: E402


def _dialog(qtbot, controller):
    from sasnet_gui.models.dialog import ModelsDialog

    dialog = ModelsDialog(controller)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _cell(dialog, row, column):
    from sasnet_gui.models.dialog import COLUMNS

    return dialog.table.item(row, COLUMNS.index(column)).text()


def test_no_model_says_how_to_get_one(qtbot, studio_home):
    controller = make_controller(qtbot)
    assert controller.predictor() is None and controller.current_name() is None
    assert controller.load_default() is False
    dialog = _dialog(qtbot, controller)
    assert dialog.table.rowCount() == 0
    assert dialog.empty_label.isVisible() and not dialog.table.isVisible()
    assert HOW_TO_GET_A_MODEL in dialog.empty_label.text()
    assert "no model" in dialog.current_label.text()
    assert not dialog.use_button.isEnabled() and not dialog.remove_button.isEnabled()


def test_default_model_loads_in_background_at_start(qtbot, studio_home, tmp_path):
    from sasnet_gui.models.controller import ModelController

    register_tiny_model(tmp_path, "tiny")
    busy = []
    controller = ModelController()  # load_default=True: starts once the event loop runs
    controller.busyChanged.connect(busy.append)
    assert controller.predictor() is None  # nothing loaded on the GUI thread
    with qtbot.waitSignal(controller.predictorChanged, timeout=60000) as blocker:
        pass
    assert blocker.args[0] is controller.predictor() is not None
    assert controller.current_name() == "tiny"
    assert controller.current_weights_path() == tmp_path / "tiny.pth"
    qtbot.waitUntil(lambda: busy == [True, False])
    assert controller.predictor().predict(__import__("numpy").zeros((64, 64, 3), "uint8")).count >= 0


def test_add_file_through_the_dialog_then_use_it(qtbot, studio_home, tmp_path, monkeypatch):
    ckpt = make_tiny_checkpoint(tmp_path / "street cam.pth")
    controller = make_controller(qtbot)
    dialog = _dialog(qtbot, controller)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(ckpt), ""))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (k.get("text", "x"), True))
    with qtbot.waitSignals([dialog.modelAdded, controller.predictorChanged], timeout=60000):
        qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    entry = ModelRegistry().get("street-cam")  # name suggested from the file name
    assert entry is not None and entry.path == ckpt and entry.is_default
    assert dialog.table.rowCount() == 1 and dialog.table.isVisible()
    assert _cell(dialog, 0, "Name").startswith("street-cam") and "default" in _cell(dialog, 0, "Name")
    assert _cell(dialog, 0, "Kind") == "ours"
    assert controller.current_name() == "street-cam"  # the first model is used right away
    assert "street-cam" in dialog.current_label.text()


def test_metadata_columns_set_default_use_and_remove(qtbot, studio_home, tmp_path, monkeypatch):
    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet

    register_tiny_model(tmp_path, "base")
    ft = save_checkpoint(tmp_path / "ft.pth", SASNet(SASNetConfig(width_mult=0.125)), {
        "kind": "finetuned", "parent_name": "base", "parent": str(tmp_path / "base.pth"),
        "finetune_images": ["a.png", "b.png", "c.png"], "data": str(tmp_path / "frames"),
        "val_mae_before": 4.25, "val_mae": 1.5, "trained": "2025-01-02T03:04:05+00:00"})
    ModelRegistry().add("street-ft", ft)
    controller = make_controller(qtbot)
    assert controller.current_name() == "base"
    dialog = _dialog(qtbot, controller)
    assert dialog.table.rowCount() == 2
    assert dialog.select("street-ft")
    row = dialog.table.currentRow()
    assert _cell(dialog, row, "Kind") == "finetuned"
    assert _cell(dialog, row, "Parent") == "base"
    assert _cell(dialog, row, "Trained on") == "3 images (frames)"
    assert _cell(dialog, row, "Date") == "2025-01-02 03:04"
    assert (_cell(dialog, row, "MAE before"), _cell(dialog, row, "MAE after")) == ("4.25", "1.50")

    qtbot.mouseClick(dialog.default_button, Qt.MouseButton.LeftButton)
    assert ModelRegistry().default().name == "street-ft"
    assert "default" in _cell(dialog, dialog.table.currentRow(), "Name")

    with qtbot.waitSignal(controller.predictorChanged, timeout=60000):
        qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert controller.current_name() == "street-ft"
    assert controller.current_info().metadata["kind"] == "finetuned"

    dialog.select("base")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert [e.name for e in ModelRegistry().entries()] == ["street-ft"]
    assert (tmp_path / "base.pth").is_file()  # the file itself stays
    assert dialog.table.rowCount() == 1


def test_device_and_precision_are_remembered(qtbot, studio_home, tmp_path):
    from sasnet_gui.models.controller import ModelController

    register_tiny_model(tmp_path, "tiny")
    controller = make_controller(qtbot)
    dialog = _dialog(qtbot, controller)
    assert dialog.device_combo.currentText() == "auto"
    with qtbot.waitSignal(controller.predictorChanged, timeout=60000):  # reloads the model
        dialog.precision_combo.setCurrentText("bf16")
    assert controller.predictor().precision == "bf16"
    with qtbot.waitSignal(controller.predictorChanged, timeout=60000):
        dialog.device_combo.setCurrentText("cpu")
    assert str(controller.predictor().device) == "cpu"
    ini = paths.config_dir() / "gui.ini"
    assert ini.is_file() and "bf16" in ini.read_text()
    again = ModelController(load_default=False)
    assert (again.device, again.precision) == ("cpu", "bf16")
    assert _dialog(qtbot, again).precision_combo.currentText() == "bf16"


def test_bad_files_show_an_error_and_the_app_keeps_going(qtbot, studio_home, tmp_path):
    bad = tmp_path / "notes.pth"
    bad.write_text("this is not a checkpoint")
    controller = make_controller(qtbot)
    dialog = _dialog(qtbot, controller)
    dialog.add_file(bad, "notes")
    qtbot.waitUntil(lambda: dialog.last_error is not None, timeout=30000)
    assert str(bad) in dialog.last_error
    box = dialog.findChild(QMessageBox)
    assert box is not None and str(bad) in box.informativeText()
    assert ModelRegistry().entries() == []

    failures = []
    controller.loadFailed.connect(failures.append)
    with qtbot.waitSignal(controller.loadFailed, timeout=30000):
        controller.load(tmp_path / "missing.pth")
    assert str(tmp_path / "missing.pth") in failures[0] and controller.predictor() is None
    assert "missing.pth" in dialog.status_label.text()


def test_use_says_loading_and_then_which_model_is_in_use(qtbot, studio_home, tmp_path):
    register_tiny_model(tmp_path, "base")
    register_tiny_model(tmp_path, "other", make_default=False)
    controller = make_controller(qtbot)
    dialog = _dialog(qtbot, controller)
    dialog.select("other")
    with qtbot.waitSignal(controller.predictorChanged, timeout=60000):
        qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
        assert dialog.status_label.text() == "Loading other…"
        assert dialog.current_label.text() == "Loading model…"
    assert dialog.status_label.text() == "Using other."
    assert "other" in dialog.current_label.text() and "Loading" not in dialog.current_label.text()


def test_removing_a_model_made_by_the_app_offers_to_delete_its_file(qtbot, studio_home, tmp_path, monkeypatch):
    register_tiny_model(tmp_path, "base")
    kept = make_tiny_checkpoint(paths.models_dir() / "kept.pth")
    gone = make_tiny_checkpoint(paths.models_dir() / "gone.pth")
    ModelRegistry().add("kept", kept)
    ModelRegistry().add("gone", gone)
    controller = make_controller(qtbot)
    dialog = _dialog(qtbot, controller)
    asked = []

    def answer(button):
        def question(parent, title, text, *rest):
            asked.append(text)
            return button
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    dialog.select("gone")
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert str(gone) in asked[-1] and gone.is_file() and ModelRegistry().get("gone") is not None

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert not gone.exists() and ModelRegistry().get("gone") is None
    assert "deleted" in dialog.status_label.text()

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    dialog.select("kept")
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert kept.is_file() and ModelRegistry().get("kept") is None

    dialog.select("base")  # a file the person brought: only "remove from the list" is offered
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert "stays on disk" in asked[-1] and (tmp_path / "base.pth").is_file()


def test_adding_a_name_in_use_asks_before_replacing(qtbot, studio_home, tmp_path, monkeypatch):
    old = register_tiny_model(tmp_path, "street")
    new = make_tiny_checkpoint(tmp_path / "street-v2.pth", seed=1)
    controller = make_controller(qtbot)
    dialog = _dialog(qtbot, controller)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(new), ""))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("street", True))
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert asked and "street" in asked[0] and "--replace" not in asked[0]
    assert ModelRegistry().get("street").path == old and dialog.last_error is None

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(dialog.modelAdded, timeout=60000):
        qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert ModelRegistry().get("street").path == new and dialog.last_error is None


# -- the engine that counts: backend and precision, as the app shows them ---------------------------
def _auto_precision() -> str:
    from sasnet_core.engine.choice import cpu_has_native_bf16

    return "bf16" if cpu_has_native_bf16() else "fp32"


def _start_app(qtbot):
    """The app as `sasnet-gui` starts it, and every text its status bar showed for the model while
    the default model loaded."""
    from sasnet_gui.app import create_window

    window = create_window()
    qtbot.addWidget(window)
    shown = [window.model_label.text()]
    window.controller.stageChanged.connect(lambda _s: shown.append(window.model_label.text()))
    with qtbot.waitSignal(window.controller.predictorChanged, timeout=120_000):
        pass
    return window, shown


def _close(window) -> None:
    window.counter.cancel()
    window.counter.wait_idle()
    window.document.flush()
    window.close()


def _models_dialog(qtbot, window):
    from sasnet_gui.models.dialog import ModelsDialog

    window.act_models.trigger()
    dialog = window.findChild(ModelsDialog)
    assert dialog is not None and dialog.isVisible()
    return dialog


def _choose(qtbot, combo, text: str) -> None:
    """Pick an item the way a person does with the keyboard: focus the combo, type its name."""
    combo.setFocus()
    qtbot.wait(QApplication.keyboardInputInterval() + 50)  # a new search, not the last one continued
    qtbot.keyClicks(combo, text)


def _open_images(qtbot, window, monkeypatch, folder, gui, n=3):
    images = gui.write_images(folder, n=n, h=64, w=96)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(p) for p in images], ""))
    window.act_open.trigger()
    return images


def test_status_bar_shows_the_resolved_engine_and_the_models_dialog_changes_it(qtbot, studio_home, tmp_path):
    register_tiny_model(tmp_path, "tiny")
    window, shown = _start_app(qtbot)
    auto = _auto_precision()
    # While the model is converted for OpenVINO the app says so, then what "auto" resolved to.
    assert list(dict.fromkeys(shown)) == ["Loading model\u2026", "Preparing the model for this CPU\u2026"]
    assert window.model_label.text() == f"tiny \u00b7 OpenVINO {auto} \u00b7 cpu"
    assert window.model_label.toolTip() == ""  # nothing to tell: the engine is the one asked for

    dialog = _models_dialog(qtbot, window)
    assert [dialog.precision_combo.itemText(i) for i in range(dialog.precision_combo.count())] == \
        ["auto", "fp32", "bf16", "fp16", "int8"]
    assert dialog.precision_combo.currentText() == "auto" and dialog.backend_combo.currentText() == "auto"
    assert "natively" in dialog.precision_combo.itemData(0, Qt.ItemDataRole.ToolTipRole)
    assert f"OpenVINO {auto} \u00b7 cpu" in dialog.current_label.text()

    with qtbot.waitSignal(window.controller.predictorChanged, timeout=60_000):
        _choose(qtbot, dialog.precision_combo, "fp32")
    assert window.model_label.text() == "tiny \u00b7 OpenVINO fp32 \u00b7 cpu"
    assert "<b>tiny</b> \u00b7 OpenVINO fp32 \u00b7 cpu" in dialog.current_label.text()

    with qtbot.waitSignal(window.controller.predictorChanged, timeout=60_000):
        _choose(qtbot, dialog.backend_combo, "torch")
    assert window.model_label.text() == "tiny \u00b7 torch fp32 \u00b7 cpu"
    assert window.controller.predictor().backend == "torch"

    # A pair that cannot run is refused in the dialog, in words, and nothing changes.
    _choose(qtbot, dialog.precision_combo, "int8")
    assert "int8 counting needs the OpenVINO backend: choose the openvino backend" in dialog.status_label.text()
    assert dialog.precision_combo.currentText() == "fp32" and window.controller.precision == "fp32"
    _choose(qtbot, dialog.device_combo, "mps")  # no Apple GPU on this machine
    assert "MPS" in dialog.status_label.text() and "--" not in dialog.status_label.text()
    assert dialog.device_combo.currentText() == "auto" and window.controller.device == "auto"
    with qtbot.waitSignal(window.controller.predictorChanged, timeout=60_000):
        _choose(qtbot, dialog.backend_combo, "auto")  # a choice that works: the refusal above is gone
    assert dialog.status_label.text() == "Backend: auto."
    with qtbot.waitSignal(window.controller.predictorChanged, timeout=60_000):
        _choose(qtbot, dialog.backend_combo, "torch")
    ini = (paths.config_dir() / "gui.ini").read_text()
    assert "backend=torch" in ini and "precision=fp32" in ini
    _close(window)


def test_without_openvino_the_app_counts_with_torch_and_says_why_once(qtbot, studio_home, tmp_path,
                                                                      monkeypatch, gui):
    from sasnet_core.engine import openvino_backend

    reason = "OpenVINO is not installed (pip install openvino)"
    monkeypatch.setattr(openvino_backend, "unavailable_reason", lambda: reason)
    register_tiny_model(tmp_path, "tiny")
    window, shown = _start_app(qtbot)
    assert "Preparing the model for this CPU\u2026" not in shown  # torch: nothing to convert
    assert window.model_label.text() == f"tiny \u00b7 torch {_auto_precision()} \u00b7 cpu"
    assert reason in window.statusBar().currentMessage()  # told once, not in a dialog
    assert reason in window.model_label.toolTip()  # and kept where it can be read again
    assert window.findChild(QMessageBox) is None

    (image, *_) = _open_images(qtbot, window, monkeypatch, tmp_path / "imgs", gui)
    qtbot.waitUntil(lambda: window.session.current_result() is not None, timeout=60_000)
    assert window.session.current_result().count >= 0

    dialog = _models_dialog(qtbot, window)
    assert reason in dialog.current_label.text()
    _choose(qtbot, dialog.backend_combo, "openvino")  # cannot run: refused, torch stays
    assert reason in dialog.status_label.text() and dialog.backend_combo.currentText() == "auto"
    window.statusBar().clearMessage()
    with qtbot.waitSignal(window.controller.predictorChanged, timeout=60_000):
        _choose(qtbot, dialog.precision_combo, "fp32")
    assert window.model_label.text() == "tiny \u00b7 torch fp32 \u00b7 cpu"
    assert window.statusBar().currentMessage() == ""  # the same note is not repeated
    assert reason in window.model_label.toolTip()
    _close(window)


def test_precisions_saved_by_earlier_versions_still_load(qtbot, studio_home, tmp_path):
    from sasnet_gui.models.controller import ModelController
    from sasnet_gui.settings import AppSettings

    register_tiny_model(tmp_path, "tiny")
    assert ModelController(load_default=False).precision == "auto"  # the default now
    old = AppSettings()
    old.set_value("models/precision", "fp32")  # as earlier versions wrote it; no backend key yet
    old.sync()
    window, _shown = _start_app(qtbot)
    assert (window.controller.precision, window.controller.backend) == ("fp32", "auto")
    assert window.model_label.text() == "tiny \u00b7 OpenVINO fp32 \u00b7 cpu"
    assert _models_dialog(qtbot, window).precision_combo.currentText() == "fp32"
    _close(window)

    damaged = AppSettings()
    damaged.set_value("models/precision", "fp8")
    damaged.set_value("models/backend", "tensorrt")
    damaged.sync()
    again = ModelController(load_default=False)
    assert (again.precision, again.backend) == ("auto", "auto")


def test_int8_calibrates_on_the_open_images_and_says_how_far_its_counts_are(qtbot, studio_home, tmp_path,
                                                                            monkeypatch, gui):
    register_tiny_model(tmp_path, "tiny")
    window, _shown = _start_app(qtbot)
    dialog = _models_dialog(qtbot, window)
    _choose(qtbot, dialog.precision_combo, "int8")  # nothing open yet: nothing to calibrate on
    assert "open some images first: int8 calibrates on them" in dialog.status_label.text()
    assert dialog.precision_combo.currentText() == "auto" and window.controller.precision == "auto"
    assert window.findChild(QMessageBox) is None

    _open_images(qtbot, window, monkeypatch, tmp_path / "imgs", gui)
    shown = []
    window.controller.stageChanged.connect(lambda _s: shown.append(window.model_label.text()))
    with qtbot.waitSignal(window.controller.predictorChanged, timeout=180_000):
        _choose(qtbot, dialog.precision_combo, "int8")
    assert "Preparing the model for this CPU: int8 calibration on your images\u2026" in shown
    assert window.model_label.text() == "tiny \u00b7 OpenVINO int8 \u00b7 cpu"
    report = "int8 calibrated on 3 of your images: counts within"
    assert report in window.statusBar().currentMessage() and report in window.model_label.toolTip()
    assert report in dialog.current_label.text()
    qtbot.waitUntil(lambda: window.session.current_result() is not None, timeout=60_000)
    _close(window)


def test_int8_from_an_earlier_session_waits_for_images_then_quantizes(qtbot, studio_home, tmp_path,
                                                                     monkeypatch, gui):
    from sasnet_gui.settings import AppSettings

    register_tiny_model(tmp_path, "tiny")
    saved = AppSettings()
    saved.set_value("models/precision", "int8")
    saved.sync()
    window, _shown = _start_app(qtbot)  # no image open: counts with auto meanwhile, no error
    assert window.findChild(QMessageBox) is None
    assert window.model_label.text() == f"tiny \u00b7 OpenVINO {_auto_precision()} \u00b7 cpu"
    assert "int8 calibrates on your images" in window.model_label.toolTip()
    assert window.controller.precision == "int8"

    with qtbot.waitSignal(window.controller.predictorChanged, timeout=180_000):
        images = _open_images(qtbot, window, monkeypatch, tmp_path / "imgs", gui)
    assert window.model_label.text() == "tiny \u00b7 OpenVINO int8 \u00b7 cpu"
    assert "int8 calibrates on your images" not in window.model_label.toolTip()
    assert "int8 calibrated on 3 of your images" in window.model_label.toolTip()
    _close(window)

    # `sasnet-gui imgs/`: the images open while the default model is still loading.
    from sasnet_gui.app import create_window

    window = create_window([str(p) for p in images])
    qtbot.addWidget(window)
    int8 = "tiny \u00b7 OpenVINO int8 \u00b7 cpu"
    qtbot.waitUntil(lambda: window.model_label.text() == int8, timeout=180_000)
    assert window.controller.predictor().precision == "int8"
    _close(window)
