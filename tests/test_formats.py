"""Format adapters: round trips, real files, detection, malformed input, the CLI."""
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from _data_paths import SHANGHAITECH_A, SHANGHAITECH_A_COUNTS, STREET_B, UCF_CC_50, need

from sasnet_core.annotations.annotation import SOURCE_MODEL, Annotation, save_annotation
from sasnet_core.annotations.formats import (
    FORMATS,
    detect_format,
    read_annotations,
    read_points,
    write_annotations,
    write_points,
)
from sasnet_core.annotations.formats._common import clean_coordinates
from sasnet_core.util.errors import AnnotationFormatError

# What each format can carry besides points.
KEEPS_SOURCES = {"sasnet", "csv", "coco", "cvat"}
KEEPS_ROIS = {"sasnet", "labelme", "cvat", "via"}
KEEPS_SIZE = {"sasnet", "labelme", "coco", "cvat"}


@pytest.fixture
def ann(tmp_path):
    import cv2

    img = tmp_path / "IMG_7.jpg"
    cv2.imwrite(str(img), np.zeros((80, 100, 3), np.uint8))
    rng = np.random.default_rng(3)
    pts = np.concatenate([rng.uniform(0, [100, 80], (12, 2)), [[0.0, 0.0], [33.0, 12.0]]])
    return Annotation(str(img), (100, 80), pts, sources=np.arange(14) % 2,
                      rois=[np.array([[1.0, 1.0], [60.5, 2.0], [50.0, 70.25]])])


@pytest.mark.parametrize("name", list(FORMATS))
def test_round_trip_every_format(tmp_path, ann, name):
    spec = FORMATS[name]
    path = tmp_path / spec.default_name(ann.image_path)
    write_points(ann, path, name)
    assert detect_format(path) == name
    back = read_points(path)
    # exact up to the float noise every reader removes (12 significant digits)
    np.testing.assert_array_equal(back.points, clean_coordinates(ann.points))
    assert back.image_path == ann.image_path  # found beside the annotation
    if name in KEEPS_SOURCES:
        assert back.sources.tolist() == ann.sources.tolist()
    if name in KEEPS_ROIS:
        assert len(back.rois) == 1 and np.array_equal(back.rois[0], ann.rois[0])
    if name in KEEPS_SIZE:
        assert back.image_size == (100, 80)


@pytest.mark.parametrize("name", [n for n, s in FORMATS.items() if s.multi])
def test_multi_image_formats_keep_every_image(tmp_path, ann, name):
    other = Annotation(str(tmp_path / "IMG_8.jpg"), (50, 40), [[1.5, 2.5]])
    empty = Annotation(str(tmp_path / "IMG_9.jpg"), (50, 40))
    path = tmp_path / FORMATS[name].default_name("")
    write_annotations([ann, other, empty], path, name)
    back = read_annotations(path)
    assert [a.count for a in back] == [14, 1, 0]
    assert [a.image_path for a in back] == [ann.image_path, other.image_path, empty.image_path]


def test_round_trip_keeps_format_specific_fields(tmp_path):
    (tmp_path / "gt").mkdir()
    jhu = tmp_path / "gt" / "0001.txt"
    jhu.write_text("10 20 8 9 1 0\n30.5 40 12 13 2 1\n")
    a = read_points(jhu)
    write_points(a, tmp_path / "copy.txt", "jhu")
    assert (tmp_path / "copy.txt").read_text() == "10 20 8 9 1 0\n30.5 40 12 13 2 1\n"
    (tmp_path / "n.json").write_text(json.dumps(
        {"img_id": "0001.jpg", "human_num": 1, "points": [[3, 4]], "boxes": [[1, 2, 5, 6]]}))
    write_points(read_points(tmp_path / "n.json"), tmp_path / "n2.json", "nwpu")
    assert json.loads((tmp_path / "n2.json").read_text())["boxes"] == [[1, 2, 5, 6]]


def test_shanghaitech_real_files_give_published_counts():
    for name, count in SHANGHAITECH_A_COUNTS.items():
        gt = need(SHANGHAITECH_A / "test_data" / "ground-truth" / f"GT_{name}.mat")
        assert detect_format(gt) == "shanghaitech"
        a = read_points(gt)
        assert a.count == count
        assert a.image_path.endswith(f"images/{name}.jpg")


