"""Opening a crowd data set shows its ground truth: every layout the core reads, opened as a
person does (File > Open Folder, or paths on the command line), lists each image with its
ground-truth count in the People column and opens it with those points, ready to correct.
Corrections go to the annotation store, never into the data set's files, and Export writes the
corrected set in the data set's own format."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _data_paths import SHANGHAITECH_A, SHANGHAITECH_A_COUNTS, STREET_B, UCF_CC_50, need
from _dataset_layouts import KINDS, fingerprint, make_layout
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QFileDialog

from sasnet_core.annotations.formats import read_annotations, read_points
from sasnet_core.annotations.formats.export import DATASET
from sasnet_core.annotations.store import fallback_project_dir, find_annotation_file
from sasnet_core.datasets import open_dataset
from sasnet_gui.export_dialogs import ExportAnnotationsDialog

PEOPLE = 3  # the People column of the file list


def _open_folder(qtbot, window, folder, monkeypatch) -> None:
    """File > Open Folder..., the person picking ``folder``; waits for the list's counts."""
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    with qtbot.waitSignal(window.session.imageShown, timeout=20_000):
        window.act_open_folder.trigger()
    qtbot.waitUntil(lambda: not window.file_dock.scanning(), timeout=60_000)


def _rows(window) -> dict[str, tuple[str, str, bool]]:
    """What the file list shows per image path: (People text, tooltip, shown in italics)."""
    model, out = window.files, {}
    for r in range(model.rowCount()):
        index = model.index(r, PEOPLE)
        font = model.data(index, Qt.FontRole)
        out[model.data(index, Qt.UserRole)] = (model.data(index, Qt.DisplayRole),
                                               model.data(index, Qt.ToolTipRole),
                                               bool(font is not None and font.italic()))
    return out


def _show(qtbot, window, path) -> None:
    if window.session.current != str(path):
        with qtbot.waitSignal(window.session.imageShown, timeout=20_000):
            window.file_dock.select_path(str(path))
            window.session.show(str(path))


def _copy_ucf(tmp_path, names=("4", "39", "16")) -> Path:
    """A few of the real UCF_CC_50 images (96, 164 and 209 heads) with their N_ann.mat files."""
    src, dst = need(UCF_CC_50), tmp_path / "ucf_cc_50"
    dst.mkdir()
    for n in names:
        for f in (f"{n}.jpg", f"{n}_ann.mat"):
            shutil.copyfile(src / f, dst / f)
    return dst


# -- every layout opens with its ground truth -----------------------------------------------------
def test_ucf_cc_50_opens_with_every_ground_truth_count(qtbot, main_window, monkeypatch):
    folder = need(UCF_CC_50)
    before = fingerprint(folder)
    _open_folder(qtbot, main_window, folder, monkeypatch)
    rows = _rows(main_window)
    truth = {s.image_path: len(s.points) for s in open_dataset(folder)}  # what eval counts against
    assert len(rows) == 50
    for path, (people, tip, italic) in rows.items():
        assert people == str(truth[str(folder / Path(path).name)]), path
        assert f"ground truth: {Path(path).stem}_ann.mat" in tip and italic
    assert rows[str(folder / "1.jpg")][0] == "4633"  # the densest image of the set
    assert sum(int(p) for p, _, _ in rows.values()) == 63974  # the published total
    # The image on screen carries its points and says where they come from.
    assert main_window.document.count == 4633
    texts = main_window.counts.texts()
    assert texts["annotated"] == "4633" and texts["source"] == "Points: ground truth: 1_ann.mat"
    # Looking is not editing: no file of ours, nothing changed in the data set.
    _show(qtbot, main_window, folder / "2.jpg")
    main_window.document.flush()
    assert all(find_annotation_file(p) is None for p in rows)
    assert fingerprint(folder) == before


def test_shanghaitech_sample_from_the_command_line_shows_its_published_counts(qtbot, fake_controller):
    from sasnet_gui.app import _parse, create_window

    folder = need(SHANGHAITECH_A)
    window = create_window(_parse([str(folder)]).paths, controller=fake_controller)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.session.current is not None, timeout=20_000)
    qtbot.waitUntil(lambda: len(window.files.entries()) == 5 and not window.file_dock.scanning(), timeout=30_000)
    rows = _rows(window)
    assert {Path(p).stem: people for p, (people, _, _) in rows.items()} == \
        {k: str(v) for k, v in SHANGHAITECH_A_COUNTS.items()}
    tip = rows[str(folder / "test_data" / "images" / "IMG_4.jpg")][1]
    assert "ground truth: ground-truth/GT_IMG_4.mat" in tip
    assert window.counts.texts()["source"].startswith("Points: ground truth: ground-truth/GT_IMG_")
    window.close()


def test_street_set_in_shanghaitech_layout_lists_train_and_test(qtbot, main_window, monkeypatch):
    folder = need(STREET_B)
    _open_folder(qtbot, main_window, folder, monkeypatch)
    rows = _rows(main_window)
    truth = {s.image_path: len(s.points) for s in open_dataset(folder)}
    assert len(rows) == len(truth) == 38
    assert {p: int(people) for p, (people, _, _) in rows.items()} == truth


