import json
import os

import numpy as np
import pytest

from sasnet_core.annotations.annotation import (
    SOURCE_MODEL,
    SOURCE_PERSON,
    SUFFIX,
    Annotation,
    annotation_path_for,
    load_annotation,
    points_in_polygon,
    save_annotation,
)
from sasnet_core.annotations.store import (
    Project,
    find_annotation_file,
    read_annotation,
    write_annotation,
)
from sasnet_core.util.errors import AnnotationFormatError


def _ann(tmp_path, n=3):
    rng = np.random.default_rng(0)
    return Annotation(
        image_path=str(tmp_path / "imgs" / "IMG_1.jpg"),
        image_size=(640, 480),
        points=rng.uniform(0, 400, (n, 2)),
        sources=np.arange(n) % 2,
        rois=[np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 100.0], [0.0, 100.0]])],
        reviewed=True,
        extra={"future_key": {"nested": [1, 2]}, "note": "keep me"},
    )


def test_round_trip_is_exact_and_relative(tmp_path):
    ann = _ann(tmp_path, 50)
    path = annotation_path_for(ann.image_path)
    assert path.name == "IMG_1.jpg.sasnet.json" and path.parent == tmp_path / "imgs"
    save_annotation(ann, path)
    data = json.loads(path.read_text())
    assert data["format"] == "sasnet-annotation" and data["version"] == 1
    assert data["image"] == "IMG_1.jpg"  # relative to the annotation file
    back = load_annotation(path)
    assert back == ann  # floats exact, sources, rois, reviewed, unknown keys
    assert back.extra["future_key"] == {"nested": [1, 2]}


def test_project_folder_path_is_relative_and_moves_with_folder(tmp_path):
    ann = _ann(tmp_path)
    project = Project(tmp_path / "proj", tmp_path)
    path = write_annotation(ann, project=project)
    assert path == tmp_path / "proj" / "annotations" / "imgs" / "IMG_1.jpg.sasnet.json"
    assert json.loads(path.read_text())["image"] == "../../../imgs/IMG_1.jpg"
    os.rename(tmp_path, tmp_path.parent / (tmp_path.name + "_moved"))
    moved = tmp_path.parent / (tmp_path.name + "_moved")
    back = read_annotation(moved / "imgs" / "IMG_1.jpg", Project(moved / "proj", moved))
    assert back.image_path == str(moved / "imgs" / "IMG_1.jpg") and back.count == ann.count


def test_an_image_without_annotation_reads_as_none(tmp_path):
    assert read_annotation(tmp_path / "nothing.jpg") is None
    assert find_annotation_file(tmp_path / "nothing.jpg") is None


def test_atomic_save_leaves_no_temp_and_keeps_old_file_on_failure(tmp_path, monkeypatch):
    ann = _ann(tmp_path)
    path = tmp_path / "a.sasnet.json"
    save_annotation(ann, path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    changed = ann.copy()
    changed.points[0] = (1.0, 2.0)
    with pytest.raises(OSError):
        save_annotation(changed, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.sasnet.json"]


def test_save_and_reload_5000_points(tmp_path):
    # Speed (well under 50 ms) is measured in benchmarks/bench_gui.py, not asserted here.
    ann = _ann(tmp_path, 5000)
    path = tmp_path / "big.sasnet.json"
    save_annotation(ann, path)
    save_annotation(ann, path)
    back = load_annotation(path)
    assert back.count == 5000
    np.testing.assert_array_equal(back.points, ann.points)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(format="labelme"), "format"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.pop("image"), "image"),
        (lambda d: d.update(points=[[1, 2, 3]]), "points[0]"),
        (lambda d: d.update(points=[[1, "a"]]), "points[0]"),
        (lambda d: d.update(sources=[0]), "sources"),
        (lambda d: d.update(sources=[0, 7, 0]), "sources"),
        (lambda d: d.update(image_size=[0, 5]), "image_size[0] (width)"),
        (lambda d: d.update(rois=[[[0, 0], [1, 1]]]), "rois[0]"),
        (lambda d: d.update(reviewed="yes"), "reviewed"),
    ],
)
def test_bad_fields_are_named(tmp_path, mutate, field):
    path = tmp_path / "a.sasnet.json"
    save_annotation(_ann(tmp_path), path)
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(AnnotationFormatError) as err:
        load_annotation(path)
    assert f"'{field}'" in str(err.value) and str(path) in str(err.value)