def test_shanghaitech_written_file_reads_like_public_code(tmp_path):
    import scipy.io

    gt = need(STREET_B / "train_data" / "ground-truth" / "GT_IMG_4.mat")
    a = read_points(gt)
    assert a.count == 53
    out = tmp_path / "GT_IMG_4.mat"
    write_points(a, out, "shanghaitech")
    mat = scipy.io.loadmat(out)
    np.testing.assert_array_equal(mat["image_info"][0, 0][0, 0][0], a.points)
    assert int(mat["image_info"][0, 0][0, 0][1][0, 0]) == 53


def test_ucf_real_files_and_off_image_points_are_reported_not_dropped():
    a = read_points(need(UCF_CC_50 / "1_ann.mat"), report=[])
    assert detect_format(UCF_CC_50 / "1_ann.mat") == "ucf" and a.count == 4633
    report = []
    six = read_points(UCF_CC_50 / "6_ann.mat", report=report)
    assert six.count == 2550  # the published count, one point at x = -358.7 included
    assert len(report) == 1 and "6_ann.mat" in report[0] and "annPoints" in report[0]
    dropped = read_points(UCF_CC_50 / "6_ann.mat", outside="drop", report=[])
    assert dropped.count == 2549
    with pytest.raises(AnnotationFormatError, match="outside the 1024x768 image"):
        read_points(UCF_CC_50 / "6_ann.mat", outside="error")


def test_a_misfit_nobody_collects_is_logged_once_however_often_the_file_is_read(tmp_path, caplog):
    """Training reads a data set for its training images and again for validation: the warning
    about UCF_CC_50 image 6's point off the image was printed once per read."""
    for name in ("6.jpg", "6_ann.mat", "20.jpg", "20_ann.mat"):  # a path no other test has read
        shutil.copy(need(UCF_CC_50 / name), tmp_path / name)
    with caplog.at_level("WARNING", logger="sasnet_core"):
        for _ in range(3):
            assert read_points(tmp_path / "6_ann.mat").count == 2550
        read_points(tmp_path / "20_ann.mat")
    said = [r.getMessage() for r in caplog.records if "outside the" in r.getMessage()]
    assert len(said) == 2 and "6_ann.mat" in said[0] and "20_ann.mat" in said[1], said


def test_outside_points_with_known_image_size(tmp_path):
    p = tmp_path / "a.json"
    write_points(Annotation("a.jpg", (10, 10), [[5, 5], [30, 5]]), p, "labelme")
    report = []
    assert read_points(p, report=report).count == 2 and "1 of 2 points" in report[0]
    assert read_points(p, outside="drop", report=[]).count == 1


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("GT_IMG_1.mat", b"MATLAB 5.0 MAT-file, truncated", "not a readable MATLAB"),
        ("x.mat", b"", "empty"),
        ("x.json", b"", "empty"),
        ("x.json", b'{"shapes": [{"shape_type": "point", "points": [[1, "a"]]}]}', "shapes[0].points"),
        ("x.json", b'{"img_id": "1.jpg", "human_num": 3, "points": [[1, 2]]}', "human_num"),
        ("x.json", b'{"foo": 1}', "matches no known format"),
        ("x.json", b'{"shapes": [{"shape_type": "point", "points": [[NaN, 2]]}]}', "not a finite"),
        ("x.txt", b"1 2\n3\n", "line 2"),
        ("x.txt", b"1 2\nfoo bar\n", "line 2"),
        ("x.csv", b"x,y\n1,2\n3,abc\n", "row 3"),
        ("x.csv", b"a,b\n1,2\n", "matches"),
        ("x.xml", b"<annotations><image name='a.jpg'><points points='1,2;x'/></image></annotations>", "points"),
        ("x.xml", b"<annotations><image", "not valid XML"),
    ],
)
def test_malformed_input_names_file_field_and_problem(tmp_path, name, content, message):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(AnnotationFormatError) as err:
        read_points(p)
    assert str(p) in str(err.value)
    if message != "matches":
        assert message in str(err.value)