@pytest.mark.parametrize("kind", KINDS)
def test_generated_layout_opens_with_its_ground_truth(qtbot, main_window, monkeypatch, tmp_path, kind):
    root = tmp_path / kind
    counts = make_layout(kind, root)
    before = fingerprint(root)
    _open_folder(qtbot, main_window, root, monkeypatch)
    rows = _rows(main_window)
    assert {Path(p).name: people for p, (people, _, _) in rows.items()} == {k: str(v) for k, v in counts.items()}
    assert all("ground truth: " in tip and italic for _, tip, italic in rows.values())
    first = main_window.session.current
    assert main_window.document.count == counts[Path(first).name]
    main_window.document.flush()
    assert fingerprint(root) == before  # not a byte written, not a file added


def test_a_single_image_of_a_coco_set_opens_with_its_entry(qtbot, main_window, tmp_path):
    counts = make_layout("coco", tmp_path / "set")
    image = tmp_path / "set" / "frame_2.jpg"
    with qtbot.waitSignal(main_window.session.imageShown, timeout=20_000):
        main_window.open_paths([str(image)])
    qtbot.waitUntil(lambda: not main_window.file_dock.scanning(), timeout=20_000)
    assert _rows(main_window)[str(image)][0] == str(counts["frame_2.jpg"]) == "8"
    assert main_window.counts.texts()["source"] == "Points: ground truth: annotations.json"


# -- corrections go to our store; the data set stays byte for byte --------------------------------
@pytest.mark.parametrize("read_only_set", [False, True], ids=["writable", "read-only"])
def test_correcting_ground_truth_saves_to_the_store_and_leaves_the_data_set_as_it_was(
        qtbot, main_window, monkeypatch, tmp_path, gui, read_only, read_only_set):
    folder = _copy_ucf(tmp_path)
    if read_only_set:
        read_only(folder)
    before = fingerprint(folder)
    _open_folder(qtbot, main_window, folder, monkeypatch)
    image = folder / "4.jpg"
    assert main_window.session.current == str(image)
    assert _rows(main_window)[str(image)][0] == "96"
    gui.click(qtbot, main_window.canvas, 20.5, 30.5)  # a person adds the head the data set missed
    main_window.document.flush()
    kept = find_annotation_file(image)
    assert kept is not None and kept.is_file()
    if read_only_set:  # the person's project folder, never the data set's
        assert fallback_project_dir(folder) in kept.parents
        assert fingerprint(folder) == before
    else:  # beside the image, as for any writable folder; the data set's own files untouched
        assert kept == folder / "4.jpg.sasnet.json"
        assert {k: v for k, v in fingerprint(folder).items() if not k.endswith(".sasnet.json")} == before
    assert read_points(folder / "4_ann.mat", "ucf").count == 96  # the data set still says 96
    people, tip, italic = _rows(main_window)[str(image)]
    assert people == "97" and not italic
    assert "your correction of 4_ann.mat" in tip
    assert main_window.counts.texts()["source"] == "Points: your correction of 4_ann.mat"
    # Another image looked at and left: still no file for it.
    _show(qtbot, main_window, folder / "39.jpg")
    _show(qtbot, main_window, image)
    assert find_annotation_file(folder / "39.jpg") is None
    assert main_window.document.count == 97  # the correction, not the data set, when it opens again
    # The one owner: eval and training count the corrected image with its correction, and
    # --original-ground-truth reads the data set's files alone.
    from sasnet_core.training.data import load_samples

    by_name = {Path(s.image_path).name: len(s.points) for s in open_dataset(folder)}
    assert by_name == {"4.jpg": 97, "39.jpg": 164, "16.jpg": 209}
    trained = {Path(s.image_path).name: len(s.points) for s in load_samples(folder, split=None)}
    assert trained == by_name  # the whole data set, not only the corrected image
    original = {Path(s.image_path).name: len(s.points) for s in open_dataset(folder, corrections=False)}
    assert original["4.jpg"] == 96


# -- Export in the data set's own format ----------------------------------------------------------
def _export_all(qtbot, window, target, fmt=None) -> ExportAnnotationsDialog:
    window.act_export.trigger()
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), ExportAnnotationsDialog))
    dlg = QApplication.activeModalWidget()
    offered = dlg.selected_format()
    dlg.scope.setCurrentIndex(dlg.scope.findData("all"))
    if fmt is not None:
        dlg.set_format(fmt)
    dlg.target.setText(str(target))
    qtbot.mouseClick(dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.Ok), Qt.LeftButton)
    return offered


def test_export_writes_the_corrected_ucf_set_as_ucf_files(qtbot, main_window, monkeypatch, tmp_path, gui,
                                                          read_only):
    folder = _copy_ucf(tmp_path)
    read_only(folder)
    _open_folder(qtbot, main_window, folder, monkeypatch)
    gui.click(qtbot, main_window.canvas, 20.5, 30.5)
    main_window.document.flush()
    out = tmp_path / "corrected"
    offered = _export_all(qtbot, main_window, out)
    assert offered == "ucf"  # the data set's own format comes first
    written = {p.name: read_points(p, "ucf").count for p in out.rglob("*_ann.mat")}
    assert written == {"4_ann.mat": 97, "39_ann.mat": 164, "16_ann.mat": 209}
    assert "Exported 3 image(s)" in main_window.statusBar().currentMessage()


