"""Export through the real dialog and menu paths: annotations in every format, the ShanghaiTech
folder layout, counts as CSV, overlays as PNG."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMessageBox

from sasnet_core.annotations.formats import FORMATS, read_annotations
from sasnet_core.annotations.formats.export import DATASET
from sasnet_core.engine.counting import summarize
from sasnet_core.io.imageio import read_image
from sasnet_gui.export_dialogs import (
    ExportAnnotationsDialog,
    export_counts_csv,
    export_overlay_png,
    overlay_image,
)


@pytest.fixture
def annotated(qtbot, main_window, tmp_path, gui):
    """A window with two annotated images (one reviewed) and one without points."""
    paths = [str(p) for p in gui.write_images(tmp_path / "imgs", n=3)]
    with qtbot.waitSignal(main_window.session.imageShown):
        main_window.open_paths(paths)
    doc = main_window.document
    for path, pts, reviewed in ((paths[0], [[10.5, 20.25], [30, 40]], True), (paths[1], [[5, 6]], False)):
        if main_window.session.current != path:
            with qtbot.waitSignal(main_window.session.imageShown):
                main_window.session.show(path)
        for x, y in pts:
            doc.add_point(x, y)
        doc.set_reviewed(reviewed)
        doc.flush()
    return main_window, paths


def _open_export(window, qtbot, how="menu"):
    """File > Export Annotations... (the menu action or Ctrl+E), as a person opens it."""
    if how == "menu":
        window.act_export.trigger()
    else:
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
        qtbot.keyClick(window, Qt.Key_E, Qt.ControlModifier)
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), ExportAnnotationsDialog))
    return QApplication.activeModalWidget()


def _export(dlg, qtbot, scope, fmt, target):
    """Choose scope, format and target in the dialog and press its Export button."""
    dlg.scope.setCurrentIndex(dlg.scope.findData(scope))
    dlg.format.setCurrentIndex(dlg.format.findData(fmt))
    dlg.target.setText(str(target))
    qtbot.mouseClick(dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.Ok), Qt.LeftButton)


@pytest.mark.parametrize("how", ["menu", "shortcut"])
def test_export_menu_and_ctrl_e_open_the_dialog_and_export(annotated, qtbot, tmp_path, how):
    window, paths = annotated
    dlg = _open_export(window, qtbot, how)
    assert dlg.scope.currentData() == "current"  # not the action's 'checked' flag
    _export(dlg, qtbot, "all", "coco", tmp_path / "all.json")
    back = read_annotations(tmp_path / "all.json", "coco")
    assert sorted(a.count for a in back) == [1, 2]
    assert all(a.image_size == (256, 192) for a in back)  # width/height from the images
    assert "Exported 2 image(s)" in window.statusBar().currentMessage()


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_current_image_in_every_format_round_trips(annotated, qtbot, tmp_path, fmt):
    window, paths = annotated
    out = tmp_path / "out" / f"points{FORMATS[fmt].extensions[0]}"
    _export(_open_export(window, qtbot), qtbot, "current", fmt, out)
    (ann,) = read_annotations(out, fmt)
    np.testing.assert_array_equal(ann.points, [[5, 6]])


def test_existing_file_is_replaced_only_when_the_person_says_so(annotated, qtbot, tmp_path, monkeypatch):
    window, _ = annotated
    out = tmp_path / "mine.csv"
    out.write_text("x,y\n1,1\n")
    asked = []

    def answer(reply):
        def question(parent, title, text, *a, **k):
            asked.append(text)
            return reply
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    _export(_open_export(window, qtbot), qtbot, "current", "csv", out)
    assert asked and str(out) in asked[0]
    assert out.read_text() == "x,y\n1,1\n"  # kept
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    _export(_open_export(window, qtbot), qtbot, "current", "csv", out)
    assert read_annotations(out, "csv")[0].points.tolist() == [[5, 6]]


def test_same_file_name_in_three_folders_gives_three_files(qtbot, main_window, tmp_path, gui):
    paths = []
    for sub in "abc":
        (p,) = gui.write_images(tmp_path / "imgs" / sub, n=1)
        paths.append(str(p.rename(p.with_name("img.png"))))
    with qtbot.waitSignal(main_window.session.imageShown):
        main_window.open_paths(paths)
    for n, path in enumerate(paths, 1):
        if main_window.session.current != path:
            with qtbot.waitSignal(main_window.session.imageShown):
                main_window.session.show(path)
        for i in range(n):
            main_window.document.add_point(10 + i, 10)
        main_window.document.flush()
    _export(_open_export(main_window, qtbot), qtbot, "all", "text", tmp_path / "out")
    for sub, n in zip("abc", (1, 2, 3)):
        assert read_annotations(tmp_path / "out" / sub / "img.txt", "text")[0].count == n
    assert "3 image(s) in 3 file(s)" in main_window.statusBar().currentMessage()


def test_two_images_that_would_share_a_file_are_named_and_nothing_is_written(qtbot, main_window, tmp_path, gui):
    from sasnet_core.io.imageio import write_image

    folder = tmp_path / "imgs"
    folder.mkdir()
    paths = [str(folder / "crowd.png"), str(folder / "crowd.jpg")]
    for p in paths:
        write_image(p, gui.image())
    with qtbot.waitSignal(main_window.session.imageShown):
        main_window.open_paths(paths)
    for path in paths:
        if main_window.session.current != path:
            with qtbot.waitSignal(main_window.session.imageShown):
                main_window.session.show(path)
        main_window.document.add_point(10, 10)
        main_window.document.flush()
    _export(_open_export(main_window, qtbot), qtbot, "all", "text", tmp_path / "out")
    error = main_window.property("lastError")
    assert "crowd.txt" in error and "crowd.png" in error and "crowd.jpg" in error
    assert not (tmp_path / "out").exists()


def test_shanghaitech_layout_from_the_dialog(annotated, qtbot, tmp_path):
    window, _ = annotated
    dlg = _open_export(window, qtbot)
    dlg.test_fraction.setValue(0.5)
    _export(dlg, qtbot, "all", DATASET, tmp_path / "sht")
    gts = sorted((tmp_path / "sht").rglob("GT_IMG_*.mat"))
    assert len(gts) == 2 and len(sorted((tmp_path / "sht").rglob("IMG_*.jpg"))) == 2
    counts = sorted(read_annotations(p, "shanghaitech")[0].count for p in gts)
    assert counts == [1, 2]
    assert not list((tmp_path / "sht").glob(".*"))  # no staging folder left behind


def test_export_failure_is_shown_with_the_file(annotated, qtbot, tmp_path):
    window, _ = annotated
    blocker = tmp_path / "file_not_folder"
    blocker.write_text("x")
    _export(_open_export(window, qtbot), qtbot, "all", "csv", blocker / "sub")
    assert "file_not_folder" in window.property("lastError")
    assert blocker.read_text() == "x"


def test_counts_csv_lists_every_file(annotated, tmp_path):
    window, paths = annotated
    window.files.set_counted(paths[2], 7.25)
    out = export_counts_csv(window.files.entries(), tmp_path / "counts.csv")
    rows = list(csv.DictReader(out.open()))
    assert [r["image"] for r in rows] == paths
    assert rows[0]["annotated_count"] == "2" and rows[0]["reviewed"] == "1"
    assert rows[2]["model_count"] == "7.250" and rows[2]["status"] == "counted"


def test_overlays_as_png(tmp_path, tiny_predictor, gui):
    rgb = gui.image()
    r = summarize(tiny_predictor.predict(rgb), "x")
    d = export_overlay_png(rgb, r, "density", tmp_path / "d.png")
    lv = export_overlay_png(rgb, r, "levels", tmp_path / "l", opacity=1.0)
    assert read_image(d).shape == rgb.shape and lv.suffix == ".png"
    levels = read_image(lv)
    # At full opacity each patch has exactly its level's colour.
    from sasnet_gui.canvas.colors import LEVEL_RGBA

    assert tuple(levels[5, 5]) == tuple(LEVEL_RGBA[r.level_map[0, 0], :3])
    with pytest.raises(ValueError):
        overlay_image(rgb, r, "nope")


def _press_export(dlg, qtbot):
    qtbot.mouseClick(dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.Ok), Qt.LeftButton)


def test_data_set_is_suggested_beside_the_images_and_refused_inside_them(annotated, qtbot, tmp_path):
    from sasnet_core.io.inputs import collect_inputs

    window, paths = annotated
    before = collect_inputs([str(tmp_path / "imgs")])
    dlg = _open_export(window, qtbot)
    dlg.scope.setCurrentIndex(dlg.scope.findData("all"))
    dlg.format.setCurrentIndex(dlg.format.findData(DATASET))
    assert dlg.target.text() == str(tmp_path / "imgs-shanghaitech")  # outside the images' folder
    _press_export(dlg, qtbot)
    assert len(sorted((tmp_path / "imgs-shanghaitech").rglob("GT_IMG_*.mat"))) == 2
    # Inside the images' folder the copies would be read back as new images: refused, nothing written.
    _export(_open_export(window, qtbot), qtbot, "all", DATASET, tmp_path / "imgs" / "sht")
    assert "read back as new images" in window.property("lastError")
    assert not (tmp_path / "imgs" / "sht").exists()
    assert collect_inputs([str(tmp_path / "imgs")]) == before


def test_sasnet_export_never_targets_the_apps_own_annotation_file(annotated, qtbot, tmp_path, monkeypatch):
    from sasnet_core.annotations.annotation import annotation_path_for

    window, paths = annotated
    own = annotation_path_for(paths[1])
    saved = own.read_text()
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes)
    dlg = _open_export(window, qtbot)
    dlg.format.setCurrentIndex(dlg.format.findData("sasnet"))
    suggested = dlg.target.text()
    assert suggested != str(own) and suggested.endswith(".sasnet.json")
    _press_export(dlg, qtbot)
    assert read_annotations(suggested, "sasnet")[0].count == 1 and not asked
    # Typed in by hand, the app's own file is refused with its name, not offered for replacing.
    _export(_open_export(window, qtbot), qtbot, "current", "sasnet", own)
    assert "annotation file the app keeps" in window.property("lastError") and not asked
    assert own.read_text() == saved


def test_export_to_an_image_or_a_wrong_extension_is_refused(annotated, qtbot, tmp_path, monkeypatch):
    window, paths = annotated
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    image = open(paths[0], "rb").read()
    _export(_open_export(window, qtbot), qtbot, "current", "nwpu", paths[0])
    assert "image or video" in window.property("lastError") and open(paths[0], "rb").read() == image
    _export(_open_export(window, qtbot), qtbot, "current", "cvat", tmp_path / "points.json")
    assert ".xml" in window.property("lastError") and not (tmp_path / "points.json").exists()


def test_dialog_remembers_the_last_format_and_scope(annotated, qtbot, tmp_path):
    window, _ = annotated
    _export(_open_export(window, qtbot), qtbot, "reviewed", "labelme", tmp_path / "rev")
    dlg = _open_export(window, qtbot)
    assert (dlg.format.currentData(), dlg.scope.currentData()) == ("labelme", "reviewed")
    dlg.reject()


def test_export_all_names_an_image_whose_annotation_cannot_be_read(annotated, qtbot, tmp_path):
    from sasnet_core.annotations.store import annotation_file_for

    window, paths = annotated
    assert window.session.current == paths[1]  # the open image is exported from the editor
    annotation_file_for(paths[0]).write_text("{ not json", encoding="utf-8")  # damaged on disk
    _export(_open_export(window, qtbot), qtbot, "all", "coco", tmp_path / "all.json")
    assert [a.count for a in read_annotations(tmp_path / "all.json", "coco")] == [1]
    # The status bar's last word is the export; the left-out image was named before it.
    messages = []
    window.statusBar().messageChanged.connect(messages.append)
    _export(_open_export(window, qtbot), qtbot, "all", "coco", tmp_path / "again.json")
    assert any("cannot be read" in m and "img_1.png" in m for m in messages), messages


def test_export_is_offered_only_with_something_to_export_and_says_why_not(qtbot, main_window, tmp_path, gui,
                                                                          read_only):
    paths = [str(p) for p in gui.write_images(tmp_path / "imgs", n=2)]
    read_only(tmp_path / "imgs")  # a card or share: the suggested place is not beside the images
    with qtbot.waitSignal(main_window.session.imageShown):
        main_window.open_paths(paths)
    main_window.document.add_point(5, 6)
    main_window.document.flush()
    dlg = _open_export(main_window, qtbot)
    export = dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.Ok)
    dlg.scope.setCurrentIndex(dlg.scope.findData("reviewed"))
    assert not export.isEnabled() and "marked reviewed" in dlg.summary.text()
    dlg.scope.setCurrentIndex(dlg.scope.findData("all"))
    assert export.isEnabled() and not Path(dlg.target.text()).is_relative_to(tmp_path / "imgs")
    dlg.target.setText("  ")
    assert not export.isEnabled()
    qtbot.keyClick(dlg, Qt.Key_Escape)