def test_mat_with_wrong_variables_and_truncated_real_file(tmp_path):
    import scipy.io

    scipy.io.savemat(tmp_path / "x.mat", {"points": np.zeros((2, 2))})
    with pytest.raises(AnnotationFormatError, match="image_info.*annPoints"):
        read_points(tmp_path / "x.mat")
    with pytest.raises(AnnotationFormatError, match="no variable 'annPoints'"):
        read_points(tmp_path / "x.mat", "ucf")
    real = need(UCF_CC_50 / "4_ann.mat").read_bytes()
    (tmp_path / "4_ann.mat").write_bytes(real[: len(real) // 2])
    with pytest.raises(AnnotationFormatError, match="4_ann.mat"):
        read_points(tmp_path / "4_ann.mat")


def test_cvat_and_coco_carry_model_proposals(tmp_path):
    a = Annotation("a.jpg", (20, 20), [[1, 1], [2, 2]], sources=[0, SOURCE_MODEL])
    write_points(a, tmp_path / "a.xml", "cvat")
    assert 'source="auto"' in (tmp_path / "a.xml").read_text()
    assert read_points(tmp_path / "a.xml").sources.tolist() == [0, 1]


def test_empty_text_file_is_an_image_without_people(tmp_path):
    (tmp_path / "a.txt").write_text("")
    assert read_points(tmp_path / "a.txt").count == 0


# -- sasnet convert --------------------------------------------------------------------------------
def _convert(*args):
    from sasnet_core.cli import main

    return main(["convert", *map(str, args)])


def test_cli_converts_real_file_through_every_format_and_back(tmp_path):
    src = need(SHANGHAITECH_A / "test_data" / "ground-truth" / "GT_IMG_51.mat")
    orig = read_points(src)
    for name, spec in FORMATS.items():
        out = tmp_path / name / spec.default_name(orig.image_path)
        out.parent.mkdir()
        assert _convert(src, "--to", name, "--out", out) == 0
        back = tmp_path / name / "GT_back.mat"
        assert _convert(out, "--to", "shanghaitech", "--out", back) == 0
        np.testing.assert_array_equal(read_points(back).points, orig.points)
        assert read_points(back).count == 569


def test_cli_converts_a_dataset_folder(tmp_path):
    need(STREET_B)
    assert _convert(STREET_B, "--to", "text", "--out", tmp_path / "txt") == 0
    files = sorted((tmp_path / "txt").rglob("*.txt"))
    assert len(files) == 38  # train and test both have IMG_1..: each keeps its sub-folder
    assert {f.parent.relative_to(tmp_path / "txt").as_posix() for f in files} == {
        "train_data/images", "test_data/images"}
    assert read_points(tmp_path / "txt" / "train_data" / "images" / "IMG_4.txt").count == 53
    # ... and the export reads back: its own output converts again without a collision
    assert _convert(tmp_path / "txt", "--to", "csv", "--out", tmp_path / "csv") == 0
    assert len(sorted((tmp_path / "csv").rglob("*.csv"))) == 38


def test_cli_folder_of_annotations_to_coco_and_errors(tmp_path, capsys):
    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"im{i}.jpg"), np.zeros((10, 10, 3), np.uint8))
        save_annotation(Annotation(str(tmp_path / f"im{i}.jpg"), (10, 10), [[1, 1]] * (i + 1),
                                   sources=[SOURCE_MODEL] * (i + 1)), tmp_path / f"im{i}.jpg.sasnet.json")
    assert _convert(tmp_path, "--to", "coco", "--out", tmp_path / "all.json") == 0
    back = read_annotations(tmp_path / "all.json")
    assert [a.count for a in back] == [1, 2, 3]
    assert all((a.sources == SOURCE_MODEL).all() for a in back)  # provenance survives
    assert back[0].image_path == str(tmp_path / "im0.jpg")
    (tmp_path / "bad.json").write_text("{")
    assert _convert(tmp_path / "bad.json", "--to", "text", "--out", tmp_path / "o.txt") == 2
    assert "bad.json" in capsys.readouterr().err


