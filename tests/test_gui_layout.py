"""How the main window lays itself out for a person: the video dock fits a narrow window, restored
docks leave the canvas the most room, the colour bar's values are readable, one level legend,
readouts that follow the image, and Open Log Folder without a desktop launcher."""
from __future__ import annotations

from _gui_helpers import make_video  # noqa: F401  (sets the offscreen platform first)

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt  # noqa: E402
from PySide6.QtGui import QImage, QPainter  # noqa: E402
from PySide6.QtWidgets import QPushButton, QWidget  # noqa: E402


def _counted_window(qtbot, main_window, fake_controller, tiny_predictor, tmp_path, gui, n=2):
    w = main_window
    gui.write_images(tmp_path, n=n, h=96, w=128)
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([tmp_path])
    with qtbot.waitSignal(w.counter.idle, timeout=60_000):
        fake_controller.set(tiny_predictor)
    return w


def test_video_dock_fits_a_small_window_without_sideways_scrolling(qtbot, main_window, tmp_path):
    w = main_window
    w.resize(1024, 700)
    video = make_video(tmp_path / "a_rather_long_video_file_name_for_a_clip.avi", frames=12)
    w.act_video.trigger()
    panel = w.panel("video")
    with qtbot.waitSignal(panel.frameShown, timeout=10_000):
        w.open_paths([video])
    # The stored frame opens as an image too: wait for it, so no load outlives the test.
    with qtbot.waitSignals([panel.frameStored, w.session.imageShown], timeout=30_000):
        qtbot.mouseClick(panel.annotate_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.annotate_button.isEnabled())

    area = w._extra_docks["video"].widget()
    assert area.horizontalScrollBarPolicy() == Qt.ScrollBarAlwaysOff
    assert area.horizontalScrollBar().value() == 0  # the left side stays in view
    assert panel.width() == area.viewport().width()
    for child in panel.findChildren(QWidget):
        if not child.isVisibleTo(panel):
            continue
        rect = child.rect().translated(child.mapTo(panel, QPoint(0, 0)))
        assert 0 <= rect.left() and rect.right() < panel.width(), child
        if isinstance(child, QPushButton):
            assert child.width() >= child.sizeHint().width(), child.text()  # the label is not cut
    one_line = panel.progress.fontMetrics().height() * 2
    assert panel.progress.height() < one_line  # "not counted yet" on one line
    assert panel.folder_label.full_text().endswith("_frames")
    assert panel.folder_label.toolTip() == panel.folder_label.full_text()


def test_restored_docks_leave_the_canvas_the_most_room(qtbot, fake_controller):
    from sasnet_gui.main_window import SIDE_DOCK_SHARE, MainWindow

    first = MainWindow(controller=fake_controller)
    qtbot.addWidget(first)
    first.resize(1000, 700)
    first.show()
    qtbot.waitExposed(first)
    first.act_finetune.trigger()
    first.resizeDocks([first.view_dock], [650], Qt.Horizontal)  # the side area dragged wide
    first.file_dock.toggleViewAction().trigger()  # the person closes the file list
    assert not first.file_dock.isVisible()
    first.close()

    again = MainWindow(controller=fake_controller)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    assert not again.file_dock.isVisible()  # closed stays closed
    assert again.view_dock.isVisible()
    cap = max(again.width() * SIDE_DOCK_SHARE, again.view_dock.minimumSizeHint().width())
    qtbot.waitUntil(lambda: again.view_dock.width() <= cap + 2)
    assert again.centralWidget().width() > again.view_dock.width()


def test_colour_bar_values_are_inside_the_canvas(qtbot, main_window, fake_controller, tiny_predictor,
                                                 tmp_path, gui):
    w = _counted_window(qtbot, main_window, fake_controller, tiny_predictor, tmp_path, gui)
    canvas = w.canvas
    assert canvas.colorbar.isVisible()
    axis = canvas.colorbar.getAxis("right")
    image = QImage(10, 10, QImage.Format_ARGB32)
    painter = QPainter(image)
    try:
        texts = axis.generateDrawSpecs(painter)[2]
    finally:
        painter.end()
    assert "0" in [t for _r, _f, t in texts]  # the bottom end's value is among the labels
    bounds = QRectF(canvas.rect())
    for rect, _flags, text in texts:
        on_screen = canvas.mapFromScene(axis.mapRectToScene(rect)).boundingRect()
        assert bounds.contains(QRectF(on_screen)), (text, on_screen, bounds)


def test_one_level_legend_in_the_overlay_panel(qtbot, main_window, fake_controller, tiny_predictor,
                                               tmp_path, gui):
    w = _counted_window(qtbot, main_window, fake_controller, tiny_predictor, tmp_path, gui)
    qtbot.mouseClick(w.overlays.levels, Qt.LeftButton, pos=QPoint(6, w.overlays.levels.height() // 2))
    assert w.canvas.level_item.isVisible()
    assert not [i for i in w.canvas.scene().items() if isinstance(i, pg.LegendItem)]
    assert "P1" in " ".join(lbl.text() for lbl in w.overlays.findChildren(type(w.cursor_label)))


def test_readouts_follow_the_image_after_page_down(qtbot, main_window, fake_controller, tiny_predictor,
                                                   tmp_path, gui):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    w = _counted_window(qtbot, main_window, fake_controller, tiny_predictor, tmp_path, gui)
    canvas, vp = w.canvas, w.canvas.viewport()
    p = gui.to_widget(canvas, 40, 40)
    move = QMouseEvent(QEvent.MouseMove, QPointF(p), QPointF(vp.mapToGlobal(p)), Qt.NoButton,
                       Qt.NoButton, Qt.NoModifier)
    QApplication.sendEvent(vp, move)
    qtbot.waitUntil(lambda: w.cursor_label.text() != "" and canvas.hover_text.isVisible())
    before = canvas.hover_text.toPlainText()
    first = w.session.current

    canvas.setFocus()
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        qtbot.keyClick(canvas, Qt.Key_PageDown)
    assert w.session.current != first
    # Nothing about the previous image stays on screen: cleared, or redone for the new one.
    text = w.cursor_label.text()
    if text:
        x, y = (float(v) for v in text.split()[1:4:2])
        pixel = w.canvas._rgb[int(y), int(x)]
        assert text.endswith("RGB " + ",".join(str(v) for v in pixel))
    if canvas.hover_text.isVisible():
        i, j = w.session.current_result().patch_at(40, 40)
        assert canvas.hover_text.toPlainText() == canvas.patch_text(i, j)
    assert before


def test_open_log_folder_without_a_desktop_launcher(qtbot, main_window, tmp_path, monkeypatch, qtlog):
    from sasnet_core import paths

    monkeypatch.setenv("PATH", str(tmp_path))  # no xdg-open here
    monkeypatch.delenv("XDG_CURRENT_DESKTOP", raising=False)
    main_window.act_log_folder.trigger()
    assert str(paths.log_dir()) in main_window.statusBar().currentMessage()
    assert not [r.message for r in qtlog.records
                if "launcher" in r.message or "QPlatformServices" in r.message]
