"""How the main window lays itself out for a person: the video dock fits a narrow window, restored
docks leave the canvas the most room, the colour bar's values are readable, one level legend,
readouts that follow the image, and Open Log Folder without a desktop launcher."""
from __future__ import annotations

import pyqtgraph as pg  # noqa: E402
from _gui_helpers import make_video  # noqa: F401  (sets the offscreen platform first)
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
    from sasnet_core.util import paths

    monkeypatch.setenv("PATH", str(tmp_path))  # no xdg-open here
    monkeypatch.delenv("XDG_CURRENT_DESKTOP", raising=False)
    main_window.act_log_folder.trigger()
    assert str(paths.log_dir()) in main_window.statusBar().currentMessage()
    assert not [r.message for r in qtlog.records
                if "launcher" in r.message or "QPlatformServices" in r.message]


# -- a clean window at 1280 x 800: names, status messages, error images, Open Recent ------------------
def _write_named_images(folder, names, gui):
    from sasnet_core.io.imageio import write_image

    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        write_image(folder / name, gui.image(48, 64, seed=i))
    return [str((folder / n).absolute()) for n in names]


def _open_folder_with_the_menu(qtbot, w, folder, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.act_open_folder.trigger()


def _shown_text(table, index) -> str:
    """The text the view draws in a cell: Qt's item delegate elides it to the text rectangle
    (QCommonStyle's viewItemDrawText: the text rect less the focus-frame margin on each side)."""
    from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

    opt = QStyleOptionViewItem()
    opt.initFrom(table.viewport())
    opt.rect = table.visualRect(index)
    opt.textElideMode = table.textElideMode()
    table.itemDelegate().initStyleOption(opt, index)
    style = table.style()
    text_rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, table)
    margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, table) + 1
    return opt.fontMetrics.elidedText(opt.text, opt.textElideMode, text_rect.width() - 2 * margin)


def _row_index(w, path, column=0):
    dock = w.file_dock
    return dock.proxy.mapFromSource(w.files.index(w.files.row_of(path), column))


def test_long_file_names_stay_readable_in_a_narrow_file_list(qtbot, main_window, fake_controller, tiny_predictor,
                                                            tmp_path, gui, monkeypatch):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication, QToolTip

    w = main_window
    w.resize(1280, 800)
    names = [f"IMG_20240611_street_scene_camera_{i:03d}.jpg" for i in (1, 2, 3)]
    paths = _write_named_images(tmp_path / "street", names, gui)
    _open_folder_with_the_menu(qtbot, w, tmp_path / "street", monkeypatch)
    with qtbot.waitSignal(w.counter.idle, timeout=60_000):
        fake_controller.set(tiny_predictor)  # the status and count columns fill
    w.document.add_point(10.5, 10.5)  # and the People column
    w.document.flush()
    qtbot.waitUntil(lambda: w.files.entry(paths[0]).annotated_count == 1)

    w.resizeDocks([w.file_dock], [300], Qt.Horizontal)  # a person narrows the list
    table, header = w.file_dock.table, w.file_dock.table.horizontalHeader()

    def settled() -> bool:
        # The dock's new width reaches the view in a later layout pass, and the columns are
        # fitted after that: what a person sees once the window has caught up.
        cols = [c for c in range(w.files.columnCount()) if not header.isSectionHidden(c)]
        right = header.sectionViewportPosition(cols[-1]) + header.sectionSize(cols[-1])
        return w.file_dock.width() <= 310 and right <= table.viewport().width() and header.sectionSize(0) > 120

    qtbot.waitUntil(settled, timeout=5000)
    assert w.file_dock.width() <= 310
    shown = [c for c in range(w.files.columnCount()) if not header.isSectionHidden(c)]
    assert {0, 1, 3} <= set(shown)  # name, status, people
    last = shown[-1]
    assert header.sectionViewportPosition(last) + header.sectionSize(last) <= table.viewport().width()
    shown = [_shown_text(table, _row_index(w, p)) for p in paths]
    for name, text in zip(names, shown):
        assert "\u2026" in text[1:-1], text  # shortened in the middle ...
        start, end = text.split("\u2026")
        assert name.startswith(start) and name.endswith(end) and len(start) >= 5 and len(end) >= 7, text
    assert len(set(shown)) == 3  # ... and the rows still tell the files apart

    # Hovering a name shows the whole path.
    index = _row_index(w, paths[1])
    pos = table.visualRect(index).center()
    qtbot.mouseMove(table.viewport(), pos)
    QApplication.sendEvent(table.viewport(), QHelpEvent(QEvent.ToolTip, pos, table.viewport().mapToGlobal(pos)))
    qtbot.waitUntil(QToolTip.isVisible, timeout=2000)
    assert QToolTip.text() == paths[1]
    QToolTip.hideText()

    # Only when needed: with room, the whole name.
    w.resizeDocks([w.file_dock], [600], Qt.Horizontal)
    qtbot.waitUntil(lambda: _shown_text(table, _row_index(w, paths[0])) == names[0])



