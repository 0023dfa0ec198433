"""The annotation document: one undo step per gesture, autosave, reload after a crash."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _data_paths import SHANGHAITECH_A, need

from sasnet_core.annotations.annotation import (
    SOURCE_MODEL,
    SOURCE_PERSON,
    Annotation,
    load_annotation,
    save_annotation,
)
from sasnet_core.annotations.store import annotation_file_for, read_annotation
from sasnet_gui.editing.document import AnnotationDocument


@pytest.fixture
def doc(qtbot, tmp_path, gui):
    (image,) = gui.write_images(tmp_path, n=1)
    d = AnnotationDocument(autosave_ms=50)
    d.open(image, (256, 192))
    yield d
    d.flush()


def test_each_gesture_is_one_undo_step(doc):
    doc.add_point(10, 20)
    doc.add_point(30, 40)
    doc.add_point(50, 60)
    assert doc.count == 3 and doc.undo_stack.count() == 3
    doc.begin_move([1])
    for k in range(1, 20):  # a drag is many previews ...
        doc.preview_move(k, -k)
    doc.end_move()  # ... and one command
    assert doc.undo_stack.count() == 4
    np.testing.assert_allclose(doc.points[1], [49, 21])
    doc.delete_points([0, 2])
    assert doc.count == 1 and doc.undo_stack.count() == 5
    doc.undo_stack.undo()  # the delete
    np.testing.assert_allclose(doc.points, [[10, 20], [49, 21], [50, 60]])
    doc.undo_stack.undo()  # the move
    np.testing.assert_allclose(doc.points[1], [30, 40])
    doc.undo_stack.redo()
    np.testing.assert_allclose(doc.points[1], [49, 21])
    for _ in range(3):
        doc.undo_stack.undo()
    assert doc.count == 1
    doc.undo_stack.undo()
    assert doc.count == 0


def test_move_makes_a_model_point_the_persons_and_undo_restores(doc):
    doc.start_from_model([[5, 5], [6, 6]])
    assert (doc.sources == SOURCE_MODEL).all() and doc.undo_stack.count() == 1
    doc.begin_move([0])
    doc.preview_move(3, 3)
    doc.end_move()
    assert doc.sources.tolist() == [SOURCE_PERSON, SOURCE_MODEL]
    doc.undo_stack.undo()
    assert doc.sources.tolist() == [SOURCE_MODEL, SOURCE_MODEL]
    np.testing.assert_allclose(doc.points[0], [5, 5])


def test_a_click_without_movement_pushes_nothing(doc):
    doc.add_point(1, 1)
    doc.begin_move([0])
    doc.end_move()
    assert doc.undo_stack.count() == 1


def test_rois_and_reviewed_are_undoable(doc):
    doc.add_point(10, 10)
    doc.add_point(200, 150)
    doc.add_roi([[0, 0], [100, 0], [100, 100], [0, 100]])
    assert doc.count_in_roi() == 1
    doc.set_reviewed(True)
    assert doc.reviewed
    doc.undo_stack.undo()
    assert not doc.reviewed
    doc.undo_stack.undo()
    assert doc.rois == [] and doc.count_in_roi() is None


def test_selection_box_and_delete_selection(doc):
    for x in range(10):
        doc.add_point(10 * x + 5, 5)
    doc.select_in_rect(0, 0, 32, 10)
    assert doc.selection.tolist() == [0, 1, 2]
    doc.delete_selection()
    assert doc.count == 7 and len(doc.selection) == 0
    doc.undo_stack.undo()
    assert doc.count == 10


def test_autosave_within_a_second_and_reload_after_a_crash(qtbot, doc, tmp_path):
    doc2 = AnnotationDocument()  # default throttle (400 ms)
    doc2.open(doc.image_path, (256, 192))
    with qtbot.waitSignal(doc2.saved, timeout=1000):
        doc2.add_point(12.5, 7.25)
        doc2.add_point(100, 100)
        doc2.set_reviewed(True)
    # "Crash": the document is dropped without flush or close; a new one reads the file.
    file = annotation_file_for(doc.image_path)
    del doc2
    fresh = AnnotationDocument()
    fresh.open(file.with_name(file.name.replace(".sasnet.json", "")))
    np.testing.assert_array_equal(fresh.points, [[12.5, 7.25], [100, 100]])
    assert fresh.reviewed


def test_killing_the_process_keeps_the_last_saved_state(tmp_path, gui):
    """A real SIGKILL right after the autosave: the file is complete and valid JSON."""
    (image,) = gui.write_images(tmp_path, n=1)
    script = textwrap.dedent(f"""
        import os, signal, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtCore import QCoreApplication, QTimer
        app = QCoreApplication([])
        from sasnet_gui.editing.document import AnnotationDocument
        doc = AnnotationDocument()
        doc.open({str(image)!r}, (256, 192))
        for i in range(5000):
            doc.add_point(i % 256 + 0.5, i % 192 + 0.5)
        doc.saved.connect(lambda _: (doc.add_point(1, 1), os.kill(os.getpid(), signal.SIGKILL)))
        app.exec()
    """)
    env = dict(os.environ, SASNET_STUDIO_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-c", script], env=env, timeout=120, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    ann = load_annotation(annotation_file_for(image))
    assert ann.count == 5000  # the unsaved 5,001st point is the only loss
    assert not list(tmp_path.glob(".*.tmp"))


def test_unreadable_annotation_is_kept_aside_and_reported(qtbot, tmp_path, gui):
    (image,) = gui.write_images(tmp_path, n=1)
    file = annotation_file_for(image)
    file.write_text("{ not json")
    d = AnnotationDocument()
    with qtbot.waitSignal(d.loadFailed) as blocker:
        d.open(image)
    assert str(file) in str(blocker.args[0])
    (kept,) = file.parent.glob(file.name + ".unreadable-*")
    assert d.kept_aside == kept and kept.read_text() == "{ not json"
    assert d.count == 0

    # opened again while still damaged: no second copy of the same bytes
    d.open(image)
    assert list(file.parent.glob(file.name + ".unreadable-*")) == [kept]
    # damaged again in another way: the earlier copy, maybe the only one of someone's work, stays
    file.write_text('{"points": [[1, 2], ')
    d.open(image)
    copies = sorted(file.parent.glob(file.name + ".unreadable-*"))
    assert len(copies) == 2 and kept.read_text() == "{ not json"
    assert d.kept_aside.read_text() == '{"points": [[1, 2], '



def test_an_unreadable_annotation_that_cannot_be_copied_is_not_written_over(qtbot, tmp_path, gui, monkeypatch):
    import sasnet_gui.editing.document as document

    (image,) = gui.write_images(tmp_path, n=1)
    file = annotation_file_for(image)
    file.write_text("{ the only trace of 100 points")

    def no_room(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(document, "keep_aside", no_room)
    d = AnnotationDocument()
    failures = []
    d.saveFailed.connect(failures.append)
    with qtbot.waitSignal(d.loadFailed):
        d.open(image)
    d.add_point(3, 4)
    assert d.save() is False
    d.add_point(5, 6)
    assert d.save() is False  # said once, refused every time
    assert file.read_text() == "{ the only trace of 100 points"
    assert len(failures) == 1 and "no copy of it could be kept" in str(failures[0])


def test_read_only_image_folder_saves_in_the_project_folder(qtbot, tmp_path, gui, read_only):
    folder = tmp_path / "ro"
    (image,) = gui.write_images(folder, n=1)
    read_only(folder)
    d = AnnotationDocument()
    d.open(image)
    d.add_point(3, 4)
    assert d.save()
    assert not d.file.is_relative_to(folder)
    assert json.loads(d.file.read_text())["points"] == [[3, 4]]


def test_same_stem_images_in_a_read_only_folder_keep_their_own_points(
        qtbot, main_window, fake_controller, tmp_path, gui, read_only):
    from sasnet_core.io.imageio import write_image

    folder = tmp_path / "shared"
    folder.mkdir()
    jpg, png = folder / "a.jpg", folder / "a.png"
    write_image(jpg, gui.image(seed=1))
    write_image(png, gui.image(seed=2))
    read_only(folder)
    w = main_window
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([folder])
    assert w.session.current == str(jpg)
    gui.click(qtbot, w.canvas, 20, 30)
    qtbot.waitUntil(lambda: w.document.count == 1, timeout=5_000)
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.act_next.trigger()  # PgDn to a.png
    assert w.session.current == str(png) and w.document.count == 0
    gui.click(qtbot, w.canvas, 50, 60)
    gui.click(qtbot, w.canvas, 90, 40)
    qtbot.waitUntil(lambda: w.document.count == 2, timeout=5_000)
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.act_prev.trigger()  # back to a.jpg: its own single point, not a.png's two
    assert w.session.current == str(jpg) and w.document.count == 1
    w.document.flush()
    assert sorted(p.name for p in folder.iterdir()) == ["a.jpg", "a.png"]
    assert read_annotation(jpg).count == 1 and read_annotation(png).count == 2
    assert annotation_file_for(jpg) != annotation_file_for(png)
    # Opened again in a new window, the file list shows each image's own count.
    from sasnet_gui.main_window import MainWindow

    again = MainWindow(controller=fake_controller)
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.session.imageShown, timeout=10_000):
        again.open_paths([folder])
    qtbot.waitUntil(lambda: [again.files.entry(str(p)).annotated_count for p in (jpg, png)] == [1, 2],
                    timeout=10_000)


def test_existing_annotation_is_loaded_with_unknown_keys_kept(qtbot, tmp_path, gui):
    (image,) = gui.write_images(tmp_path, n=1)
    file = annotation_file_for(image)
    save_annotation(Annotation(str(image), (256, 192), [[1, 2]], extra={"future": {"x": 1}}), file)
    d = AnnotationDocument()
    d.open(image)
    d.add_point(5, 6)
    d.flush()
    data = json.loads(file.read_text())
    assert data["future"] == {"x": 1} and data["points"] == [[1, 2], [5, 6]]


def test_five_thousand_points_edit_and_undo(doc):
    rng = np.random.default_rng(0)
    doc.replace_points(rng.uniform(0, 190, (5000, 2)))
    doc.add_point(1, 1)
    doc.delete_points([17])
    doc.begin_move([42])
    doc.preview_move(2, 2)
    doc.end_move()
    assert doc.count == 5000
    for _ in range(4):
        doc.undo_stack.undo()
    assert doc.count == 0


def _import_by_menu(qtbot, window, path, monkeypatch):
    """File ▸ Import Annotation…, picking ``path`` in the file dialog."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    window.act_import.trigger()


