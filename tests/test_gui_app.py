"""The main window end to end: open, count, overlays, correct, review, undo with the keyboard,
ROI counts, drop, errors, settings, closing, and start-up with a real model controller."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from sasnet_core.annotations.annotation import SOURCE_MODEL, load_annotation
from sasnet_core.annotations.store import annotation_file_for
from sasnet_gui.files.model import Status


def _open(qtbot, window, paths):
    with qtbot.waitSignal(window.session.imageShown, timeout=10_000):
        window.open_paths(paths)


def test_open_count_correct_review_and_undo(qtbot, main_window, fake_controller, tiny_predictor, tmp_path, gui):
    w = main_window
    paths = [str(p) for p in gui.write_images(tmp_path, n=2, h=96, w=128)]
    _open(qtbot, w, [tmp_path])
    assert w.files.paths() == paths and w.session.current == paths[0]
    assert w.banner.isVisible() and not w.act_count.isEnabled()  # no model: still opens
    assert w.files.entry(paths[0]).status is Status.NOT_RUN

    with qtbot.waitSignal(w.counter.idle, timeout=60_000):
        fake_controller.set(tiny_predictor)  # the model arrives: everything is counted
    assert not w.banner.isVisible()
    assert all(e.status is Status.COUNTED for e in w.files.entries())
    r = w.session.current_result()
    assert w.counts.texts()["model"] == f"{r.count:.1f}"
    assert w.canvas.density_item.image is not None

    w.act_from_model.trigger()
    assert w.document.count == len(r.heads) and (w.document.sources == SOURCE_MODEL).all()
    gui.click(qtbot, w.canvas, 20, 20)
    assert w.document.count == len(r.heads) + 1
    assert w.counts.texts()["annotated"] == str(w.document.count)
    w.act_reviewed.trigger()
    assert w.document.reviewed
    with qtbot.waitSignal(w.document.saved, timeout=2000):
        pass
    entry = w.files.entry(paths[0])
    assert entry.status is Status.ANNOTATED and entry.reviewed and entry.annotated_count == w.document.count
    assert w.files.reviewed_paths() == [paths[0]]

    w.canvas.setFocus()
    qtbot.keyClick(w, Qt.Key_Z, Qt.ControlModifier)  # undo "reviewed"
    assert not w.document.reviewed and not w.act_reviewed.isChecked()
    qtbot.keyClick(w, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)  # redo
    assert w.document.reviewed

    # Next image and back: the annotation is saved and reloaded.
    w.act_next.trigger()
    qtbot.waitUntil(lambda: w.session.current == paths[1], timeout=10_000)
    assert w.document.count == 0
    w.act_prev.trigger()
    qtbot.waitUntil(lambda: w.session.current == paths[0], timeout=10_000)
    assert w.document.count == len(r.heads) + 1 and w.document.reviewed


def test_roi_count_is_shown(qtbot, main_window, fake_controller, tiny_predictor, tmp_path, gui):
    w = main_window
    (path,) = gui.write_images(tmp_path, n=1, h=96, w=128)
    _open(qtbot, w, [path])
    with qtbot.waitSignal(w.counter.idle, timeout=60_000):
        fake_controller.set(tiny_predictor)
    for x, y in ((10, 10), (20, 20), (100, 80)):
        w.document.add_point(x, y)
    w.act_tool_roi.trigger()
    assert w.canvas.tool == "roi"
    for x, y in ((0, 0), (50, 0), (50, 50)):
        gui.click(qtbot, w.canvas, x, y)
    gui.double_click(qtbot, w.canvas, 0, 50)
    texts = w.counts.texts()
    assert texts["roi"] == "2"
    r = w.session.current_result()
    assert "model" in texts["roi_note"]
    roi_model = float(texts["roi_note"].split("model")[1])
    assert 0 <= roi_model <= r.count + 0.05
    w.act_remove_roi.trigger()
    assert not w.counts.roi.isVisibleTo(w.counts)


def test_drop_files_and_broken_image_error(qtbot, main_window, tmp_path, gui):
    w = main_window
    (good,) = gui.write_images(tmp_path, n=1)
    broken = tmp_path / "zz_broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(good)), QUrl.fromLocalFile(str(broken))])
    ev = QDropEvent(QPointF(50, 50), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(w.session.imageShown):
        w.dropEvent(ev)
    assert len(w.files.paths()) == 2
    w.document.add_point(10, 10)
    with qtbot.waitSignal(w.session.imageFailed):
        w.act_next.trigger()  # PgDn to the broken file
    assert str(broken) in w.property("lastError")
    assert w.files.entry(str(broken)).status is Status.ERROR
    boxes = [b for b in w.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and str(broken) in boxes[-1].informativeText()
    # The previous image is gone from the canvas: a click must not edit its annotation.
    assert w.session.current is None and w.canvas.image_shape is None and not w.document.is_open
    assert "zz_broken.jpg" in w.windowTitle()
    gui.click(qtbot, w.canvas, 20, 20)
    assert load_annotation(annotation_file_for(good)).points.tolist() == [[10.0, 10.0]]
    w.act_prev.trigger()  # back to the good image: its one point is there
    qtbot.waitUntil(lambda: w.session.current == str(good) and w.document.count == 1, timeout=10_000)


def test_close_flushes_and_settings_are_remembered(qtbot, fake_controller, tmp_path, gui):
    from sasnet_gui.main_window import MainWindow

    (path,) = gui.write_images(tmp_path / "f", n=1)
    w = MainWindow(controller=fake_controller)
    qtbot.addWidget(w)
    w.show()
    _open(qtbot, w, [tmp_path / "f"])
    w.document.add_point(1.5, 2.5)  # and close at once: no time for the autosave timer
    w.overlays.colormap.setCurrentText("viridis")
    w.overlays.levels.setChecked(True)
    w.close()
    assert load_annotation(annotation_file_for(path)).points.tolist() == [[1.5, 2.5]]

    w2 = MainWindow(controller=fake_controller)
    qtbot.addWidget(w2)
    assert w2.settings.recent_folders()[0] == str(tmp_path / "f")
    assert w2.overlays.colormap.currentText() == "viridis" and w2.overlays.levels.isChecked()
    assert w2.settings.path.parent == Path(__import__("os").environ["SASNET_STUDIO_HOME"]) / "config"
    w2.close()


def test_start_with_a_real_model_controller(qtbot, tmp_path, gui):
    """create_window + the real ModelController loading a tiny checkpoint in the background."""
    pytest.importorskip("sasnet_gui.models.controller")
    import torch

    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet
    from sasnet_core.weights.checkpoint import save_checkpoint
    from sasnet_gui.app import _parse, create_window

    torch.manual_seed(0)
    weights = save_checkpoint(tmp_path / "tiny.pth", SASNet(SASNetConfig(width_mult=0.125)), {"name": "tiny"})
    (image,) = gui.write_images(tmp_path / "imgs", n=1, h=64, w=96)
    args = _parse([str(image), "--weights", str(weights)])
    window = create_window(args.paths, args.weights)
    qtbot.addWidget(window)
    assert window.isVisible()  # shown before the model is loaded
    with qtbot.waitSignal(window.controller.predictorChanged, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: window.session.current_result() is not None, timeout=60_000)
    assert window.model_label.text().startswith("tiny \u00b7 ")  # name · engine · device
    # The canvas may show the result a moment before the file list marks the entry counted.
    qtbot.waitUntil(lambda: window.files.entry(str(image)).status is Status.COUNTED, timeout=60_000)
    window.counter.cancel()
    window.close()


def test_cursor_position_and_pixel_value_in_the_status_bar(qtbot, main_window, tmp_path, gui):
    (path,) = gui.write_images(tmp_path, n=1)
    _open(qtbot, main_window, [path])
    canvas = main_window.canvas
    scene_pos = canvas.vb.mapViewToScene(QPointF(10.5, 20.5))
    canvas.scene().sigMouseMoved.emit(scene_pos)
    rgb = canvas._rgb[20, 10]
    assert main_window.cursor_label.text() == f"x 10.5  y 20.5  RGB {rgb[0]},{rgb[1]},{rgb[2]}"
    canvas.scene().sigMouseMoved.emit(canvas.vb.mapViewToScene(QPointF(10.5, 900.0)))  # below the image
    assert main_window.cursor_label.text() == ""


def test_no_model_option_starts_without_loading_the_default(qtbot, tmp_path):
    from _gui_helpers import register_tiny_model

    from sasnet_gui.app import _parse, create_window

    register_tiny_model(tmp_path, "tiny")  # a default model that must not load
    with pytest.raises(SystemExit):
        _parse(["--no-model", "--weights", "tiny"])  # contradicting options are a usage error
    args = _parse(["--no-model"])
    window = create_window(args.paths, args.weights, args.no_model)
    qtbot.addWidget(window)
    qtbot.wait(300)  # the default would start loading as soon as the event loop runs
    assert window.controller is not None and not window.controller.is_busy()
    assert window.controller.predictor() is None
    assert window.banner.isVisible() and window.model_label.text() == "no model"
    window.close()


def test_status_says_loading_while_the_default_model_loads(qtbot, tmp_path):
    from _gui_helpers import register_tiny_model

    from sasnet_gui.app import create_window

    register_tiny_model(tmp_path, "tiny")
    window = create_window()
    qtbot.addWidget(window)
    assert window.model_label.text() == "Loading model\u2026" and not window.banner.isVisible()
    with qtbot.waitSignal(window.controller.predictorChanged, timeout=60_000):
        pass
    assert window.model_label.text().startswith("tiny \u00b7 ") and not window.banner.isVisible()
    window.close()


def test_stop_says_that_counting_stopped(qtbot, main_window, fake_controller, tiny_predictor, tmp_path, gui):
    w = main_window
    gui.write_images(tmp_path, n=6, h=64, w=96)
    _open(qtbot, w, [tmp_path])
    with qtbot.waitSignal(w.counter.started, timeout=60_000):
        fake_controller.set(tiny_predictor)
    assert w.act_stop.isEnabled()
    with qtbot.waitSignal(w.counter.idle, timeout=60_000):
        qtbot.keyClick(w, Qt.Key_Period, Qt.ControlModifier)
        assert "stopped" in w.statusBar().currentMessage().lower()
    assert any(e.status is Status.NOT_RUN for e in w.files.entries())


def test_model_points_ask_before_replacing_placed_points(qtbot, main_window, fake_controller, tiny_predictor,
                                                         tmp_path, gui, monkeypatch):
    w = main_window
    (path,) = gui.write_images(tmp_path, n=1, h=96, w=128)
    _open(qtbot, w, [path])
    with qtbot.waitSignal(w.counter.idle, timeout=60_000):
        fake_controller.set(tiny_predictor)
    heads = w.session.current_result().heads
    gui.click(qtbot, w.canvas, 30, 40)
    placed = w.document.points.copy()
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    w.act_from_model.trigger()
    assert asked and "1 point" in asked[0]
    assert (w.document.points == placed).all()  # "No": nothing replaced
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    w.act_from_model.trigger()
    assert w.document.count == len(heads) and (w.document.sources == SOURCE_MODEL).all()
    w.act_undo.trigger()
    assert (w.document.points == placed).all()
    asked.clear()
    w.act_from_model.trigger()  # only model points now: no question
    w.act_from_model.trigger()
    assert w.document.count == len(heads)

    # Clear All Points asks the same before a person's points go, and says how long Undo helps
    gui.click(qtbot, w.canvas, 30, 40)
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    w.act_clear_points.trigger()
    assert w.document.count == len(heads) + 1 and "also after other images" in asked[-1]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    w.act_clear_points.trigger()
    assert w.document.count == 0


def test_help_opens_the_log_folder(qtbot, main_window, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    from sasnet_core.util import paths

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    main_window.act_log_folder.trigger()
    assert [Path(u.toLocalFile()) for u in opened] == [paths.log_dir()]
    assert paths.log_dir().is_dir()


def test_unexpected_errors_are_logged_with_their_traceback(qtbot, main_window, monkeypatch):
    import sys

    from sasnet_core.util import logs
    from sasnet_gui import errors

    def broken(*_args):
        raise RuntimeError("the about box broke")

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    log_path = logs.setup_logging("test-gui")
    try:
        errors.install_excepthook(main_window)
        monkeypatch.setattr(QMessageBox, "about", broken)
        main_window.act_about.trigger()
        qtbot.waitUntil(lambda: main_window.property("lastError") is not None, timeout=5000)
    finally:
        logs.stop_logging()
    text = log_path.read_text()
    assert "Traceback" in text and "RuntimeError: the about box broke" in text
    boxes = [b for b in main_window.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "Unexpected error" in boxes[-1].text()
    assert "the about box broke" in boxes[-1].informativeText()


def test_the_window_opens_without_importing_torch():
    """torch takes seconds to import: the window comes first, the model controller's worker
    imports it when the model loads."""
    import subprocess
    import sys

    code = ("import sys, sasnet_gui.app, sasnet_gui.main_window, sasnet_gui.models.dialog; "
            "print(sorted(m for m in ('torch', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_quitting_while_the_model_loads_exits_at_once_and_leaves_a_clean_log(tiny_weights, tmp_path, monkeypatch,
                                                                            capsys):
    """Closed a moment after it started, while the model is still being converted: the app
    exits with status 0 and the log (which a bug report sends) has no errors of the aborted
    loading thread."""
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    code = ("import sys\n"
            "from PySide6.QtCore import QTimer\n"
            "import time\n"
            "import sasnet_core.engine.openvino_backend as ob\n"
            "import sasnet_gui.app as app\n"
            "convert = ob.convert\n"
            "ob.convert = lambda *a, **k: time.sleep(3) or convert(*a, **k)  # still loading at the close\n"
            "make = app.create_window\n"
            "def create(*a, **k):\n"
            "    w = make(*a, **k)\n"
            "    QTimer.singleShot(200, w.close)\n"
            "    return w\n"
            "app.create_window = create\n"
            f"sys.exit(app.main(['--weights', {str(tiny_weights)!r}]))\n")
    env = {**os.environ, "SASNET_STUDIO_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    (log_file,) = home.rglob("sasnet-gui.log")
    text = log_file.read_text()
    assert "quitting while the model is still loading" in text  # the case this test is about
    assert "aborted thread" not in text + out.stderr and "Traceback" not in text + out.stderr

    # the log file `sasnet doctor` sends people to is the one the app wrote
    import json

    from sasnet_core.cli import main as cli

    monkeypatch.setenv("SASNET_STUDIO_HOME", str(home))
    capsys.readouterr()
    assert cli(["doctor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["log_file"] == str(log_file)
