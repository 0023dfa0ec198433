"""The ground truth of one image (``sasnet_core.datasets.ground_truth``) agrees with the data set
readers behind ``eval`` and training, in every layout, and follows its files when they change."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from _data_paths import SHANGHAITECH_A, STREET_B, UCF_CC_50, need
from _dataset_layouts import KINDS, make_layout

from sasnet_core.datasets import open_dataset
from sasnet_core.datasets.ground_truth import locate, truth_of


def _agree(root: Path) -> int:
    ds = open_dataset(root)
    for s in ds:
        truth = truth_of(s.image_path)
        assert truth.from_dataset and truth.describe().startswith("ground truth: "), s.image_path
        assert truth.annotation.count == len(s.points), s.image_path
        assert truth.dataset.layout == ds.layout
    return len(ds)


@pytest.mark.parametrize("kind", KINDS)
def test_one_image_and_the_whole_folder_agree(tmp_path, kind):
    counts = make_layout(kind, tmp_path / kind)
    assert _agree(tmp_path / kind) == len(counts)


@pytest.mark.parametrize("folder", [UCF_CC_50, SHANGHAITECH_A, STREET_B], ids=["ucf_cc_50", "shanghaitech_a", "street_b"])
def test_real_data_sets_agree(folder):
    assert _agree(need(folder)) > 0


def test_labels_name_the_file_as_a_person_finds_it():
    image = need(SHANGHAITECH_A) / "test_data" / "images" / "IMG_4.jpg"
    assert truth_of(image).describe() == "ground truth: ground-truth/GT_IMG_4.mat"
    assert locate(image).export_format == "shanghaitech-dataset"
    assert truth_of(need(UCF_CC_50) / "1.jpg").describe() == "ground truth: 1_ann.mat"


def test_an_image_of_no_data_set_has_none(tmp_path, gui):
    (image,) = gui.write_images(tmp_path, n=1, h=32, w=32)
    truth = truth_of(image)
    assert truth.annotation is None and truth.dataset is None and truth.describe() == ""


def test_a_changed_collection_file_is_read_again(tmp_path):
    from sasnet_core.annotations.annotation import Annotation
    from sasnet_core.annotations.formats import write_annotations

    root = tmp_path / "coco"
    make_layout("coco", root)
    image = root / "frame_1.jpg"
    assert truth_of(image).annotation.count == 3
    write_annotations([Annotation(str(image), (64, 48), [[1, 1]] * 5)], root / "annotations.json", "coco")
    st = (root / "annotations.json").stat()
    os.utime(root / "annotations.json", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert truth_of(image).annotation.count == 5


def test_a_correction_that_does_not_fit_its_image_is_set_aside_in_eval_and_training(tmp_path, caplog):
    """A saved correction made on another size counts nowhere: eval's reader and training keep
    the data set's points and say which file and why, once; a fitting one beside it is used."""
    from sasnet_core.annotations.annotation import Annotation, save_annotation
    from sasnet_core.training.data import load_samples

    root = tmp_path / "qnrf"
    make_layout("ucf_qnrf", root)
    train = root / "Train"
    save_annotation(Annotation(str(train / "img_0001.jpg"), (5000, 4000), [[3, 4], [10, 10]]),
                    train / "img_0001.jpg.sasnet.json")
    save_annotation(Annotation(str(train / "img_0002.jpg"), (64, 48), [[1, 1], [2, 2], [3, 3]]),
                    train / "img_0002.jpg.sasnet.json")
    ds = open_dataset(root)
    assert {Path(s.image_path).name: len(s.points) for s in ds} == {"img_0001.jpg": 6, "img_0002.jpg": 3}
    (line,) = [r for r in ds.report if "img_0001.jpg.sasnet.json" in r]
    assert "5000x4000" in line and "the data set's file counts" in line
    assert any(r.startswith("1 image(s) with the corrections") for r in ds.report)
    with caplog.at_level("WARNING", logger="sasnet_core"):
        trained = {Path(s.image_path).name: len(s.points) for s in load_samples(root, split=None)}
    assert trained == {"img_0001.jpg": 6, "img_0002.jpg": 3}
    assert [r.getMessage() for r in caplog.records if "img_0001.jpg.sasnet.json" in r.getMessage()] == [line]