def test_nan_point_and_broken_json_are_reported(tmp_path):
    path = tmp_path / "a.sasnet.json"
    path.write_text('{"format": "sasnet-annotation", "version": 1, "image": "x.jpg", '
                    '"points": [[1, 2], [NaN, 3]]}')
    with pytest.raises(AnnotationFormatError, match=r"'points\[1\]'"):
        load_annotation(path)
    path.write_text('{"format": ')
    with pytest.raises(AnnotationFormatError, match="not valid JSON"):
        load_annotation(path)
    path.write_text("")
    with pytest.raises(AnnotationFormatError, match="empty"):
        load_annotation(path)


def test_roi_counting_and_mask_agree():
    square = np.array([[10.0, 10.0], [30.0, 10.0], [30.0, 20.0], [10.0, 20.0]])
    pts = np.array([[15.0, 15.0], [5.0, 5.0], [29.9, 19.9], [31.0, 15.0]])
    ann = Annotation("x.jpg", (40, 30), pts, rois=[square])
    assert ann.count == 4 and ann.count_in_roi() == 2
    mask = ann.roi_mask((30, 40))
    assert mask.sum() == 20 * 10 and mask[10:20, 10:30].all()
    # without ROI everything counts
    assert Annotation("x.jpg", points=pts).count_in_roi() == 4
    assert Annotation("x.jpg").roi_mask((3, 4)).all()


def test_mask_matches_point_test_on_concave_polygon():
    poly = np.array([[5, 5], [60, 8], [30, 25], [58, 45], [4, 40], [20, 22]], float)
    ann = Annotation("x.jpg", rois=[poly])
    mask = ann.roi_mask((50, 64))
    ys, xs = np.mgrid[0:50, 0:64]
    centres = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], 1)
    assert np.array_equal(mask.ravel(), points_in_polygon(centres, poly))
    assert 0 < mask.sum() < 50 * 64


def test_copy_is_deep_and_sources_default_to_person():
    ann = Annotation("x.jpg", points=[[1, 2], [3, 4]])
    assert ann.sources.tolist() == [SOURCE_PERSON, SOURCE_PERSON]
    c = ann.copy()
    c.points[0, 0] = 99
    c.sources[1] = SOURCE_MODEL
    assert ann.points[0, 0] == 1 and ann.sources[1] == SOURCE_PERSON
    with pytest.raises(ValueError):
        Annotation("x.jpg", points=[[1, 2]], sources=[0, 1])


def test_save_refuses_an_roi_that_load_would_refuse(tmp_path):
    path = tmp_path / "a.sasnet.json"
    with pytest.raises(AnnotationFormatError, match=r"rois\[0\].*3 vertices"):
        save_annotation(Annotation(str(tmp_path / "a.jpg"), rois=[[[0, 0], [5, 5]]]), path)
    assert not path.exists()


def test_save_refuses_an_unknown_key_that_json_cannot_hold(tmp_path):
    path = tmp_path / "a.sasnet.json"
    with pytest.raises(AnnotationFormatError, match=r"refusing to save: field 'score' holds nan"):
        save_annotation(Annotation(str(tmp_path / "a.jpg"), extra={"score": [1.0, float("nan")]}), path)
    deep: list = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(AnnotationFormatError, match=r"field 'notes' nests"):
        save_annotation(Annotation(str(tmp_path / "a.jpg"), extra={"notes": deep}), path)
    assert not path.exists()