def test_cli_drop_outside(tmp_path, capsys):
    p = tmp_path / "a.json"
    write_points(Annotation("a.jpg", (10, 10), [[5, 5], [30, 5]]), p, "labelme")
    assert _convert(p, "--to", "text", "--out", tmp_path / "keep.txt") == 0
    assert "outside" in capsys.readouterr().err
    assert read_points(tmp_path / "keep.txt").count == 2
    assert _convert(p, "--to", "text", "--out", tmp_path / "drop.txt", "--drop-outside") == 0
    assert read_points(tmp_path / "drop.txt").count == 1
    assert _convert(p, "--to", "text", "--out", tmp_path / "x.txt", "--strict") == 2


def test_export_annotated_folder_as_shanghaitech_dataset(tmp_path):
    import cv2

    from sasnet_core.datasets import open_dataset

    src = tmp_path / "proj"
    src.mkdir()
    for i in range(5):
        cv2.imwrite(str(src / f"photo{i}.png"), np.full((40, 60, 3), i * 40, np.uint8))
        save_annotation(Annotation(str(src / f"photo{i}.png"), (60, 40), [[3.5, 4.5]] * (i + 1)),
                        src / f"photo{i}.png.sasnet.json")
    out = tmp_path / "export"
    assert _convert(src, "--to", "shanghaitech-dataset", "--out", out, "--test-fraction", "0.4") == 0
    ds = open_dataset(out)
    assert ds.layout == "shanghaitech" and len(ds) == 5
    assert sorted(s.split for s in ds) == ["test", "test", "train", "train", "train"]
    assert sorted(s.count for s in ds) == [1, 2, 3, 4, 5]
    assert (out / "train_data" / "images" / "IMG_1.jpg").is_file()
    assert (out / "sources.csv").read_text().count("photo") == 5


def test_degenerate_input_is_refused_or_skipped_with_the_file_named(tmp_path):
    (tmp_path / "blank.csv").write_text(",,\n , \n")  # no header, no value
    with pytest.raises(AnnotationFormatError, match="blank.csv.*no rows"):
        read_points(tmp_path / "blank.csv")
    (tmp_path / "c.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": "wide", "height": 3}],
        "annotations": [], "categories": [{"id": 1, "keypoints": ["head"]}]}))
    with pytest.raises(AnnotationFormatError, match=r"c.json.*images\[0\]"):
        read_points(tmp_path / "c.json")
    # a 2-vertex CVAT "roi" is no region (as in LabelMe and VIA), so the result can be saved
    (tmp_path / "a.xml").write_text("<annotations><image name='a.jpg'><polygon label='roi' "
                                    "points='1,2;3,4'/></image></annotations>")
    a = read_points(tmp_path / "a.xml")
    assert a.rois == []
    save_annotation(a, tmp_path / "a.jpg.sasnet.json")


