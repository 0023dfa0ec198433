"""The annotation store: one file per image, keyed by its full name, beside it or in a project."""
from __future__ import annotations

import json
import os

import pytest

from sasnet_core.annotations.annotation import (
    SOURCE_PERSON,
    Annotation,
    save_annotation,
)
from sasnet_core.annotations.store import (
    Project,
    annotated_images,
    annotation_file_for,
    fallback_project_dir,
    find_annotation_file,
    has_annotations,
    read_annotation,
    reviewed_annotations,
    survey,
    write_annotation,
)
from sasnet_core.util.errors import AnnotationFormatError


def _images(folder, *names):
    out = []
    for name in names:
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"stand-in image: the store never decodes it")
        out.append(p)
    return out


def test_same_stem_images_in_a_read_only_folder_keep_separate_annotations(tmp_path, read_only):
    folder = tmp_path / "shared"
    jpg, png = _images(folder, "a.jpg", "a.png")
    read_only(folder)
    f1 = write_annotation(Annotation(str(jpg), points=[[1, 1]]))
    f2 = write_annotation(Annotation(str(png), points=[[2, 2], [3, 3]]))
    assert f1 != f2 and {f1.name, f2.name} == {"a.jpg.sasnet.json", "a.png.sasnet.json"}
    assert f1.parent == fallback_project_dir(folder) / "annotations"
    assert read_annotation(jpg).points.tolist() == [[1, 1]]
    assert read_annotation(png).points.tolist() == [[2, 2], [3, 3]]
    assert sorted(p.name for p in folder.iterdir()) == ["a.jpg", "a.png"]  # nothing written there
    assert [p.name for p, _ in annotated_images([folder])] == ["a.jpg", "a.png"]
    assert has_annotations(folder)


def test_a_project_keys_by_the_full_relative_name(tmp_path):
    root = tmp_path / "imgs"
    images = _images(root, "a.jpg", "a.png", "x/img.jpg", "y/img.jpg")
    project = Project(tmp_path / "proj", root)
    files = [write_annotation(Annotation(str(p), points=[[i, i]] * (i + 1)), project=project)
             for i, p in enumerate(images)]
    assert len(set(files)) == 4
    assert files[2] == tmp_path / "proj" / "annotations" / "x" / "img.jpg.sasnet.json"
    for i, p in enumerate(images):
        assert read_annotation(p, project).count == i + 1
        assert read_annotation(p) is None  # not beside the image
    # A data set read with that project sees every image with its own annotation.
    counts = [(p.relative_to(root).as_posix(), a.count) for p, a in annotated_images([root], project)]
    assert counts == [("a.jpg", 1), ("a.png", 2), ("x/img.jpg", 3), ("y/img.jpg", 4)]


def test_new_annotations_go_beside_a_writable_image(tmp_path):
    (image,) = _images(tmp_path / "f", "a.jpg")
    assert annotation_file_for(image) == tmp_path / "f" / "a.jpg.sasnet.json"
    saved = write_annotation(Annotation(str(image), points=[[5, 5]]))
    assert find_annotation_file(image) == saved == tmp_path / "f" / "a.jpg.sasnet.json"
    assert read_annotation(image).image_path == str(image)


def test_edits_to_a_read_only_data_set_go_to_the_project_and_win_from_then_on(tmp_path, read_only):
    (image,) = _images(tmp_path / "dataset", "a.jpg")
    shipped = tmp_path / "dataset" / "a.jpg.sasnet.json"
    save_annotation(Annotation(str(image), points=[[1, 1]], extra={"split": "test"}), shipped)
    read_only(tmp_path / "dataset")
    ann = read_annotation(image)
    assert ann.count == 1
    saved = write_annotation(Annotation(ann.image_path, points=[[1, 1], [2, 2]], extra=ann.extra))
    assert saved.parent == fallback_project_dir(tmp_path / "dataset") / "annotations"
    assert read_annotation(image).count == 2 and read_annotation(image).extra == {"split": "test"}
    assert find_annotation_file(image) == saved == annotation_file_for(image)
    assert shipped.read_text().count("[1.0,1.0]") == 1  # the shipped file is untouched