def test_reviewed_cells_round_trip_and_files_without_them_stay_version_1(tmp_path):
    import json

    from sasnet_core.annotations.annotation import (
        Annotation,
        load_annotation,
        save_annotation,
    )

    path = tmp_path / "a.jpg.sasnet.json"
    ann = Annotation(str(tmp_path / "a.jpg"), (300, 200), [[1, 2]], reviewed_cells={(1, 2), (0, 0)},
                     review_cell_px=64)
    save_annotation(ann, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == 2 and data["reviewed_cells"] == {"cell": 64, "cells": [[0, 0], [1, 2]]}
    back = load_annotation(path)
    assert back == ann and back.review_cell_px == 64 and back.copy().reviewed_cells == {(0, 0), (1, 2)}
    back.reviewed_cells.clear()
    save_annotation(back, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == 1 and "reviewed_cells" not in data


def test_duplicate_points_keep_one_per_head_and_a_persons_over_a_models():
    from sasnet_core.annotations.annotation import (
        DUPLICATE_PX,
        SOURCE_MODEL,
        SOURCE_PERSON,
        duplicate_points,
    )

    pts = [[10, 10], [10.8, 10.6], [11.3, 10.2], [40, 40], [40, 41.4], [80, 80], [80, 80 + DUPLICATE_PX + 0.01]]
    src = [SOURCE_PERSON, SOURCE_PERSON, SOURCE_PERSON, SOURCE_MODEL, SOURCE_PERSON, SOURCE_PERSON, SOURCE_PERSON]
    ann = Annotation("a.jpg", None, pts, sources=src)
    assert ann.duplicate_points().tolist() == [1, 2, 3]  # a cluster of three keeps its first; the model's goes
    assert duplicate_points(pts).tolist() == [1, 2, 4]  # without sources: the later one of each pair
    assert duplicate_points([[0, 0]]).tolist() == [] and duplicate_points(np.zeros((0, 2))).tolist() == []


def test_ucf_cc_50_ground_truth_has_few_points_this_close():
    """The threshold marks double clicks, not dense crowds: in the published UCF_CC_50 points (63,974
    heads, down to a few pixels apart) only a handful of pairs are this close."""
    import scipy.io
    from _data_paths import UCF_CC_50, need

    from sasnet_core.annotations.annotation import duplicate_points

    files = sorted(need(UCF_CC_50).glob("*_ann.mat"))
    found = sum(len(duplicate_points(scipy.io.loadmat(f)["annPoints"].astype(float))) for f in files)
    assert len(files) == 50 and 0 < found <= 10


def test_same_marks_ignores_where_the_image_is_but_not_what_a_person_marked():
    a = Annotation("a.jpg", (64, 48), [[1, 2]], rois=[[[0, 0], [5, 0], [5, 5]]], reviewed_cells={(0, 0)})
    b = a.copy()
    b.image_path, b.image_size, b.extra = "/elsewhere/a.jpg", (128, 96), {"future": 1}
    assert a.same_marks(b) and a != b
    for change in (lambda c: setattr(c, "reviewed", True), lambda c: c.reviewed_cells.add((0, 1)),
                   lambda c: c.rois.pop(), lambda c: setattr(c, "sources", np.array([1], np.uint8)),
                   lambda c: setattr(c, "points", np.array([[1.0, 2.5]]))):
        c = a.copy()
        change(c)
        assert not a.same_marks(c)


# -- what fine-tuning learns from (Annotation.teaches) --------------------------------------------
_TEACHES = {
    "reviewed": (dict(points=[[10, 10], [40, 20]], reviewed=True), True),
    "empty-reviewed": (dict(points=[], reviewed=True), True),  # teaches "nobody here"
    "partly-reviewed": (dict(points=[[10, 10]], reviewed_cells={(0, 0)}), True),
    "partly-reviewed-empty-cells": (dict(points=[], reviewed_cells={(0, 0)}), True),
    "unreviewed-prediction": (dict(points=[[10, 10]], sources=[SOURCE_MODEL]), False),
    "unreviewed-by-hand": (dict(points=[[10, 10]]), False),
    "unreviewed-empty": (dict(points=[]), False),
}


@pytest.mark.parametrize("case", list(_TEACHES))
def test_teaches_is_what_a_person_confirmed(case):
    fields, expected = _TEACHES[case]
    assert Annotation("a.jpg", (64, 48), **fields).teaches is expected


def test_every_reader_of_the_training_set_takes_what_teaches(tmp_path):
    """The fine-tuning panel's set, the trainer's samples and the store's list agree, partly
    reviewed images included."""
    import cv2

    from sasnet_core.annotations.store import reviewed_annotations
    from sasnet_core.training.data import samples_from_annotations
    from sasnet_core.training.staging import read_reviewed_set

    for case, (fields, _) in _TEACHES.items():
        image = tmp_path / f"{case}.png"
        cv2.imwrite(str(image), np.full((48, 64, 3), 128, np.uint8))
        save_annotation(Annotation(str(image), (64, 48), **fields), image.with_name(image.name + SUFFIX))
    teaching = sorted(f"{case}.png" for case, (_, expected) in _TEACHES.items() if expected)
    assert sorted(p.name for p, _ in read_reviewed_set([tmp_path]).items) == teaching
    assert sorted(p.name for p, _ in reviewed_annotations([tmp_path])) == teaching
    assert sorted(os.path.basename(s.image_path) for s in samples_from_annotations(tmp_path)) == teaching