def test_cli_convert_keeps_sub_folders_and_refuses_two_images_to_one_file(tmp_path, capsys):
    import cv2

    for sub, name, n in (("a", "IMG_1.jpg", 1), ("b", "IMG_1.jpg", 3), ("b", "IMG_1.png", 2)):
        img = tmp_path / "src" / sub / name
        img.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(img), np.zeros((10, 10, 3), np.uint8))
        save_annotation(Annotation(str(img), (10, 10), [[1, 1]] * n), img.with_name(img.name + ".sasnet.json"))
    # b/IMG_1.jpg and b/IMG_1.png both want b/IMG_1.txt: refused, naming both, nothing written
    assert _convert(tmp_path / "src", "--to", "text", "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "IMG_1.txt" in err and "IMG_1.jpg" in err and "IMG_1.png" in err
    assert not (tmp_path / "out").exists()
    # a/IMG_1.jpg and b/IMG_1.jpg keep their sub-folders
    (tmp_path / "src" / "b" / "IMG_1.png.sasnet.json").unlink()
    assert _convert(tmp_path / "src", "--to", "text", "--out", tmp_path / "out") == 0
    assert read_points(tmp_path / "out" / "a" / "IMG_1.txt").count == 1
    assert read_points(tmp_path / "out" / "b" / "IMG_1.txt").count == 3


def test_cli_export_into_non_empty_folder_is_a_clean_error(tmp_path, capsys):
    import cv2

    src = tmp_path / "proj"
    src.mkdir()
    cv2.imwrite(str(src / "p.png"), np.zeros((20, 20, 3), np.uint8))
    save_annotation(Annotation(str(src / "p.png"), (20, 20), [[3, 4]]), src / "p.png.sasnet.json")
    out = tmp_path / "export"
    assert _convert(src, "--to", "shanghaitech-dataset", "--out", out) == 0
    assert _convert(src, "--to", "shanghaitech-dataset", "--out", out) == 2  # no traceback
    assert "--overwrite" in capsys.readouterr().err


# -- export: one function for the app and the CLI -------------------------------------------------
REAL_SETS = {"ucf_cc_50": (UCF_CC_50, "*_ann.mat", "ucf"),
             "shanghaitech_a": (SHANGHAITECH_A, "GT_*.mat", "shanghaitech"),
             "street_b": (STREET_B, "GT_*.mat", "shanghaitech")}


@pytest.mark.parametrize("source", list(REAL_SETS))
def test_real_data_round_trips_exactly_through_every_format(tmp_path, source):
    from sasnet_core.annotations.formats.export import export

    root, pattern, fmt = REAL_SETS[source]
    files = sorted(need(root).rglob(pattern))
    if source == "ucf_cc_50":  # 13 of the 50 (64k points through 11 formats take a while)
        files = files[::4]
    anns = [read_points(f, fmt, report=[]) for f in files]
    for name, spec in FORMATS.items():
        b = export(anns, name, tmp_path / name / (f"all{spec.extensions[0]}" if spec.multi else "out"))
        via_b = [a for f in b.files for a in read_annotations(f, name, report=[])]
        a = export(via_b, fmt, tmp_path / f"{name}_back")
        back = [read_points(f, fmt, report=[]) for f in a.files]
        assert len(via_b) == len(back) == len(anns)
        for orig, mid, end in zip(anns, via_b, back):
            assert np.array_equal(mid.points, orig.points), (name, orig.image_path)
            assert np.array_equal(end.points, orig.points), (name, orig.image_path)
    # the source's float noise is not written: MATLAB's 394.9999999999999 is "395" in text formats
    if source == "street_b":
        text = (tmp_path / "csv" / "out" / "test_data" / "images" / "IMG_3.csv").read_text()
        assert "394.9999" not in text and "\n347,395,person\n" in text


def test_export_writes_image_paths_relative_to_the_output_and_image_sizes(tmp_path, monkeypatch):
    import cv2

    (tmp_path / "data").mkdir()
    cv2.imwrite(str(tmp_path / "data" / "a.jpg"), np.zeros((30, 40, 3), np.uint8))
    write_points(Annotation(str(tmp_path / "data" / "a.jpg"), None, [[312.9999999999999, 2.5]]),
                 tmp_path / "data" / "a.txt", "text")
    monkeypatch.chdir(tmp_path)  # a relative source, as a person types it
    for name in ("labelme", "coco", "cvat", "via"):
        out = tmp_path / "out" / name / f"x{FORMATS[name].extensions[0]}"
        assert _convert("data/a.txt", "--to", name, "--out", out) == 0
        text = out.read_text()
        assert "../../data/a.jpg" in text and "312.9999" not in text
        (back,) = read_annotations(out)
        assert back.image_path == str(tmp_path / "data" / "a.jpg")  # found from the output's folder
        assert back.points.tolist() == [[313, 2.5]]
        if name != "via":  # VIA has no width/height fields
            assert back.image_size == (40, 30)


def test_convert_never_overwrites_without_the_option(tmp_path, capsys):
    src = tmp_path / "a.txt"
    src.write_text("1 2\n")
    for name, out in (("csv", tmp_path / "one.csv"), ("coco", tmp_path / "all.json")):
        out.write_text("mine")
        assert _convert(src, "--to", name, "--out", out) == 2
        assert str(out) in capsys.readouterr().err and out.read_text() == "mine"
        assert _convert(src, "--to", name, "--out", out, "--overwrite") == 0
        assert read_points(out).points.tolist() == [[1, 2]]


def test_convert_names_what_the_target_format_cannot_hold(tmp_path, capsys):
    src = tmp_path / "a.jpg.sasnet.json"
    ann = Annotation(str(tmp_path / "a.jpg"), (100, 80), np.array([[1.0, 2.0]]), reviewed=True,
                     rois=[np.array([[0.0, 0.0], [50.0, 0.0], [50.0, 50.0]])])
    save_annotation(ann, src)
    assert _convert(src, "--to", "csv", "--out", tmp_path / "a.csv") == 0
    err = capsys.readouterr().err
    assert "not written: 1 region(s) of interest: csv cannot hold them" in err
    assert "not written: the reviewed marks of 1 image(s): csv cannot hold them" in err
    assert _convert(src, "--to", "labelme", "--out", tmp_path / "a.json") == 0
    err = capsys.readouterr().err
    assert "region(s) of interest" not in err and "reviewed marks of 1 image(s)" in err  # LabelMe keeps them


def test_convert_to_a_full_disk_names_the_output(tmp_path, capsys):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    src = tmp_path / "a.txt"
    src.write_text("1 2\n")
    assert _convert(src, "--to", "csv", "--out", "/dev/full") == 2  # exists: refused
    assert _convert(src, "--to", "csv", "--out", "/dev/full", "--overwrite") == 2
    err = capsys.readouterr().err
    assert "/dev/full" in err and "Traceback" not in err and len(err.strip().splitlines()) == 2


def test_dataset_export_refuses_images_outside_the_source_unless_named(tmp_path, capsys):
    import cv2

    (tmp_path / "outside").mkdir()
    (tmp_path / "src").mkdir()
    secret = tmp_path / "outside" / "secret.jpg"
    cv2.imwrite(str(secret), np.zeros((20, 20, 3), np.uint8))
    (tmp_path / "src" / "a.json").write_text(json.dumps(
        {"shapes": [{"shape_type": "point", "label": "head", "points": [[3, 4]]}],
         "imagePath": "../outside/secret.jpg"}))
    out = tmp_path / "export"
    assert _convert(tmp_path / "src", "--to", "shanghaitech-dataset", "--out", out) == 2
    assert "secret.jpg" in capsys.readouterr().err and not out.exists()
    assert _convert(tmp_path / "src", "--to", "shanghaitech-dataset", "--out", out,
                    "--allow-image", secret) == 0
    assert (out / "test_data" / "images" / "IMG_1.jpg").read_bytes() == secret.read_bytes()


def test_dataset_export_overwrite_replaces_the_old_layout_whole(tmp_path):
    import cv2

    src = tmp_path / "proj"
    src.mkdir()
    for i in range(4):
        cv2.imwrite(str(src / f"p{i}.jpg"), np.zeros((20, 20, 3), np.uint8))
        save_annotation(Annotation(str(src / f"p{i}.jpg"), (20, 20), [[3, 4]] * (i + 1)),
                        src / f"p{i}.jpg.sasnet.json")
    out = tmp_path / "export"
    (out / "notes.txt").parent.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _convert(src, "--to", "shanghaitech-dataset", "--out", out, "--test-fraction", "0.5") == 0
    for i in (2, 3):
        (src / f"p{i}.jpg.sasnet.json").unlink()
    assert _convert(src, "--to", "shanghaitech-dataset", "--out", out, "--overwrite") == 0
    assert len(list(out.rglob("GT_IMG_*.mat"))) == 2  # no stale IMG_3 from the first export
    assert (out / "notes.txt").read_text() == "mine" and not list(out.glob(".*"))


@pytest.mark.parametrize("option", [["--test-fraction", "7"], ["--test-fraction", "0"],
                                    ["--seed", "-1"], ["--test-fraction", "nan"]])
def test_convert_options_are_validated(tmp_path, option, capsys):
    with pytest.raises(SystemExit) as exc:
        _convert(tmp_path, "--to", "shanghaitech-dataset", "--out", tmp_path / "o", *option)
    assert exc.value.code == 2 and option[0] in capsys.readouterr().err


def test_dataset_export_removes_staging_folders_an_interrupted_export_left(tmp_path):
    import os
    import time

    import cv2

    src = tmp_path / "proj"
    src.mkdir()
    cv2.imwrite(str(src / "p.jpg"), np.zeros((20, 20, 3), np.uint8))
    save_annotation(Annotation(str(src / "p.jpg"), (20, 20), [[3, 4]]), src / "p.jpg.sasnet.json")
    out = tmp_path / "export"
    old, fresh = out / ".sasnet-export-killed", out / ".sasnet-export-running"
    for d in (old, fresh):
        (d / "train_data").mkdir(parents=True)
    hours_ago = time.time() - 2 * 3600
    os.utime(old, (hours_ago, hours_ago))
    assert _convert(src, "--to", "shanghaitech-dataset", "--out", out) == 0
    assert not old.exists() and fresh.is_dir()  # a young one may be another export at work


def test_a_file_of_many_images_is_read_onto_the_open_image_by_its_name(tmp_path):
    from sasnet_core.annotations.formats import read_for_image, write_annotations
    from sasnet_core.util.errors import AnnotationFormatError

    anns = [Annotation(str(tmp_path / "a.jpg"), (100, 80), np.array([[10.0, 10.0], [99.5, 20.0]])),
            Annotation(str(tmp_path / "b.jpg"), (100, 80), np.array([[5.0, 6.0]]))]
    coco = tmp_path / "all.json"
    write_annotations(anns, coco, "coco")
    placed = read_for_image(coco, tmp_path / "b.jpg", (100, 80))
    assert placed.annotation.points.tolist() == [[5.0, 6.0]] and placed.mismatches == []
    # the same points on a smaller copy of a.jpg: one point off it, said and separable
    placed = read_for_image(coco, tmp_path / "sub" / "a.jpg", (50, 40))
    assert placed.mismatches == ["it was made on a 100x80 image; a.jpg is 50x40",
                                 "1 of 2 points lie outside the image"]
    assert placed.inside_only().points.tolist() == [[10.0, 10.0]] and len(placed.annotation.points) == 2
    with pytest.raises(AnnotationFormatError, match="holds 2 images and none is named c.jpg"):
        read_for_image(coco, tmp_path / "c.jpg", (100, 80))


@pytest.mark.parametrize("fmt, data, field", [
    ("labelme", {"imagePath": "a.jpg", "imageWidth": 0, "imageHeight": 10, "shapes": []}, "imageWidth"),
    ("coco", None, "images[0].height"),
])
def test_a_bad_image_size_names_the_field_as_the_file_spells_it(tmp_path, fmt, data, field):
    path = tmp_path / "a.json"
    if data is None:  # a whole COCO file with one image 2.5 pixels high
        write_annotations([Annotation(str(tmp_path / "a.jpg"), (10, 8), np.array([[1.0, 2.0]]))], path, fmt)
        data = json.loads(path.read_text())
        data["images"][0]["height"] = 2.5
    path.write_text(json.dumps(data))
    with pytest.raises(AnnotationFormatError, match=rf"field '{re.escape(field)}' must be a whole number of pixels"):
        read_annotations(path, fmt)


def test_reading_onto_an_image_tells_same_named_images_apart_and_guesses_nothing(tmp_path):
    from sasnet_core.annotations.formats import read_for_image

    # a data set exported as one COCO file: train/.../IMG_1.jpg and test/.../IMG_1.jpg
    train, test = tmp_path / "train_data" / "images" / "IMG_1.jpg", tmp_path / "test_data" / "images" / "IMG_1.jpg"
    anns = [Annotation(str(train), (100, 80), np.array([[1.0, 1.0]])),
            Annotation(str(test), (100, 80), np.array([[2.0, 2.0], [3.0, 3.0]]))]
    coco = tmp_path / "all.json"
    write_annotations(anns, coco, "coco")
    assert read_for_image(coco, test, (100, 80)).annotation.count == 2
    assert read_for_image(coco, train, (100, 80)).annotation.count == 1
    # a plain text file says nothing of its image: no "annotation of heads.jpg" from its own name
    text = tmp_path / "heads.txt"
    text.write_text("10 20\n30 40\n")
    placed = read_for_image(text, tmp_path / "a.jpg", (100, 80))
    assert placed.mismatches == [] and placed.annotation.count == 2
    # a COCO file with no image in it is named, not a bare unpacking error
    empty = tmp_path / "empty.json"
    data = json.loads(coco.read_text())
    data["images"], data["annotations"] = [], []
    empty.write_text(json.dumps(data))
    with pytest.raises(AnnotationFormatError, match="empty.json: holds no image's annotation"):
        read_for_image(empty, tmp_path / "a.jpg", (100, 80))