def test_export_of_a_corrected_shanghaitech_set_keeps_its_split(qtbot, main_window, monkeypatch, tmp_path):
    folder = tmp_path / "sha"
    shutil.copytree(need(SHANGHAITECH_A), folder)
    _open_folder(qtbot, main_window, folder, monkeypatch)
    doc = main_window.document
    first = Path(main_window.session.current)
    published = SHANGHAITECH_A_COUNTS[first.stem]
    doc.select_all()
    doc.delete_points(doc.selection[:10])  # ten heads that are not there
    doc.flush()
    out = tmp_path / "sha-corrected"
    offered = _export_all(qtbot, main_window, out)
    assert offered == DATASET
    assert not (out / "train_data").exists()  # its five test images stay test images
    counts = sorted(read_annotations(p, "shanghaitech")[0].count for p in (out / "test_data").rglob("GT_*.mat"))
    expected = dict(SHANGHAITECH_A_COUNTS, **{first.stem: published - 10})
    assert counts == sorted(expected.values())


def test_export_to_another_format_too(qtbot, main_window, monkeypatch, tmp_path):
    root = tmp_path / "nwpu"
    counts = make_layout("nwpu", root)
    _open_folder(qtbot, main_window, root, monkeypatch)
    offered = _export_all(qtbot, main_window, tmp_path / "all.json", fmt="coco")
    assert offered == "nwpu"
    back = {Path(a.image_path).name: a.count for a in read_annotations(tmp_path / "all.json", "coco")}
    assert back == counts


# -- damaged, misfit and missing ground truth -----------------------------------------------------
def test_a_damaged_mat_is_named_and_its_image_still_opens(qtbot, main_window, monkeypatch, tmp_path, gui):
    folder = _copy_ucf(tmp_path)
    damaged = folder / "39_ann.mat"
    damaged.write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 40)
    before = fingerprint(folder)
    _open_folder(qtbot, main_window, folder, monkeypatch)
    people, tip, _ = _rows(main_window)[str(folder / "39.jpg")]
    assert people == "?" and "39_ann.mat" in tip
    assert main_window.files.entry(str(folder / "39.jpg")).status.value == "error"
    assert _rows(main_window)[str(folder / "4.jpg")][0] == "96"  # the others are not held up
    _show(qtbot, main_window, folder / "39.jpg")
    assert main_window.document.count == 0
    qtbot.waitUntil(lambda: "39_ann.mat" in (main_window.property("lastError") or ""))
    gui.click(qtbot, main_window.canvas, 10.5, 10.5)  # the person annotates it anyway
    main_window.document.flush()
    assert find_annotation_file(folder / "39.jpg") == folder / "39.jpg.sasnet.json"
    after = {k: v for k, v in fingerprint(folder).items() if not k.endswith(".sasnet.json")}
    assert after == before  # the damaged file is neither replaced nor moved aside
    assert _rows(main_window)[str(folder / "39.jpg")][0] == "1"


def test_ground_truth_off_the_image_is_pointed_out_and_kept(qtbot, main_window, monkeypatch, tmp_path):
    from sasnet_core.annotations.annotation import Annotation
    from sasnet_core.annotations.formats import write_annotations

    root = tmp_path / "labelme"
    make_layout("labelme", root)
    image = root / "photo_1.jpg"
    # A file made for another, larger image: two of its four points lie off this one.
    write_annotations([Annotation(str(image), (640, 480), [[5, 5], [10, 10], [300, 200], [600, 400]])],
                      root / "photo_1.json", "labelme")
    _open_folder(qtbot, main_window, root, monkeypatch)
    assert main_window.session.current == str(image)
    qtbot.waitUntil(lambda: getattr(main_window, "misfit_box", None) is not None)
    text = main_window.misfit_box.text() + main_window.misfit_box.informativeText()
    assert "its ground truth photo_1.json does not fit it" in text
    assert "640x480" in text and "2 of 4 points lie outside" in text
    assert main_window.document.count == 4  # kept: the person decides
    assert _rows(main_window)[str(image)][0] == "4"


def test_a_shanghaitech_image_without_its_gt_file_opens_unannotated(qtbot, main_window, monkeypatch, tmp_path):
    folder = tmp_path / "sha"
    shutil.copytree(need(SHANGHAITECH_A), folder)
    (folder / "test_data" / "ground-truth" / "GT_IMG_51.mat").unlink()
    _open_folder(qtbot, main_window, folder, monkeypatch)
    rows = _rows(main_window)
    people, tip, _ = rows[str(folder / "test_data" / "images" / "IMG_51.jpg")]
    assert people == "" and "no ground truth: ground-truth/GT_IMG_51.mat is missing" in tip
    assert rows[str(folder / "test_data" / "images" / "IMG_4.jpg")][0] == "413"
    assert main_window.files.entry(str(folder / "test_data" / "images" / "IMG_51.jpg")).status.value != "error"
