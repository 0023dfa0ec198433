"""Opening files: folder scanning, the file list and its statuses, background counting."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _data_paths import UCF_CC_50, need
from PySide6.QtCore import Qt

from sasnet_core.annotations.annotation import Annotation, save_annotation
from sasnet_core.annotations.store import annotation_file_for
from sasnet_core.engine.counting import summarize
from sasnet_core.io.inputs import collect_inputs
from sasnet_gui.files.counting import CountingQueue
from sasnet_gui.files.dock import FileListDock
from sasnet_gui.files.model import FileListModel, Status


def test_open_folder_lists_what_count_lists_in_the_same_order(qtbot, main_window, tmp_path, gui, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    gui.write_images(tmp_path / "a", n=3, h=48, w=64)
    (tmp_path / "a" / "img_10.png").write_bytes((tmp_path / "a" / "img_1.png").read_bytes())
    gui.write_images(tmp_path / "a" / "sub", n=2, h=48, w=64)
    (tmp_path / "a" / ".hidden.png").write_bytes(b"x")
    (tmp_path / "a" / "notes.txt").write_text("x")
    # The person picks the folder in File > Open Folder's dialog.
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path / "a"))
    with qtbot.waitSignal(main_window.session.imageShown, timeout=10_000):
        main_window.act_open_folder.trigger()
    listed = [Path(p).relative_to(tmp_path / "a").as_posix() for p in main_window.files.paths()]
    assert listed == ["img_1.png", "img_2.png", "img_3.png", "img_10.png", "sub/img_1.png", "sub/img_2.png"]
    # the one collector gives sasnet count and eval this very list
    assert [str(p) for p in collect_inputs([tmp_path / "a"], absolute=True).images] == main_window.files.paths()


def test_file_model_statuses(qtbot):
    m = FileListModel()
    assert m.add_paths(["/x/a.png", "/x/b.png", "/x/a.png"]) == ["/x/a.png", "/x/b.png"]
    assert m.entry("/x/a.png").status is Status.NOT_RUN
    m.set_counting("/x/a.png")
    assert m.entry("/x/a.png").status is Status.COUNTING
    m.set_counted("/x/a.png", 12.34)
    assert m.entry("/x/a.png").status is Status.COUNTED
    assert m.data(m.index(0, 2)) == "12.3"
    m.set_annotation("/x/a.png", 11, True)
    assert m.entry("/x/a.png").status is Status.ANNOTATED
    assert m.data(m.index(0, 3)) == "11" and m.data(m.index(0, 4)) == "\u2713"
    m.set_error("/x/b.png", "not a readable image")
    assert m.data(m.index(1, 1)) == "error" and "not a readable image" in m.data(m.index(1, 0), 3)
    assert m.reviewed_paths() == ["/x/a.png"]


def test_counting_queue_counts_everything_in_the_background(qtbot, tmp_path, gui, tiny_predictor):
    paths = [str(p) for p in gui.write_images(tmp_path, n=2, h=96, w=128)]
    (tmp_path / "broken.png").write_bytes(b"not an image")
    paths.append(str(tmp_path / "broken.png"))
    q = CountingQueue()
    counted, failed = {}, {}
    q.counted.connect(lambda p, r: counted.__setitem__(p, r))
    q.failed.connect(lambda p, m: failed.__setitem__(p, m))
    with qtbot.waitSignal(q.idle, timeout=60_000):
        q.enqueue(paths)
        q.set_predictor(tiny_predictor)
    assert set(counted) == set(paths[:2])
    r = counted[paths[0]]
    assert r.density.shape == (96, 128) and r.confidence.shape[0] == 5
    assert r.count == pytest.approx(float(r.density.sum()), rel=1e-4)
    assert "not a readable image" in failed[paths[2]]
    assert not q.is_running()


def test_cancel_stops_after_the_current_image(qtbot, tmp_path, gui, tiny_predictor):
    paths = [str(p) for p in gui.write_images(tmp_path, n=5, h=64, w=64)]
    q = CountingQueue()
    started = []
    q.started.connect(started.append)
    q.started.connect(lambda _: q.cancel())  # cancel as soon as the first one starts
    with qtbot.waitSignal(q.idle, timeout=60_000):
        q.enqueue(paths)
        q.set_predictor(tiny_predictor)
    assert len(started) == 1 and q.pending() == []


def test_summarize_keeps_the_count_when_shrinking(tiny_predictor, gui):
    pred = tiny_predictor.predict(gui.image(600, 800, seed=3))
    r = summarize(pred, display_side=200)
    assert max(r.density.shape) == 200
    assert float(r.density.sum()) == pytest.approx(pred.count, rel=1e-4)
    assert r.levels_of(np.array([[10.0, 10.0]]))[0] == pred.level_map[0, 0]


def test_dock_shows_annotated_counts_and_activates_files(qtbot, tmp_path, gui):
    paths = gui.write_images(tmp_path, n=2)
    save_annotation(Annotation(str(paths[1]), None, [[1, 2], [3, 4]], reviewed=True), annotation_file_for(paths[1]))
    model = FileListModel()
    dock = FileListDock(model)
    qtbot.addWidget(dock)
    model.add_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: not dock.scanning(), timeout=10_000)
    e = model.entry(str(paths[1]))
    assert (e.annotated_count, e.reviewed, e.status) == (2, True, Status.ANNOTATED)
    assert model.entry(str(paths[0])).status is Status.NOT_RUN
    with qtbot.waitSignal(dock.fileActivated) as blocker:
        dock.table.selectRow(1)
    assert blocker.args == [str(paths[1])]
    dock.filter.setText("img_1")
    assert dock.proxy.rowCount() == 1


def test_opening_a_real_folder_lists_every_image(qtbot, main_window):
    folder = need(UCF_CC_50)
    with qtbot.waitSignal(main_window.session.imageShown, timeout=10_000):
        added = main_window.open_paths([folder])
    assert len(added) == 50 and Path(added[0]).name == "1.jpg"
    assert main_window.canvas.image_shape is not None
    assert main_window.files.entry(added[0]) is not None
    # No edits here: the shared data must stay untouched (tests may run as a user who can write).


def test_page_down_moves_the_one_highlighted_row(qtbot, main_window, tmp_path, gui):
    w = main_window
    paths = [str(p) for p in gui.write_images(tmp_path, n=3, h=48, w=64)]
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([tmp_path])
    sm = w.file_dock.table.selectionModel()
    changes = []  # what the view repaints from: rows newly selected and rows no longer selected
    sm.selectionChanged.connect(lambda sel, desel: changes.append(
        ({i.row() for i in sel.indexes()}, {i.row() for i in desel.indexes()})))
    w.file_dock.table.setFocus()
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        qtbot.keyClick(w.file_dock.table, Qt.Key_PageDown)
    assert w.session.current == paths[1]
    assert [i.row() for i in sm.selectedRows()] == [1]
    assert changes and changes[-1] == ({1}, {0})  # row 0 is repainted as not selected
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        qtbot.keyClick(w.file_dock.table, Qt.Key_PageUp)
    assert [i.row() for i in sm.selectedRows()] == [0] and changes[-1] == ({0}, {1})


def test_a_long_file_name_leaves_status_and_people_in_view(qtbot, tmp_path):
    model = FileListModel()
    dock = FileListDock(model)
    qtbot.addWidget(dock)
    dock.resize(320, 400)
    dock.show()
    qtbot.waitExposed(dock)
    long_name = "crowd_" + "very_long_description_" * 8 + "0001.jpg"
    model.add_paths([str(tmp_path / "a.jpg"), str(tmp_path / long_name)])
    model.set_annotation(str(tmp_path / long_name), 12, True)
    qtbot.waitUntil(lambda: not dock.scanning(), timeout=10_000)
    table, header = dock.table, dock.table.horizontalHeader()
    last = model.columnCount() - 1
    shown = [c for c in range(model.columnCount()) if not header.isSectionHidden(c)]
    last = shown[-1]
    assert header.sectionViewportPosition(last) + header.sectionSize(last) <= table.viewport().width()
    assert all(header.sectionSize(c) > 0 for c in shown) and {0, 1, 3} <= set(shown)  # name, status, people
    assert table.textElideMode() == Qt.ElideMiddle and header.sectionSize(0) < table.viewport().width()
    dock.resize(dock.preferred_width(), 400)  # wider: the spare columns come back
    qtbot.waitUntil(lambda: not any(header.isSectionHidden(c) for c in range(model.columnCount())))


def test_a_damaged_annotation_stays_visible_in_the_list_after_counting(qtbot, main_window, fake_controller,
                                                                         tiny_predictor, tmp_path, gui):
    paths = [str(p) for p in gui.write_images(tmp_path, n=2)]
    annotation_file_for(paths[1]).write_text('{"points": [[1, 2], ')  # cut short
    with qtbot.waitSignal(main_window.session.imageShown):
        main_window.open_paths(paths)
    with qtbot.waitSignal(main_window.counter.idle, timeout=60_000):
        fake_controller.set(tiny_predictor)  # both images are counted
    files = main_window.files
    damaged = files.entry(paths[1])
    assert damaged.model_count is not None and damaged.status is Status.ERROR
    row = files.paths().index(paths[1])
    assert files.data(files.index(row, 3)) == "?"
    assert "annotation cannot be read" in files.data(files.index(row, 0), Qt.ToolTipRole)
    assert files.entry(paths[0]).status is Status.COUNTED