def _click(qtbot, box, label: str) -> None:
    from PySide6.QtCore import Qt

    (button,) = [b for b in box.buttons() if b.text().replace("&", "").startswith(label)]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_import_shanghaitech_ground_truth_of_its_own_image(qtbot, main_window, tmp_path, monkeypatch):
    import shutil

    root = need(SHANGHAITECH_A) / "test_data"
    image = tmp_path / "IMG_4.jpg"
    shutil.copy(root / "images" / "IMG_4.jpg", image)
    with qtbot.waitSignal(main_window.session.imageShown):
        main_window.open_paths([image])
    _import_by_menu(qtbot, main_window, root / "ground-truth" / "GT_IMG_4.mat", monkeypatch)
    assert getattr(main_window.transfer, "import_box", None) is None  # it fits: nothing to ask
    assert main_window.document.count == 413
    main_window.act_undo.trigger()
    assert main_window.document.count == 0


def test_importing_another_images_ground_truth_asks_first(qtbot, main_window, tmp_path, gui, monkeypatch):
    gt = need(SHANGHAITECH_A) / "test_data" / "ground-truth" / "GT_IMG_4.mat"
    (image,) = gui.write_images(tmp_path, n=1)  # 256 x 192: most of IMG_4's 1024 x 768 heads are off it
    with qtbot.waitSignal(main_window.session.imageShown):
        main_window.open_paths([image])
    doc = main_window.document
    _import_by_menu(qtbot, main_window, gt, monkeypatch)
    box = main_window.transfer.import_box
    text = box.text() + box.informativeText()
    assert "annotation of IMG_4.jpg, not of img_1.png" in text and "points lie outside the image" in text
    _click(qtbot, box, "Cancel")
    assert doc.count == 0 and not doc.undo_stack.canUndo()

    _import_by_menu(qtbot, main_window, gt, monkeypatch)
    _click(qtbot, main_window.transfer.import_box, "Import the")
    inside = doc.points
    assert 0 < len(inside) < 413
    assert (inside[:, 0] < 257).all() and (inside[:, 1] < 193).all()
    main_window.act_undo.trigger()
    assert doc.count == 0

    _import_by_menu(qtbot, main_window, gt, monkeypatch)
    _click(qtbot, main_window.transfer.import_box, "Import All")
    assert doc.count == 413  # asked for: taken as it is


