"""Seeing the image, driven as a person does: head marker style and size, brightness / contrast /
gamma for the screen only, the zoom readout with Fit and 1:1, fitting each new image, the shortcut
sheet, and reopening the last session at start."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from _data_paths import UCF_CC_50, need
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QAction, QWheelEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from sasnet_core.annotations.annotation import Annotation, save_annotation
from sasnet_core.annotations.store import annotation_file_for
from sasnet_core.io.imageio import read_image


def _open(qtbot, window, paths):
    with qtbot.waitSignal(window.session.imageShown, timeout=10_000):
        window.open_paths([str(p) for p in paths])
    _settle(qtbot, window)


def _settle(qtbot, window) -> None:
    """Wait until the layout (file list, counts panel, docks) stops moving the canvas."""
    last = None
    for _ in range(60):
        window.canvas.grab()  # a paint applies a pending view range
        now = (window.canvas.size(), window.canvas.view_rect())
        if now == last:
            return
        last = now
        qtbot.wait(50)


def _annotated_image(folder: Path, points, gui, h: int, w: int, name: str = "crowd.png") -> Path:
    from sasnet_core.io.imageio import write_image

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    write_image(path, gui.image(h, w))
    save_annotation(Annotation(str(path), (w, h), np.asarray(points, float)), annotation_file_for(path))
    return path


def _ucf_image(tmp_path: Path, n: int) -> Path:
    """UCF_CC_50 image ``n`` copied out, with its ground truth as our annotation beside it."""
    import scipy.io

    src = need(UCF_CC_50)
    img = tmp_path / f"{n}.jpg"
    shutil.copy(src / f"{n}.jpg", img)
    pts = scipy.io.loadmat(src / f"{n}_ann.mat")["annPoints"].astype(float)
    save_annotation(Annotation(str(img), None, pts), annotation_file_for(img))
    return img


def _image_area(window):
    """The canvas's pixels over the image, as an (h, w, 3) array from a real paint."""
    canvas = window.canvas
    canvas.grab()  # a first paint applies a view range set since the last one
    QApplication.processEvents()
    img = canvas.grab().toImage()
    img = img.convertToFormat(img.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3]
    arr = arr.reshape(img.height(), img.width(), 3)
    h, w = canvas.image_shape[:2]
    ratio = canvas.devicePixelRatioF()
    tl = canvas.mapFromScene(canvas.vb.mapViewToScene(QPointF(0, 0)))
    br = canvas.mapFromScene(canvas.vb.mapViewToScene(QPointF(w, h)))
    x0, y0 = max(int(tl.x() * ratio) + 2, 0), max(int(tl.y() * ratio) + 2, 0)
    x1, y1 = min(int(br.x() * ratio) - 2, arr.shape[1]), min(int(br.y() * ratio) - 2, arr.shape[0])
    return arr[y0:y1, x0:x1].astype(np.int16)


def _marker_cover(window, qtbot) -> float:
    """Share of the image's screen pixels that the head markers change (P hides and shows them)."""
    _settle(qtbot, window)
    window.act_show_points.trigger()  # hide
    bare = _image_area(window)
    window.act_show_points.trigger()  # show again
    marked = _image_area(window)
    return float((np.abs(marked - bare).max(axis=2) > 24).mean())