def test_images_that_share_a_name_are_told_apart_in_the_file_list(qtbot, main_window, monkeypatch):
    """ShanghaiTech keeps train_data/images/IMG_4.jpg and test_data/images/IMG_4.jpg: each row
    shows the folder that tells it apart (readable at 1280 x 800), a name only one image has
    shows just the name, and the filter box finds what the rows show."""
    from _data_paths import STREET_B, need

    from sasnet_gui.files import dock as files_dock

    folder = need(STREET_B)
    w = main_window
    w.resize(1280, 800)
    _open_folder_with_the_menu(qtbot, w, folder, monkeypatch)
    qtbot.waitUntil(lambda: not w.file_dock.scanning(), timeout=20_000)
    test_4, train_4 = (str(folder / part / "images" / "IMG_4.jpg") for part in ("test_data", "train_data"))
    table = w.file_dock.table

    def name_column_fitted():  # the dock refits its columns on the next turn of the event loop
        return table.columnWidth(0) >= w.file_dock._name_px(files_dock.NAME_MIN_CHARS)

    qtbot.waitUntil(name_column_fitted, timeout=5000)
    drawn = {p: _shown_text(table, _row_index(w, p)) for p in (test_4, train_4)}
    assert drawn[test_4] != drawn[train_4], drawn
    assert drawn[test_4].startswith("test") and drawn[train_4].startswith("train"), drawn
    assert all(t.endswith("_4.jpg") for t in drawn.values()), drawn
    assert not table.wordWrap()  # wrapped at a "/", a one-line row would show only the folders
    assert _shown_text(table, _row_index(w, folder / "train_data" / "images" / "IMG_9.jpg")) == "IMG_9.jpg"
    assert w.files.entry(test_4).annotated_count != w.files.entry(train_4).annotated_count  # two images

    def listed():
        proxy = w.file_dock.proxy
        return sorted(proxy.data(proxy.index(r, 0), Qt.UserRole) for r in range(proxy.rowCount()))

    qtbot.keyClicks(w.file_dock.filter, "test_data")
    assert listed() == sorted(str(folder / "test_data" / "images" / f"IMG_{i}.jpg") for i in range(1, 9))
    w.file_dock.filter.clear()
    qtbot.keyClicks(w.file_dock.filter, "img_4.jpg")
    assert listed() == sorted([test_4, train_4])


def test_the_no_model_banner_takes_a_few_lines_at_1280_by_800(qtbot, main_window):
    """Without a model the banner says what to do in at most three lines, all of it in view,
    and leaves the canvas its height; every way to get a model is in its tooltips."""
    from sasnet_gui.widgets import HOW_TO_GET_A_MODEL

    w = main_window
    w.resize(1280, 800)
    qtbot.wait(50)
    banner, label = w.banner, w.banner.label
    assert banner.isVisible()
    line = label.fontMetrics().lineSpacing()
    margins = banner.layout().contentsMargins()
    assert banner.height() <= 3 * line + margins.top() + margins.bottom() + 4, banner.height()
    assert label.heightForWidth(label.width()) <= label.height()  # no line cut off
    assert banner.rect().contains(label.geometry())
    buttons = banner.findChildren(QPushButton)
    assert {b.text() for b in buttons} == {"Get the Released Model\u2026", "Models\u2026"}
    for b in buttons:
        assert banner.rect().contains(b.geometry()) and not b.geometry().intersects(label.geometry())
    text = label.text()
    assert "No model loaded" in text and "released model" in text and "Models" in text
    assert label.toolTip() == HOW_TO_GET_A_MODEL


def _error_dialogs(w):
    from PySide6.QtWidgets import QMessageBox

    return [b for b in w.findChildren(QMessageBox) if b.objectName() == "errorDialog" and b.isVisible()]