def test_import_brings_the_regions_of_interest_too(qtbot, main_window, tmp_path, gui, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    (image,) = gui.write_images(tmp_path, n=1)
    with qtbot.waitSignal(main_window.session.imageShown):
        main_window.open_paths([image])
    doc = main_window.document
    doc.add_roi([[0, 0], [50, 0], [50, 50]])  # the person's region, replaced by the file's
    labelme = tmp_path / "img_1.json"
    labelme.write_text(json.dumps({
        "imagePath": "img_1.png", "imageWidth": 256, "imageHeight": 192,
        "shapes": [{"label": "head", "shape_type": "point", "points": [[10, 12]]},
                   {"label": "head", "shape_type": "point", "points": [[100, 80]]},
                   {"label": "roi", "shape_type": "polygon", "points": [[0, 0], [120, 0], [120, 100], [0, 100]]}]}))
    gui.click(qtbot, main_window.canvas, 30, 40)  # a point of the person's own: asked before it goes
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    _import_by_menu(qtbot, main_window, labelme, monkeypatch)
    assert asked and "with the 2 of img_1.json" in asked[0] and doc.count == 1  # "No": kept
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    _import_by_menu(qtbot, main_window, labelme, monkeypatch)
    assert doc.count == 2 and len(doc.rois) == 1 and doc.rois[0].max() == 120
    assert doc.count_in_roi() == 2
    main_window.act_undo.trigger()  # one step back: the person's points and region as they were
    assert doc.count == 1 and len(doc.rois) == 1 and doc.rois[0].max() == 50




def test_an_image_changed_since_it_was_annotated_is_said_and_its_points_kept(qtbot, main_window, tmp_path, gui):
    from sasnet_core.io.imageio import write_image

    (image,) = gui.write_images(tmp_path, n=1)  # 256 x 192
    save_annotation(Annotation(str(image), (256, 192), np.array([[200.0, 150.0], [20.0, 10.0]])),
                    annotation_file_for(image))
    write_image(image, np.zeros((80, 100, 3), np.uint8))  # shrunk on disk after annotating
    with qtbot.waitSignal(main_window.session.imageShown):
        main_window.open_paths([image])
    box = main_window.misfit_box
    text = box.text() + box.informativeText()
    assert "made on a 256x192 image; img_1.png is 100x80" in text and "1 of 2 points lie outside" in text
    assert main_window.document.points.tolist() == [[200.0, 150.0], [20.0, 10.0]]  # nothing dropped
    assert "may not fit" in main_window.statusBar().currentMessage()

    # its size is recorded anew with the next save: reopened, the kept points are not pointed out again
    main_window.misfit_box = None
    main_window.document.add_point(5, 5)
    main_window.document.flush()
    with qtbot.waitSignal(main_window.session.imageShown):
        main_window.session.show(str(image))
    assert main_window.misfit_box is None


def test_an_annotation_of_a_newer_version_is_never_written_over(qtbot, main_window, tmp_path, gui):
    from PySide6.QtWidgets import QMessageBox

    (image,) = gui.write_images(tmp_path, n=1)
    file = annotation_file_for(image)
    newer = json.dumps({"format": "sasnet-annotation", "version": 99, "image": image.name, "points": [[1, 2]],
                        "some_future_key": {"kept": True}})
    file.write_text(newer)
    with qtbot.waitSignal(main_window.session.imageShown):
        main_window.open_paths([image])
    boxes = [b for b in main_window.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "newer version" in boxes[-1].text() + boxes[-1].informativeText()
    for b in boxes:
        b.close()
    failures = []
    main_window.document.saveFailed.connect(failures.append)
    gui.click(qtbot, main_window.canvas, 20, 20)
    gui.click(qtbot, main_window.canvas, 40, 20)
    main_window.document.flush()
    main_window.document.flush()
    assert file.read_text() == newer  # left exactly as the newer version wrote it
    assert not list(tmp_path.glob("*.unreadable-*"))  # not damaged: nothing to keep aside
    assert len(failures) == 1 and "edits of this image are not saved" in str(failures[0])


def _show(qtbot, window, key):
    with qtbot.waitSignal(window.session.imageShown, timeout=10_000):
        qtbot.keyClick(window, key)


def test_each_image_keeps_its_undo_history_after_switching(qtbot, main_window, tmp_path, gui):
    from PySide6.QtCore import Qt

    w = main_window
    first, second = (str(p) for p in gui.write_images(tmp_path, n=2))
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([tmp_path])
    gui.click(qtbot, w.canvas, 20, 30)
    gui.click(qtbot, w.canvas, 60, 70)
    _show(qtbot, w, Qt.Key_PageDown)
    assert w.session.current == second and not w.act_undo.isEnabled()  # this image has no history yet
    gui.click(qtbot, w.canvas, 100, 100)
    _show(qtbot, w, Qt.Key_PageUp)
    assert w.session.current == first and w.document.count == 2
    assert w.act_undo.isEnabled() and "Add point" in w.act_undo.text()
    w.act_undo.trigger()  # Edit > Undo: the first image's last click
    np.testing.assert_allclose(w.document.points, [[20, 30]], atol=1)  # a click lands within a screen pixel
    qtbot.keyClick(w, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)  # redo still there too
    assert w.document.count == 2
    w.act_undo.trigger()
    _show(qtbot, w, Qt.Key_PageDown)
    assert w.document.count == 1
    w.act_undo.trigger()  # the second image's own click
    assert w.document.count == 0 and not w.act_undo.isEnabled()
    _show(qtbot, w, Qt.Key_PageUp)
    w.document.flush()
    np.testing.assert_allclose(read_annotation(first).points, [[20, 30]], atol=1)
    assert read_annotation(second) is None  # undone to nothing: no file left behind


def test_a_history_is_dropped_when_the_file_changed_while_another_image_was_shown(qtbot, main_window, tmp_path,
                                                                                  gui):
    from PySide6.QtCore import Qt

    w = main_window
    first, _second = (str(p) for p in gui.write_images(tmp_path, n=2))
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([tmp_path])
    gui.click(qtbot, w.canvas, 20, 30)
    _show(qtbot, w, Qt.Key_PageDown)
    save_annotation(Annotation(first, (256, 192), [[1.0, 1.0], [2.0, 5.0]]), annotation_file_for(first))
    _show(qtbot, w, Qt.Key_PageUp)
    assert w.document.points.tolist() == [[1.0, 1.0], [2.0, 5.0]]
    assert not w.act_undo.isEnabled()  # its commands described other points: nothing to undo wrongly


def test_only_the_most_recent_histories_are_kept_and_a_cleared_list_takes_them_along(qtbot, main_window, tmp_path,
                                                                                      gui, monkeypatch):
    from PySide6.QtCore import Qt

    from sasnet_gui.editing import document as document_module

    monkeypatch.setattr(document_module, "HISTORY_LIMIT", 2)
    w = main_window
    images = [str(p) for p in gui.write_images(tmp_path, n=4)]
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([tmp_path])
    for i, image in enumerate(images):
        assert w.session.current == image
        gui.click(qtbot, w.canvas, 30 + 10 * i, 40)
        if i < len(images) - 1:
            _show(qtbot, w, Qt.Key_PageDown)
    stacks = w.document.undo_group.stacks()
    assert len(stacks) == 1 + 2  # the no-image stack and the last two images opened
    w.act_undo.trigger()  # the open image's history works
    assert w.document.count == 0
    w.act_redo.trigger()
    assert w.document.count == 1

    _show(qtbot, w, Qt.Key_PageUp)  # the third image: still its own history
    assert w.act_undo.isEnabled() and "Add point" in w.act_undo.text()
    _show(qtbot, w, Qt.Key_PageUp)
    _show(qtbot, w, Qt.Key_PageUp)  # the first image: its history went, its saved click stayed
    assert w.session.current == images[0] and w.document.count == 1
    assert not w.act_undo.isEnabled()
    assert len(w.document.undo_group.stacks()) == 1 + 2

    w.files.clear()  # the list emptied: only the open image keeps a history
    assert len(w.document.undo_group.stacks()) == 1 + 1
    gui.click(qtbot, w.canvas, 80, 90)
    w.act_undo.trigger()
    assert w.document.count == 1


def test_undoing_to_nothing_leaves_no_file_and_the_list_no_longer_says_annotated(qtbot, main_window, tmp_path, gui):
    from PySide6.QtCore import Qt

    from sasnet_core.annotations.store import annotated_images
    from sasnet_core.util.vocab import FileStatus

    w = main_window
    image, other = (str(p) for p in gui.write_images(tmp_path, n=2))
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([tmp_path])
    file = annotation_file_for(image)
    with qtbot.waitSignal(w.document.saved, timeout=5_000):
        gui.click(qtbot, w.canvas, 40, 50)
        w.act_reviewed.trigger()
    assert file.exists() and w.files.entry(image).status == FileStatus.ANNOTATED
    w.act_undo.trigger()
    w.act_undo.trigger()
    with qtbot.waitSignal(w.document.reverted, timeout=5_000):
        pass  # the autosave, back at the start
    assert not file.exists() and not list(tmp_path.glob("*.json")) and not list(tmp_path.glob(".*"))
    entry = w.files.entry(image)
    assert entry.annotated_count is None and entry.status != FileStatus.ANNOTATED and not entry.reviewed
    assert w.file_dock.proxy.data(w.file_dock.proxy.index(0, 3)) == ""  # People column empty
    assert annotated_images([tmp_path]) == []  # what export, rank and fine-tuning read
    assert w.transfer.collect_annotations("all") == []

    # Redo after visiting another image writes it again; undo once more removes it again.
    _show(qtbot, w, Qt.Key_PageDown)
    assert w.session.current == other
    _show(qtbot, w, Qt.Key_PageUp)
    w.act_redo.trigger()
    w.document.flush()
    assert read_annotation(image).count == 1
    w.act_undo.trigger()
    w.document.flush()
    assert not file.exists()


def test_an_annotation_that_was_on_disk_is_written_back_not_removed(qtbot, main_window, tmp_path, gui):
    w = main_window
    (image,) = gui.write_images(tmp_path, n=1)
    file = annotation_file_for(image)
    save_annotation(Annotation(str(image), (256, 192)), file)  # a person's empty annotation: 0 people
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([image])
    gui.click(qtbot, w.canvas, 40, 50)
    w.document.flush()
    w.act_undo.trigger()
    w.document.flush()
    assert file.exists() and read_annotation(image).count == 0


def test_a_file_written_by_someone_else_is_not_removed(qtbot, main_window, tmp_path, gui):
    w = main_window
    (image,) = gui.write_images(tmp_path, n=1)
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([image])
    gui.click(qtbot, w.canvas, 40, 50)
    w.document.flush()
    file = annotation_file_for(image)
    theirs = Annotation(str(image), (256, 192), [[7.0, 8.0]])
    save_annotation(theirs, file)  # another program wrote it since our save
    w.act_undo.trigger()  # back at the blank it started from
    w.document.flush()
    # Neither removed nor written over with our blank: it is not the file our edits made.
    np.testing.assert_array_equal(read_annotation(image).points, [[7.0, 8.0]])
    assert not w.document.dirty
    assert "changed on disk" in w.statusBar().currentMessage()
    assert w.files.entry(str(image)).annotated_count == 1  # the list says what the file holds


def test_duplicate_points_are_pointed_out_and_removed_in_one_step(qtbot, main_window, tmp_path, gui):
    from PySide6.QtCore import Qt

    from sasnet_gui.editing.duplicates import DuplicateWarning

    w = main_window
    (image,) = gui.write_images(tmp_path, n=1)
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        w.open_paths([image])
    warning = w.findChild(DuplicateWarning)
    gui.click(qtbot, w.canvas, 40, 50)
    gui.click(qtbot, w.canvas, 120, 90)
    assert not warning.isVisible() and not w.act_remove_duplicates.isEnabled()

    # With the points hidden (P) a click lands on the image: a second point on the same head.
    qtbot.keyClick(w, Qt.Key_P)
    gui.click(qtbot, w.canvas, 40.4, 50.3)
    qtbot.keyClick(w, Qt.Key_P)
    assert w.document.count == 3
    assert warning.isVisible() and "1 point on top of another" in warning.label.text()
    assert "now on top of another one" in w.statusBar().currentMessage()
    # Saved as they are (no edit is held back), and still pointed out after the save.
    qtbot.waitUntil(lambda: not w.document.dirty, timeout=5_000)  # the autosave
    assert read_annotation(image).count == 3 and warning.isVisible()

    # Dragging a point onto another one is pointed out too.
    gui.drag(w.canvas, (120, 90), (40.2, 49.5))
    assert "2 points on top of another" in warning.label.text()
    qtbot.mouseClick(warning.select_button, Qt.LeftButton)
    assert len(w.document.selection) == 2
    qtbot.mouseClick(warning.remove_button, Qt.LeftButton)
    assert w.document.count == 1 and not warning.isVisible()
    assert "duplicate" in w.act_undo.text()
    w.act_undo.trigger()  # one step brings both back
    assert w.document.count == 3 and warning.isVisible()
    w.act_remove_duplicates.trigger()  # the Edit menu does the same
    assert w.document.count == 1
    w.document.flush()
    assert read_annotation(image).count == 1
