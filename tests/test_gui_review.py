"""Review mode through the keys and menus a person uses: N / Shift+N visit the review cells in
order of the model's uncertainty, M marks the outlined cell, the marks are undoable, saved in the
annotation and still there after a restart; old annotation files open; the uncertainty overlay
toggles; the file list sorts by expected error."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction

from sasnet_core.annotations.store import annotation_file_for, read_annotation
from sasnet_core.engine import uncertainty

# Cell (row, col) scores of a 256 x 384 image (2 x 3 cells of 128 px): the visiting order is
# (1,0) 6, (0,1) 5, (1,2) 4, (0,2) 3, (1,1) 2, (0,0) 1.
CELL_SCORES = np.array([[1.0, 5.0, 3.0], [6.0, 2.0, 4.0]])
ORDER = [(1, 0), (0, 1), (1, 2), (0, 2), (1, 1), (0, 0)]


@pytest.fixture
def known_scores(monkeypatch):
    """Every patch of review cell (r, c) scores CELL_SCORES[r, c] / 16 (16 patches per cell)."""
    def fake(pred, method=uncertainty.DEFAULT_METHOD):
        gh, gw = len(pred.patch_rows) - 1, len(pred.patch_cols) - 1
        i, j = np.meshgrid(np.arange(gh) // 4, np.arange(gw) // 4, indexing="ij")
        return CELL_SCORES[np.minimum(i, 1), np.minimum(j, 2)] / 16

    monkeypatch.setattr(uncertainty, "patch_scores", fake)


def _open_counted(qtbot, window, controller, predictor, folder):
    with qtbot.waitSignal(window.session.imageShown, timeout=10_000):
        window.open_paths([folder])
    with qtbot.waitSignal(window.counter.idle, timeout=60_000):
        controller.set(predictor)
    qtbot.waitUntil(lambda: window.session.current_result() is not None, timeout=10_000)
    window.canvas.setFocus()


def _press(qtbot, window, key, modifier=Qt.NoModifier):
    qtbot.keyClick(window, key, modifier)
    return window.review.current


def _shown_cell_fills_view(window, cell) -> bool:
    rect = window.review.cell_rect(cell)
    view = window.canvas.vb.viewRect()
    return (view.contains(rect) and view.width() < 2 * rect.width() + 1e-6
            and window.canvas.review_layer.current.isVisible()
            and window.canvas.review_layer.current.rect() == rect)


def test_next_cell_follows_the_scores_marks_and_undoes(qtbot, main_window, fake_controller, tiny_predictor,
                                                       tmp_path, gui, known_scores):
    w = main_window
    gui.write_images(tmp_path, n=1, h=256, w=384)
    _open_counted(qtbot, w, fake_controller, tiny_predictor, tmp_path)
    assert w.counts.texts()["review"] == "cells reviewed 0 / 6"

    assert _press(qtbot, w, Qt.Key_N) == ORDER[0]
    assert _shown_cell_fills_view(w, ORDER[0])
    assert w.document.reviewed_cells == frozenset()  # looking at a cell does not mark it
    assert _press(qtbot, w, Qt.Key_N) == ORDER[1]  # moving on marks the cell left behind
    assert w.document.reviewed_cells == {ORDER[0]}
    assert _shown_cell_fills_view(w, ORDER[1])
    assert w.counts.texts()["review"] == "cells reviewed 1 / 6"

    assert _press(qtbot, w, Qt.Key_M) == ORDER[1]  # M marks without moving
    assert w.document.reviewed_cells == {ORDER[0], ORDER[1]}
    assert len(w.canvas.review_layer.reviewed_rects) == 2  # both drawn dimmed

    # Shift+N: back to the cell before in the order (reviewed: it is a look back), marking nothing.
    assert _press(qtbot, w, Qt.Key_N, Qt.ShiftModifier) == ORDER[0]
    assert w.document.reviewed_cells == {ORDER[0], ORDER[1]}
    qtbot.keyClick(w, Qt.Key_Z, Qt.ControlModifier)  # undo the M
    assert w.document.reviewed_cells == {ORDER[0]}
    assert w.counts.texts()["review"] == "cells reviewed 1 / 6"
    qtbot.keyClick(w, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert w.document.reviewed_cells == {ORDER[0], ORDER[1]}

    # The menu action does what the key does: on from the shown cell to the unreviewed ones in
    # order; past the last one, nothing is outlined.
    for expected in (ORDER[2], ORDER[3], ORDER[4], ORDER[5]):
        w.act_next_cell.trigger()
        assert w.review.current == expected
    w.act_next_cell.trigger()
    assert w.review.current is None and not w.canvas.review_layer.current.isVisible()
    assert "Every review cell" in w.statusBar().currentMessage()
    assert w.document.reviewed_cells == set(ORDER)
    assert w.counts.texts()["review"] == "cells reviewed 6 / 6"


def test_reviewed_cells_survive_a_restart_and_n_resumes(qtbot, fake_controller, tiny_predictor, tmp_path, gui,
                                                      known_scores):
    from _gui_helpers import fake_controller_class

    from sasnet_gui.main_window import MainWindow

    (path,) = gui.write_images(tmp_path, n=1, h=256, w=384)

    def window_on_folder(controller):
        w = MainWindow(controller=controller)
        qtbot.addWidget(w)
        w.resize(1000, 700)
        w.show()
        qtbot.waitExposed(w)
        _open_counted(qtbot, w, controller, tiny_predictor, tmp_path)
        return w

    first = window_on_folder(fake_controller)
    for _ in range(3):
        _press(qtbot, first, Qt.Key_N)
    assert first.document.reviewed_cells == {ORDER[0], ORDER[1]}
    first.close()
    first.counter.cancel()
    first.counter.wait_idle()
    saved = json.loads(annotation_file_for(str(path)).read_text(encoding="utf-8"))
    assert saved["version"] == 2
    assert saved["reviewed_cells"] == {"cell": 128, "cells": sorted([list(c) for c in ORDER[:2]])}

    second = window_on_folder(fake_controller_class()())
    assert second.document.reviewed_cells == {ORDER[0], ORDER[1]}
    assert len(second.canvas.review_layer.reviewed_rects) == 2
    assert second.counts.texts()["review"] == "cells reviewed 2 / 6"
    assert second.files.entry(str(path)).cells_reviewed == (2, 6)
    assert _press(qtbot, second, Qt.Key_N) == ORDER[2]  # the next unreviewed one, not the first
    second.counter.cancel()
    second.counter.wait_idle()


def test_an_old_annotation_file_opens_and_gains_reviewed_cells(qtbot, main_window, fake_controller, tiny_predictor,
                                                              tmp_path, gui, known_scores):
    w = main_window
    (path,) = gui.write_images(tmp_path, n=1, h=256, w=384)
    old = {"format": "sasnet-annotation", "version": 1, "image": path.name, "image_size": [384, 256],
           "reviewed": True, "points": [[10.0, 20.0], [200.5, 100.0]], "sources": [0, 0], "rois": []}
    annotation_file_for(str(path)).write_text(json.dumps(old), encoding="utf-8")
    _open_counted(qtbot, w, fake_controller, tiny_predictor, tmp_path)
    assert w.document.count == 2 and w.document.reviewed and w.document.reviewed_cells == frozenset()
    _press(qtbot, w, Qt.Key_N)
    _press(qtbot, w, Qt.Key_N)
    with qtbot.waitSignal(w.document.saved, timeout=5000):
        pass
    saved = json.loads(annotation_file_for(str(path)).read_text(encoding="utf-8"))
    assert saved["points"] == old["points"] and saved["reviewed"] is True
    assert saved["reviewed_cells"]["cells"] == [list(ORDER[0])]


def test_uncertainty_overlay_toggles_with_its_colour_bar(qtbot, main_window, fake_controller, tiny_predictor,
                                                        tmp_path, gui):
    w = main_window
    gui.write_images(tmp_path, n=1, h=256, w=384)
    _open_counted(qtbot, w, fake_controller, tiny_predictor, tmp_path)
    assert not w.canvas.unsure_item.isVisible() and not w.canvas.unsure_colorbar.isVisible()
    qtbot.keyClick(w, Qt.Key_U)
    assert w.overlays.unsure.isChecked() and w.act_show_unsure.isChecked()
    assert w.canvas.unsure_item.isVisible() and w.canvas.unsure_colorbar.isVisible()
    expected = uncertainty.patch_scores(w.session.current_result())
    np.testing.assert_allclose(w.canvas.unsure_item.image, expected, rtol=1e-5, atol=1e-7)
    assert "unsure" in w.canvas.unsure_colorbar.getAxis("right").labelText
    w.act_show_unsure.trigger()
    assert not w.canvas.unsure_item.isVisible() and not w.overlays.unsure.isChecked()


def test_file_list_sorts_by_expected_error_highest_first(qtbot, main_window, fake_controller, tiny_predictor,
                                                        tmp_path, monkeypatch):
    from sasnet_core.io.imageio import write_image

    w = main_window
    paths = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        write_image(p, np.full((64, 96, 3), 60 * i, np.uint8))
        paths.append(str(p))
    image_scores = dict(zip(paths, (1.0, 9.0, 4.0)))

    def by_image(pred, method=uncertainty.DEFAULT_METHOD):  # the image's score spread over its patches
        gh, gw = len(pred.patch_rows) - 1, len(pred.patch_cols) - 1
        return np.full((gh, gw), image_scores[pred.path] / (gh * gw))

    monkeypatch.setattr(uncertainty, "patch_scores", by_image)
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths(paths)
    with qtbot.waitSignal(w.counter.idle, timeout=60_000):
        fake_controller.set(tiny_predictor)
    qtbot.waitUntil(lambda: all(e.unsure is not None for e in w.files.entries()), timeout=10_000)

    header, proxy, col = w.file_dock.table.horizontalHeader(), w.file_dock.proxy, w.files.UNSURE_COLUMN
    assert proxy.headerData(col, Qt.Horizontal) == "Unsure"

    def click_header():
        x = header.sectionViewportPosition(col) + header.sectionSize(col) // 2
        qtbot.mouseClick(header.viewport(), Qt.LeftButton, pos=QPoint(x, header.height() // 2))
        return [proxy.data(proxy.index(r, 0), Qt.UserRole) for r in range(proxy.rowCount())]

    assert click_header() == [paths[1], paths[2], paths[0]]  # most unsure first
    assert [proxy.data(proxy.index(r, col)) for r in range(3)] == ["9.0", "4.0", "1.0"]
    assert click_header() == [paths[0], paths[2], paths[1]]  # again: reversed


def test_without_a_count_the_cells_go_in_reading_order(qtbot, main_window, tmp_path, gui):
    w = main_window
    gui.write_images(tmp_path, n=1, h=256, w=384)
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([tmp_path])
    w.canvas.setFocus()
    assert [_press(qtbot, w, Qt.Key_N) for _ in range(3)] == [(0, 0), (0, 1), (0, 2)]
    assert "count the image" in w.statusBar().currentMessage()
    assert w.document.reviewed_cells == {(0, 0), (0, 1)}


def test_hovering_a_patch_with_the_overlay_on_says_how_unsure_it_is(qtbot, main_window, fake_controller,
                                                                    tiny_predictor, tmp_path, gui, known_scores):
    w = main_window
    gui.write_images(tmp_path, n=1, h=256, w=384)
    _open_counted(qtbot, w, fake_controller, tiny_predictor, tmp_path)
    assert "unsure" not in w.canvas.hover_at(140, 140)
    w.act_show_unsure.trigger()
    assert f"unsure people {CELL_SCORES[1, 1] / 16:.2f}" in w.canvas.hover_at(140, 140)  # cell (1, 1)


def test_going_back_marks_nothing_and_each_confirmation_is_one_undo_step(
        qtbot, main_window, fake_controller, tiny_predictor, tmp_path, gui, known_scores):
    w = main_window
    gui.write_images(tmp_path, n=1, h=256, w=384)
    _open_counted(qtbot, w, fake_controller, tiny_predictor, tmp_path)
    stack = w.document.undo_stack
    for _ in range(4):  # looking back from nothing, and back again through the order
        _press(qtbot, w, Qt.Key_N, Qt.ShiftModifier)
    assert w.review.current == ORDER[-4]
    assert w.document.reviewed_cells == frozenset() and stack.count() == 0
    assert "not reviewed yet" in w.statusBar().currentMessage()

    assert _press(qtbot, w, Qt.Key_N) == ORDER[-3]  # N confirms the outlined cell and goes on
    assert w.document.reviewed_cells == {ORDER[-4]} and stack.count() == 1
    assert _press(qtbot, w, Qt.Key_N, Qt.ShiftModifier) == ORDER[-4]  # a look back at it
    assert "reviewed" in w.statusBar().currentMessage() and stack.count() == 1
    assert _press(qtbot, w, Qt.Key_N, Qt.ShiftModifier) == ORDER[-5]
    assert _press(qtbot, w, Qt.Key_M) == ORDER[-5]  # M confirms in place
    assert w.document.reviewed_cells == {ORDER[-4], ORDER[-5]} and stack.count() == 2
    w.act_undo.trigger()  # one step: the M
    assert w.document.reviewed_cells == {ORDER[-4]}
    w.act_undo.trigger()  # one step: the N
    assert w.document.reviewed_cells == frozenset() and not stack.canUndo()

    # The annotation saved after looking around holds no reviewed cell.
    for _ in range(3):
        _press(qtbot, w, Qt.Key_N, Qt.ShiftModifier)
    w.document.flush()
    saved = annotation_file_for(w.session.current)
    assert not saved.exists() or not json.loads(saved.read_text(encoding="utf-8")).get("reviewed_cells")


def test_m_with_no_outlined_cell_says_how_to_get_one(qtbot, main_window, tmp_path, gui):
    w = main_window
    gui.write_images(tmp_path, n=1, h=256, w=384)
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([tmp_path])
    qtbot.keyClick(w, Qt.Key_M)
    assert w.document.reviewed_cells == frozenset() and "N shows" in w.statusBar().currentMessage()


def test_keys_for_next_previous_image_and_next_image_to_review(qtbot, main_window, tmp_path, gui):
    w = main_window
    paths = [str(p) for p in gui.write_images(tmp_path, n=4, h=256, w=384)]
    # img_2 is reviewed as a whole; img_3 has all 6 of its cells confirmed: nothing left there.
    annotation_file_for(paths[1]).write_text(json.dumps(
        {"format": "sasnet-annotation", "version": 1, "image": "img_2.png", "image_size": [384, 256],
         "reviewed": True, "points": [], "sources": [], "rois": []}), encoding="utf-8")
    annotation_file_for(paths[2]).write_text(json.dumps(
        {"format": "sasnet-annotation", "version": 2, "image": "img_3.png", "image_size": [384, 256],
         "reviewed": False, "points": [], "sources": [], "rois": [],
         "reviewed_cells": {"cell": 128, "cells": [[r, c] for r in range(2) for c in range(3)]}}), encoding="utf-8")
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([tmp_path])
    qtbot.waitUntil(lambda: not w.file_dock.scanning(), timeout=10_000)
    assert w.session.current == paths[0]

    for key, expected in ((Qt.Key_PageDown, paths[1]), (Qt.Key_PageDown, paths[2]), (Qt.Key_PageUp, paths[1])):
        with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
            qtbot.keyClick(w, key)
        assert w.session.current == expected
    w.file_dock.table.setFocus()  # the keys work from the file list too
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        qtbot.keyClick(w.file_dock.table, Qt.Key_PageUp)
    assert w.session.current == paths[0]

    _press(qtbot, w, Qt.Key_N)  # an outlined cell is not confirmed by moving to another image
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        qtbot.keyClick(w, Qt.Key_N, Qt.ControlModifier)  # skips the reviewed img_2 and img_3
    assert w.session.current == paths[3]
    assert read_annotation(paths[0]) is None  # nothing was marked on img_1
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.act_next_to_review.trigger()  # wraps around to the first
    assert w.session.current == paths[0]
    assert "Ctrl+N" in w.act_next_to_review.shortcut().toString() and w.act_next_to_review in w.actions()


def test_counts_panel_says_what_the_review_keys_do(qtbot, main_window, tmp_path, gui):
    w = main_window
    gui.write_images(tmp_path, n=1, h=256, w=384)
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([tmp_path])
    keys = w.counts.texts()["review_keys"].replace("&nbsp;", " ")  # each item kept on one line
    assert w.counts.review_keys.isVisible()
    for words in ("<b>N</b> confirm cell, next", "<b>M</b> confirm cell", "<b>Shift+N</b> back, marks nothing",
                  "<b>PgDown</b> / <b>PgUp</b> next / previous image", "<b>Ctrl+N</b> next image to review"):
        assert words in keys
    # Every key the panel names is one no other action of the window has.
    from collections import Counter

    used = Counter(k.toString() for a in w.findChildren(QAction) for k in a.shortcuts() if not k.isEmpty())
    for action in (w.act_next_cell, w.act_prev_cell, w.act_mark_cell, w.act_next, w.act_prev, w.act_next_to_review):
        assert used[action.shortcut().toString()] == 1, action.text()