def _click_row(qtbot, w, path):
    table = w.file_dock.table
    qtbot.mouseClick(table.viewport(), Qt.LeftButton, pos=table.visualRect(_row_index(w, path)).center())


def test_an_error_image_says_error_everywhere_and_its_dialog_comes_once(qtbot, main_window, tmp_path, gui):
    w = main_window
    good = [str(p) for p in gui.write_images(tmp_path, n=1, h=48, w=64)][0]
    broken = tmp_path / "broken_scan_from_the_archive.jpg"
    broken.write_bytes(b"not a jpeg at all")
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([good, broken])

    with qtbot.waitSignal(w.session.imageFailed, timeout=10_000):
        _click_row(qtbot, w, str(broken))
    qtbot.waitUntil(lambda: len(_error_dialogs(w)) == 1)
    reason = w.files.entry(str(broken)).error
    assert reason and w.file_dock.proxy.data(_row_index(w, str(broken), 1)) == "error"  # the list's word
    texts = w.counts.texts()
    assert texts["model_note"] == "error" and reason in texts["problem"]  # not "not run"
    assert w.counts.problem.isVisible()
    _error_dialogs(w)[0].accept()

    for _ in range(2):  # away and back, with the mouse and with the keyboard
        with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
            _click_row(qtbot, w, good)
        assert not w.counts.problem.isVisible() and w.counts.texts()["model_note"] == "not run"
        with qtbot.waitSignal(w.session.imageFailed, timeout=10_000):
            qtbot.keyClick(w.file_dock.table, Qt.Key_Down)
        qtbot.wait(100)
        assert _error_dialogs(w) == []  # said once; the reason stays in the panel and the list
        assert w.counts.texts()["model_note"] == "error" and reason in w.counts.texts()["problem"]
        assert reason in w.files.data(w.files.index(w.files.row_of(str(broken)), 0), Qt.ToolTipRole)


def test_status_messages_belong_to_the_image_and_stay_clear_of_the_coordinates(
        qtbot, main_window, tmp_path, gui, monkeypatch):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    w = main_window
    w.resize(1280, 800)
    first, second = (str(p) for p in gui.write_images(tmp_path / "imgs", n=2, h=96, w=128))
    broken = tmp_path / "imgs" / ("z_photo_whose_name_is_long_enough_to_fill_a_status_bar_" * 2 + ".jpg")
    broken.write_bytes(b"\xff\xd8 cut short")
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([tmp_path / "imgs"])

    with qtbot.waitSignal(w.session.imageFailed, timeout=10_000):
        _click_row(qtbot, w, str(broken))
    sb = w.statusBar()
    assert broken.name in sb.currentMessage()
    for box in _error_dialogs(w):
        box.accept()
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        _click_row(qtbot, w, second)
    assert broken.name not in sb.currentMessage() and sb.message_shown() == sb.currentMessage() == ""

    # A long message for this image, with the coordinates readout showing: side by side, never over.
    long_home = tmp_path / ("a_long_folder_for_the_settings_of_this_studio_" * 3)
    monkeypatch.setenv("SASNET_STUDIO_HOME", str(long_home))
    monkeypatch.setenv("PATH", str(tmp_path))  # no desktop launcher: the path goes to the status bar
    monkeypatch.delenv("XDG_CURRENT_DESKTOP", raising=False)
    w.act_log_folder.trigger()
    message = sb.currentMessage()
    assert str(long_home) in message
    vp, p = w.canvas.viewport(), gui.to_widget(w.canvas, 40, 40)
    QApplication.sendEvent(vp, QMouseEvent(QEvent.MouseMove, QPointF(p), QPointF(vp.mapToGlobal(p)),
                                           Qt.NoButton, Qt.NoButton, Qt.NoModifier))
    qtbot.waitUntil(lambda: w.cursor_label.text() != "")
    label = sb.message_label
    assert label.isVisible() and label.toolTip() == message
    shown = sb.message_shown()
    assert shown.endswith("\u2026") and message.startswith(shown[:-1])  # shortened, not cut mid-letter
    assert label.fontMetrics().horizontalAdvance(shown) <= label.width()
    readout = w.cursor_label.geometry()
    assert label.geometry().right() < readout.left()
    text_right = readout.left() + w.cursor_label.fontMetrics().horizontalAdvance(w.cursor_label.text())
    assert text_right <= w.model_label.geometry().left()

    # Another image: the message about the previous one goes.
    w.file_dock.table.setFocus()
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        qtbot.keyClick(w.file_dock.table, Qt.Key_Up)
    assert w.session.current == first and sb.currentMessage() == "" and sb.message_shown() == ""


