"""Export through the real dialog and menu paths: annotations in every format, the ShanghaiTech
folder layout, counts as CSV, overlays as PNG."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from sasnet_core.formats import FORMATS, read_annotations
from sasnet_core.imageio import read_image
from sasnet_gui.export_dialogs import (SHANGHAITECH_LAYOUT, export_annotations, export_counts_csv,
                                       export_overlay_png, overlay_image)
from sasnet_gui.files.counting import summarize


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


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_current_image_in_every_format_round_trips(annotated, tmp_path, fmt):
    window, paths = annotated
    dlg = window.export_dialog("current")
    dlg.set_format(fmt)
    dlg.target.setText(str(tmp_path / "out" / f"points{FORMATS[fmt].extensions[0]}"))
    dlg.accept()  # the window runs the export when the dialog is accepted
    (ann,) = read_annotations(tmp_path / "out" / f"points{FORMATS[fmt].extensions[0]}", fmt)
    np.testing.assert_allclose(ann.points, [[5, 6]], atol=1e-6)


def test_all_images_into_a_folder_and_into_one_coco_file(annotated, tmp_path):
    window, paths = annotated
    anns = window.collect_annotations("all")
    assert len(anns) == 2 and window.collect_annotations("reviewed")[0].count == 2
    written = export_annotations(anns, "csv", tmp_path / "csv")
    assert sorted(p.name for p in written) == ["img_1.csv", "img_2.csv"]
    (coco,) = export_annotations(anns, "coco", tmp_path / "all.json")
    assert sorted(a.count for a in read_annotations(coco, "coco")) == [1, 2]


def test_shanghaitech_layout_from_the_dialog(annotated, tmp_path):
    window, _ = annotated
    dlg = window.export_dialog("all")
    dlg.set_format(SHANGHAITECH_LAYOUT)
    dlg.test_fraction.setValue(0.5)
    dlg.target.setText(str(tmp_path / "sht"))
    dlg.accept()
    gts = sorted((tmp_path / "sht").rglob("GT_IMG_*.mat"))
    assert len(gts) == 2 and len(sorted((tmp_path / "sht").rglob("IMG_*.jpg"))) == 2
    counts = sorted(read_annotations(p, "shanghaitech")[0].count for p in gts)
    assert counts == [1, 2]


def test_export_failure_is_shown_with_the_file(annotated, tmp_path):
    window, _ = annotated
    blocker = tmp_path / "file_not_folder"
    blocker.write_text("x")
    dlg = window.export_dialog("all")
    dlg.set_format("csv")
    dlg.target.setText(str(blocker / "sub"))
    dlg.accept()
    assert "file_not_folder" in window.property("lastError")


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