def _wheel(canvas, steps: int) -> None:
    """Mouse-wheel notches over the centre of the canvas (positive zooms in)."""
    vp = canvas.viewport()
    pos = QPointF(vp.width() / 2, vp.height() / 2)
    for _ in range(abs(steps)):
        ev = QWheelEvent(pos, QPointF(vp.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120 if steps > 0 else -120),
                         Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
        QApplication.sendEvent(vp, ev)
    QApplication.processEvents()


def _fit_percent(canvas) -> str:
    """What the readout must say for the image fitted to the view."""
    h, w = canvas.image_shape[:2]
    scale = min(canvas.vb.width() / (w * 1.02), canvas.vb.height() / (h * 1.02))
    return f"{scale * 100:.0f} %"


# -- head markers -------------------------------------------------------------------------------
def test_marker_style_and_size_actions_change_the_drawn_markers(qtbot, main_window, tmp_path, gui):
    w = main_window
    rng = np.random.default_rng(1)
    path = _annotated_image(tmp_path, rng.uniform(20, 300, (40, 2)), gui, 320, 320)
    _open(qtbot, w, [path])
    item = w.canvas.points_item
    dots = _image_area(w)
    assert item.style.shape == "dot"

    w.appearance_actions.shapes["cross"].trigger()
    crosses = _image_area(w)
    assert item.style.shape == "cross" and w.appearance.shape.currentText() == "Cross"
    assert (np.abs(crosses - dots).max(axis=2) > 24).sum() > 40 * 4  # every marker was redrawn

    before = item.screen_diameter()
    cover = _marker_cover(w, qtbot)
    w.canvas.setFocus()
    qtbot.keyClick(w, Qt.Key_Equal, Qt.AltModifier)  # Larger Markers
    qtbot.keyClick(w, Qt.Key_Equal, Qt.AltModifier)
    assert item.style.unit == "image" and item.screen_diameter() == pytest.approx(before * 1.25**2, rel=0.05)
    assert _marker_cover(w, qtbot) > cover * 1.3

    # A size in screen pixels stays put when zooming; one in image pixels grows with the zoom.
    w.appearance.unit.setCurrentIndex(w.appearance.unit.findData("screen"))
    screen_d = item.screen_diameter()
    _wheel(w.canvas, 3)
    assert item.screen_diameter() == pytest.approx(screen_d)
    w.appearance.unit.setCurrentIndex(w.appearance.unit.findData("image"))
    image_d = item.screen_diameter()
    _wheel(w.canvas, 2)
    assert item.screen_diameter() > image_d * 1.2

    w.appearance_actions.auto_size.trigger()
    assert item.style.unit == "auto"
    w.close()  # the choice is remembered
    from sasnet_gui.main_window import MainWindow

    w2 = MainWindow(controller=w.controller)
    qtbot.addWidget(w2)
    assert w2.canvas.points_item.style.shape == "cross" and w2.appearance_actions.shapes["cross"].isChecked()


def test_default_marker_size_follows_the_head_spacing(qtbot, main_window, tmp_path, gui):
    """4,633 heads on a 984 x 648 image (UCF_CC_50 image 1's count and size) on a jittered grid:
    at the default size and zoomed out to fit, the markers are small separate dots; a sparse
    scene gets larger ones."""
    w = main_window
    w.resize(1280, 800)
    rng = np.random.default_rng(0)
    gx, gy = np.meshgrid(np.linspace(5, 979, 83), np.linspace(5, 643, 56))
    pts = np.c_[gx.ravel(), gy.ravel()][:4633] + rng.uniform(-1.5, 1.5, (4633, 2))
    dense = _annotated_image(tmp_path / "dense", pts, gui, 648, 984)
    _open(qtbot, w, [dense])
    item = w.canvas.points_item
    scale = w.canvas.zoom_scale()
    spacing_on_screen = 11.7 * scale  # the grid's step, in screen pixels
    assert item.style.unit == "auto"
    assert item.screen_diameter() < 0.8 * spacing_on_screen  # a gap between neighbours
    assert _marker_cover(w, qtbot) < 0.5  # the image shows through

    sparse = _annotated_image(tmp_path / "sparse", [[100, 100], [400, 300], [700, 150], [850, 500]], gui, 648, 984)
    _open(qtbot, w, [sparse])
    assert item.screen_diameter() > 2 * (0.8 * spacing_on_screen)


def test_ucf_image_1_is_not_a_block_of_markers_at_1280x800(qtbot, main_window, tmp_path):
    w = main_window
    w.resize(1280, 800)
    _open(qtbot, w, [_ucf_image(tmp_path, 1)])
    assert w.document.count == 4633
    assert 0.3 < w.canvas.zoom_scale() < 1.0  # zoomed out to fit
    assert _marker_cover(w, qtbot) < 0.5


# -- brightness, contrast, gamma ------------------------------------------------------------------
def test_brightness_contrast_gamma_change_the_screen_not_the_image(qtbot, main_window, fake_controller,
                                                                   tiny_predictor, tmp_path):
    w = main_window
    path = _ucf_image(tmp_path, 30)  # the darkest image of UCF_CC_50 (mean grey 27 of 255)
    _open(qtbot, w, [path])
    on_disk = path.read_bytes()
    original = w.canvas._rgb.copy()
    assert np.array_equal(w.canvas.displayed_image(), original)

    w.appearance.gamma.setFocus()
    for _ in range(10):
        qtbot.keyClick(w.appearance.gamma, Qt.Key_Right)  # gamma 1.0 -> 2.2
    w.appearance.contrast.setFocus()
    for _ in range(4):
        qtbot.keyClick(w.appearance.contrast, Qt.Key_Right)
    shown = w.canvas.displayed_image()
    assert w.appearance.gamma_value.text() == "2.24"
    # The dark tones are lifted visibly (a dark image is where it must help): the median grey 12
    # of 255 is shown at about 45.
    assert np.median(original) < 15 and np.median(shown) > np.median(original) + 25
    assert np.array_equal(w.canvas._rgb, original) and path.read_bytes() == on_disk
    assert np.array_equal(w.canvas._rgb, read_image(path))  # the readout and the model see these

    # Counting with the adjustment on counts the image as it is on disk.
    with qtbot.waitSignal(w.counter.idle, timeout=60_000):
        fake_controller.set(tiny_predictor)
    from sasnet_core.engine.counting import summarize

    expected = summarize(tiny_predictor.predict(read_image(path)), str(path)).count
    assert w.session.current_result().count == pytest.approx(expected, rel=1e-4)

    w.appearance_actions.reset_display.trigger()
    assert np.array_equal(w.canvas.displayed_image(), original)
    assert w.appearance.gamma_value.text() == "1.00" and not w.appearance.reset.isEnabled()


def test_display_settings_out_of_range_are_refused_with_the_setting_named():
    from sasnet_core.annotations.display import display_lut

    with pytest.raises(ValueError, match="gamma"):
        display_lut(gamma=0.0)
    with pytest.raises(ValueError, match="brightness"):
        display_lut(brightness=float("nan"))
    assert np.array_equal(display_lut(), np.arange(256))


def test_apply_lut_matches_a_table_lookup_for_every_channel_layout():
    from sasnet_core.annotations.display import apply_lut, display_lut

    lut = display_lut(brightness=20, contrast=-30, gamma=2.0)
    rng = np.random.default_rng(3)
    for shape in [(5, 7), (5, 7, 1), (5, 7, 3), (5, 7, 4), (5, 7, 6)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        before = image.copy()
        assert np.array_equal(apply_lut(image, lut), lut[image]), shape
        buffer = np.zeros_like(image)
        assert apply_lut(image, lut, out=buffer) is buffer and np.array_equal(buffer, lut[image])
        assert np.array_equal(apply_lut(image[:, ::2], lut), lut[image[:, ::2]])  # a strided view
        assert np.array_equal(image, before)
    with pytest.raises(ValueError, match="8-bit"):
        apply_lut(np.zeros((2, 2), np.uint16), lut)


def test_gamma_slider_steps_paint_the_adjusted_pixels_at_1_to_1(qtbot, main_window, tmp_path, gui):
    """What reaches the screen is the adjusted image, pixel for pixel, at every step (one buffer
    rewritten in place must not leave an earlier step or the raw image on screen)."""
    from sasnet_core.annotations.display import display_lut
    from sasnet_core.io.imageio import write_image

    w = main_window
    path = tmp_path / "gradient.png"
    ramp = np.tile(np.linspace(0, 255, 96).astype(np.uint8), (64, 1))
    write_image(path, np.dstack([ramp, ramp[:, ::-1], np.full_like(ramp, 90)]))
    _open(qtbot, w, [path])
    qtbot.keyClick(w, Qt.Key_1, Qt.ControlModifier)  # 1:1, so a screen pixel is an image pixel
    w.act_show_points.setChecked(False)
    original = w.canvas._rgb.copy()
    w.appearance.gamma.setFocus()
    for _ in range(2):
        for _ in range(5):
            qtbot.keyClick(w.appearance.gamma, Qt.Key_Right)
        gamma = float(w.appearance.gamma_value.text())
        painted = _image_area(w)
        expected = display_lut(gamma=gamma)[original].astype(np.int16)
        inner = expected[2:2 + painted.shape[0], 2:2 + painted.shape[1]]
        assert painted.shape[0] > 40 and painted.shape[1] > 70
        assert np.abs(painted - inner).max() <= 2, gamma
    assert np.array_equal(w.canvas._rgb, original)


# -- zoom readout, Fit, 1:1 and fitting each new image -------------------------------------------
def test_zoom_readout_follows_wheel_fit_and_actual_size(qtbot, main_window, tmp_path, gui):
    w = main_window
    (path,) = gui.write_images(tmp_path, n=1, h=600, w=900)
    _open(qtbot, w, [path])
    readout = w.zoom_bar.readout
    assert w.zoom_bar.isVisible() and readout.text() == _fit_percent(w.canvas)
    fitted = readout.text()

    _wheel(w.canvas, 2)
    zoomed = readout.text()
    assert zoomed != fitted and int(zoomed.split()[0]) > int(fitted.split()[0])

    w.canvas.setFocus()
    qtbot.keyClick(w, Qt.Key_1, Qt.ControlModifier)  # View > Actual Size (1:1)
    assert readout.text() == "100 %"
    qtbot.keyClick(w, Qt.Key_0, Qt.ControlModifier)  # View > Fit to Window
    assert readout.text() == fitted
    w.zoom_bar.buttons[1].click()  # the "1:1" button beside the readout
    assert readout.text() == "100 %"
    w.zoom_bar.buttons[0].click()  # "Fit"
    assert readout.text() == fitted
    view_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&View")
    assert w.act_actual_size in view_menu.actions() and w.act_fit in view_menu.actions()


def test_another_image_of_the_same_size_opens_fitted_unless_asked_to_keep_the_zoom(qtbot, main_window, tmp_path,
                                                                                  gui):
    w = main_window
    paths = gui.write_images(tmp_path, n=3, h=400, w=600)
    _open(qtbot, w, [tmp_path])
    fitted = w.zoom_bar.text()
    _wheel(w.canvas, 4)
    assert w.zoom_bar.text() != fitted
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.act_next.trigger()
    assert w.session.current == str(paths[1])
    _settle(qtbot, w)
    assert w.zoom_bar.text() == _fit_percent(w.canvas)
    rect = w.canvas.view_rect()
    assert rect.contains(0.5, 0.5) and rect.contains(599.5, 399.5)  # the whole image is in view

    w.act_keep_zoom.trigger()  # View > Keep Zoom Between Images
    _wheel(w.canvas, 4)
    kept, kept_rect = w.zoom_bar.text(), w.canvas.view_rect()
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.act_next.trigger()
    assert w.session.current == str(paths[2])
    assert w.zoom_bar.text() == kept and w.canvas.view_rect() == kept_rect
    assert w.settings.bool("view/keep_zoom", False)


# -- the shortcut sheet ---------------------------------------------------------------------------
def test_shortcut_sheet_lists_the_real_shortcuts(qtbot, main_window):
    w = main_window
    w.act_shortcuts.trigger()
    sheet = w.shortcut_sheet
    qtbot.waitExposed(sheet)
    rows = sheet.rows()
    listed = {(text, keys) for _group, text, keys in rows}
    assert ("Fit to Window", "Ctrl+0") in listed and ("Actual Size (1:1)", "Ctrl+1") in listed
    assert ("Keyboard Shortcuts\u2026", "F1") in listed
    assert ("View \u25b8 Head Markers", "Cross Markers", "Alt+3") in rows
    # Every action of the window with a shortcut is on the sheet, with the keys it really has.
    from sasnet_gui.shortcuts import keys_text

    for a in w.findChildren(QAction):
        if keys_text(a) and a.text():
            assert (a.text().replace("&&", "\0").replace("&", "").replace("\0", "&"), keys_text(a)) in listed
    # A key changed at run time shows on the next sheet (it is read from the actions).
    w.act_log_folder.setShortcut("Ctrl+Shift+L")
    sheet.close()
    w.act_shortcuts.trigger()
    assert ("Open Log Folder", "Ctrl+Shift+L") in {(t, k) for _g, t, k in w.shortcut_sheet.rows()}

    qtbot.keyClicks(w.shortcut_sheet.filter, "ctrl+1")
    assert [t for _g, t, _k in w.shortcut_sheet.rows()] == ["Actual Size (1:1)"]
    # Readable on a 1280 x 800 screen: inside it, and the keys column is not cut.
    sheet = w.shortcut_sheet
    assert sheet.width() <= 1280 and sheet.height() <= 800
    fm = sheet.tree.fontMetrics()
    longest = max(fm.horizontalAdvance(k) for _g, _t, k in rows)
    assert sheet.tree.columnWidth(1) >= longest


# -- reopening the last session -------------------------------------------------------------------
def test_restart_reopens_the_last_session(qtbot, fake_controller, tmp_path, gui):
    from sasnet_gui.app import create_window
    from sasnet_gui.main_window import MainWindow

    paths = gui.write_images(tmp_path / "shots", n=3, h=300, w=400)
    (extra,) = gui.write_images(tmp_path / "other", n=1, h=120, w=160)
    w = MainWindow(controller=fake_controller)
    qtbot.addWidget(w)
    w.show()
    _open(qtbot, w, [tmp_path / "shots"])
    _open(qtbot, w, [extra])
    w.canvas.setFocus()
    for _ in range(2):  # PgUp twice: from the file opened last back to the second of the folder
        with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
            qtbot.keyClick(w, Qt.Key_PageUp)
    assert w.session.current == str(paths[1])
    qtbot.keyClick(w, Qt.Key_1, Qt.ControlModifier)  # 1:1
    _wheel(w.canvas, 2)
    zoom, rect = w.zoom_bar.text(), w.canvas.view_rect()
    w.close()

    w2 = create_window(controller=fake_controller)  # the app started without paths
    qtbot.addWidget(w2)
    qtbot.waitUntil(lambda: w2.session.current == str(paths[1]), timeout=10_000)
    QApplication.processEvents()
    assert w2.files.paths() == [str(p) for p in paths] + [str(extra)]
    assert w2.zoom_bar.text() == zoom
    r2 = w2.canvas.view_rect()
    assert abs(r2.center().x() - rect.center().x()) < 2 and abs(r2.center().y() - rect.center().y()) < 2
    w2.close()

    # The folder is gone: it is skipped with one line, the file from elsewhere still opens.
    shutil.rmtree(tmp_path / "shots")
    w3 = create_window(controller=fake_controller)
    qtbot.addWidget(w3)
    qtbot.waitUntil(lambda: w3.session.current == str(extra), timeout=10_000)
    QApplication.processEvents()
    message = w3.statusBar().currentMessage()
    assert str(tmp_path / "shots") in message and "skipped" in message and "\n" not in message
    assert not [b for b in w3.findChildren(QMessageBox) if b.isVisible()]
    assert w3.files.paths() == [str(extra)]

    # Turned off: the next start opens nothing.
    w3.act_reopen.trigger()
    w3.close()
    w4 = create_window(controller=fake_controller)
    qtbot.addWidget(w4)
    qtbot.wait(300)
    assert w4.files.paths() == [] and w4.session.current is None
    w4.close()


def test_damaged_display_and_session_settings_fall_back_to_defaults(qtbot, fake_controller, tmp_path, gui):
    """A settings file edited by hand or written by another version: the window starts with the
    defaults for what it cannot read, shows no dialog, and still reopens what it can."""
    from sasnet_gui.app import create_window
    from sasnet_gui.settings import AppSettings

    (image,) = gui.write_images(tmp_path / "imgs", n=1)
    store = AppSettings()
    store.set_group("appearance", {"marker_shape": "star", "marker_unit": "parsec", "marker_size": "-3",
                                   "brightness": "bright", "contrast": "1e9", "gamma": "nan"})
    store.set_value("session/paths", [str(image), str(tmp_path / "not there"), "\0bad"])
    store.set_value("session/current", 42)
    store.set_value("session/view", ["x", "y"])
    store.set_value("view/keep_zoom", "maybe")
    store.sync()

    w = create_window(controller=fake_controller)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.session.current == str(image), timeout=10_000)
    style = w.canvas.points_item.style
    assert (style.shape, style.unit) == ("dot", "auto")
    assert w.appearance.contrast.value() == 100  # clamped to the slider's end, not an error
    assert w.appearance.brightness.value() == 0 and w.appearance.gamma_value.text() == "1.00"
    assert not w.act_keep_zoom.isChecked()
    rect = w.canvas.view_rect()  # fitted: the unreadable saved view is not used
    assert rect.contains(0.5, 0.5) and rect.contains(255.5, 191.5)
    assert not [b for b in w.findChildren(QMessageBox) if b.isVisible()]
    w.close()


def test_a_frame_stored_from_a_video_is_not_reopened_at_the_next_start(qtbot, fake_controller, tmp_path,
                                                                          monkeypatch):
    """File ▸ Open a video, "Annotate this frame" in the Video panel, restart: the video comes back
    in its panel, the frame the app stored (and showed) does not join the reopened images."""
    from _gui_helpers import make_video
    from PySide6.QtWidgets import QFileDialog

    from sasnet_gui.app import create_window
    from sasnet_gui.main_window import MainWindow

    video = make_video(tmp_path / "street.avi", frames=6, size=(160, 128))
    w = MainWindow(controller=fake_controller)
    qtbot.addWidget(w)
    w.show()
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(video)], ""))
    w.act_open.trigger()
    panel = w.panel("video")
    qtbot.waitUntil(lambda: panel.info is not None and panel._shown is not None, timeout=10_000)
    with qtbot.waitSignal(w.session.imageShown, timeout=30_000) as shown:
        qtbot.mouseClick(panel.annotate_button, Qt.MouseButton.LeftButton)
    frame = shown.args[0]
    assert Path(frame).is_file() and w.files.paths() == [frame]  # open here to annotate
    w.close()

    w2 = create_window(controller=fake_controller)
    qtbot.addWidget(w2)
    qtbot.waitUntil(lambda: w2.panel("video") is not None and w2.panel("video").info is not None, timeout=10_000)
    qtbot.wait(300)  # anything else reopened would be listed by now
    assert w2.panel("video").info.path == video
    assert w2.files.paths() == [] and w2.session.current is None
    w2.close()