def test_open_recent_lists_exactly_the_video_that_was_opened(qtbot, main_window, tmp_path, gui, monkeypatch):
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QFileDialog

    w = main_window
    gui.write_images(tmp_path, n=2, h=48, w=64)  # other files in the same folder
    make_video(tmp_path / "another_clip.avi", frames=4)
    video = make_video(tmp_path / "the_clip.avi", frames=6)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(video)], ""))
    w.act_open.trigger()
    panel = w.panel("video")
    qtbot.waitUntil(lambda: panel.info is not None)

    w.recent_menu.popup(QPoint(0, 0))
    entries = [a for a in w.recent_menu.actions() if not a.isSeparator() and a.text() != "Clear List"]
    w.recent_menu.hide()
    assert [a.toolTip() for a in entries] == [str(video)]
    assert w.files.paths() == []  # and opening it again opens that video, not its folder
    panel.close_video()
    entries[0].trigger()
    qtbot.waitUntil(lambda: panel.info is not None and panel.info.path == video)
    assert w.files.paths() == []


def test_open_recent_survives_a_damaged_or_stale_list(qtbot, fake_controller, tmp_path):
    """gui.ini edited by hand or by an older version: odd values are skipped, a file that has gone
    is said in the status bar when chosen, an "&" in a name is shown, not taken as a shortcut."""
    from PySide6.QtCore import QPoint

    from sasnet_gui.main_window import MainWindow
    from sasnet_gui.settings import AppSettings, settings_file

    gone = tmp_path / "a deleted clip of R&D.avi"
    settings_file().parent.mkdir(parents=True, exist_ok=True)
    settings_file().write_text(f"[recent]\npaths=@Invalid(), 42, , {gone}\n", encoding="utf-8")
    assert AppSettings().recent_paths()  # read without a crash
    w = MainWindow(controller=fake_controller)
    qtbot.addWidget(w)
    w.show()
    w.recent_menu.popup(QPoint(0, 0))
    entries = {a.toolTip(): a for a in w.recent_menu.actions() if a.toolTip()}
    w.recent_menu.hide()
    assert str(gone) in entries and entries[str(gone)].text().endswith("R&&D.avi")
    entries[str(gone)].trigger()
    assert gone.name in w.statusBar().currentMessage() and w.files.paths() == []


def _recent_entries(window) -> list[str]:
    """The paths Open Recent lists, as a person sees them when the menu opens."""
    window.recent_menu.popup(QPoint(0, 0))
    entries = [a.toolTip() for a in window.recent_menu.actions()
               if not a.isSeparator() and a.isEnabled() and a.text() != "Clear List"]
    window.recent_menu.hide()
    return entries


def test_a_cleared_recent_list_stays_cleared_after_a_restart(qtbot, fake_controller, tmp_path, gui, monkeypatch):
    """Settings from an older version (folders under "recent/folders"): opening a file, then
    File ▸ Open Recent ▸ Clear List, then starting again shows an empty list, not the old folders."""
    from PySide6.QtWidgets import QFileDialog

    from sasnet_gui.main_window import MainWindow
    from sasnet_gui.settings import settings_file

    old_folder = tmp_path / "opened last year"
    old_folder.mkdir()
    settings_file().parent.mkdir(parents=True, exist_ok=True)
    settings_file().write_text(f"[recent]\nfolders={old_folder}\n", encoding="utf-8")
    (image,) = gui.write_images(tmp_path / "today", n=1, h=48, w=64)

    w = MainWindow(controller=fake_controller)
    qtbot.addWidget(w)
    w.show()
    assert _recent_entries(w) == [str(old_folder)]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(image)], ""))
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.act_open.trigger()
    assert _recent_entries(w) == [str(image), str(old_folder)]
    w.recent_menu.popup(QPoint(0, 0))
    (clear,) = [a for a in w.recent_menu.actions() if a.text() == "Clear List"]
    clear.trigger()
    w.recent_menu.hide()
    assert _recent_entries(w) == []
    w.close()
    del w

    # A restart: a new process reads the file as written (the in-process settings cache is not it).
    import subprocess
    import sys

    code = "from sasnet_gui.settings import AppSettings; print(repr(AppSettings().recent_paths()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    w2 = MainWindow(controller=fake_controller)
    qtbot.addWidget(w2)
    w2.show()
    assert _recent_entries(w2) == []