def test_an_old_stem_keyed_project_file_is_read_for_its_own_image_only(tmp_path, read_only):
    folder = tmp_path / "shared"
    jpg, png = _images(folder, "a.jpg", "a.png")
    read_only(folder)
    old = fallback_project_dir(folder) / "annotations" / "a.sasnet.json"
    old.parent.mkdir(parents=True)
    old_text = json.dumps({"format": "sasnet-annotation", "version": 1,
                           "image": os.path.relpath(png, old.parent), "points": [[7.5, 8.5]],
                           "written_by": {"tool": "an older version"}})
    old.write_text(old_text)
    assert read_annotation(jpg) is None  # the shared stem file names a.png, not a.jpg
    ann = read_annotation(png)
    assert ann.points.tolist() == [[7.5, 8.5]] and ann.sources.tolist() == [SOURCE_PERSON]
    assert not ann.reviewed and ann.rois == [] and ann.image_size is None
    saved = write_annotation(Annotation(ann.image_path, points=[[7.5, 8.5], [9, 9]], extra=ann.extra))
    assert saved.name == "a.png.sasnet.json" and old.read_text() == old_text  # the old file is kept
    back = read_annotation(png)
    assert back.count == 2 and back.extra == {"written_by": {"tool": "an older version"}}
    write_annotation(Annotation(str(jpg), points=[[1, 1]]))
    assert read_annotation(png).count == 2 and read_annotation(jpg).count == 1


def test_listing_is_natural_order_and_reviewed_is_read_when_asked(tmp_path):
    images = _images(tmp_path, "img10.jpg", "img2.jpg", "sub/img1.jpg", "plain.jpg", ".hidden.jpg")
    for p, reviewed in zip(images, [True, False, True, None, True]):
        if reviewed is not None:
            save_annotation(Annotation(str(p), points=[[1, 2]], reviewed=reviewed),
                            p.with_name(p.name + ".sasnet.json"))
    names = [p.relative_to(tmp_path).as_posix() for p, _ in annotated_images([tmp_path])]
    assert names == ["img2.jpg", "img10.jpg", "sub/img1.jpg"]
    reviewed = [p.name for p, _ in reviewed_annotations([tmp_path])]
    assert reviewed == ["img10.jpg", "img1.jpg"]
    # Marked reviewed a moment ago (another window, the editor): the next call sees it.
    save_annotation(Annotation(str(images[1]), points=[[1, 2]], reviewed=True),
                    tmp_path / "img2.jpg.sasnet.json")
    assert [p.name for p, _ in reviewed_annotations([tmp_path])] == ["img2.jpg", "img10.jpg", "img1.jpg"]
    entries = survey([images[3], tmp_path / "gone.jpg"])
    assert not entries[0].annotated and entries[0].error is None
    assert "gone.jpg" in str(entries[1].error)


def test_annotation_files_whose_images_live_elsewhere_are_listed(tmp_path):
    (image,) = _images(tmp_path / "photos", "crowd.jpg")
    staging = tmp_path / "staging"
    save_annotation(Annotation(str(image), points=[[1, 1]] * 3, reviewed=True),
                    staging / "0000_crowd.sasnet.json")
    save_annotation(Annotation(str(tmp_path / "photos" / "deleted.jpg"), points=[[1, 1]]),
                    staging / "0001_deleted.sasnet.json")
    report: list[str] = []
    pairs = annotated_images([staging], report=report)
    assert [(p, a.count) for p, a in pairs] == [(image, 3)]
    assert len(report) == 1 and "0001_deleted.sasnet.json" in report[0] and "'image'" in report[0]


def test_a_damaged_annotation_is_an_error_naming_it_or_a_reported_skip(tmp_path):
    good, bad = _images(tmp_path, "good.jpg", "bad.jpg")
    save_annotation(Annotation(str(good), points=[[1, 1]]), tmp_path / "good.jpg.sasnet.json")
    (tmp_path / "bad.jpg.sasnet.json").write_text('{"format": "sasnet-annotation", "version": 1, '
                                                 '"image": "bad.jpg", "points": [["1", "2"]]}')
    with pytest.raises(AnnotationFormatError, match=r"bad\.jpg\.sasnet\.json.*'points\[0\]'"):
        annotated_images([tmp_path])
    with pytest.raises(AnnotationFormatError, match=r"bad\.jpg\.sasnet\.json"):
        read_annotation(bad)
    report: list[str] = []
    assert [p.name for p, _ in annotated_images([tmp_path], report=report)] == ["good.jpg"]
    assert len(report) == 1 and "bad.jpg.sasnet.json" in report[0]
