"""Data set layouts, detection, splits and the training crops."""
from pathlib import Path

import numpy as np
import pytest
from _data_paths import SHANGHAITECH_A, SHANGHAITECH_A_COUNTS, STREET_B, UCF_CC_50, need

from sasnet_core.annotations.annotation import Annotation, save_annotation
from sasnet_core.datasets import detect_layout, open_dataset
from sasnet_core.util.errors import DatasetLayoutError


def test_shanghaitech_sample_counts():
    ds = open_dataset(need(SHANGHAITECH_A))
    assert ds.layout == "shanghaitech" and ds.splits == ["test"]
    counts = {s.image_path.rsplit("/", 1)[1][:-4]: s.count for s in ds}
    assert counts == SHANGHAITECH_A_COUNTS
    with pytest.raises(DatasetLayoutError, match="no split 'train'"):
        open_dataset(SHANGHAITECH_A, "train")


def test_street_b_layout_splits():
    ds = open_dataset(need(STREET_B))
    assert len(ds) == 38
    assert len(ds.select("train")) == 30 and len(ds.select("test")) == 8
    test = {s.image_path.rsplit("/", 1)[1]: s.count for s in ds.select("test")}
    assert test["IMG_1.jpg"] == 16 and test["IMG_3.jpg"] == 3
    assert all(s.points.dtype == np.float64 and s.points.shape[1] == 2 for s in ds)


def test_ucf_cc_50_counts_and_five_fold_split():
    ds = open_dataset(need(UCF_CC_50))
    assert ds.layout == "ucf_cc_50" and len(ds) == 50
    assert sum(s.count for s in ds) == 63974  # README: 63,974 heads
    assert ds[0].count == 4633 and ds[0].image_path.endswith("/1.jpg")
    assert ds.splits == [f"fold{k}" for k in range(1, 6)]
    assert [s.image_path.rsplit("/", 1)[1] for s in ds.select("fold2")][:2] == ["11.jpg", "12.jpg"]
    f3 = open_dataset(UCF_CC_50, "test", fold=3)
    assert [s.image_path.rsplit("/", 1)[1] for s in f3] == [f"{i}.jpg" for i in range(21, 31)]
    assert len(open_dataset(UCF_CC_50, "train", fold=3)) == 40
    assert any("6_ann.mat" in line for line in ds.report)  # the x = -358 point is reported
    # the two ways of splitting it are explained where the other one is asked for
    with pytest.raises(DatasetLayoutError, match="without --fold its splits are fold1..fold5"):
        open_dataset(UCF_CC_50, "test")
    with pytest.raises(DatasetLayoutError, match="with --fold K fold K is 'test'"):
        open_dataset(UCF_CC_50, "fold1", fold=3)


def test_an_option_that_does_not_apply_to_the_layout_is_refused_not_ignored():
    with pytest.raises(DatasetLayoutError, match=r"shanghaitech data set, which has no use for --fold"):
        open_dataset(need(STREET_B), "test", fold=2)
    assert len(open_dataset(STREET_B, "test", fold=None)) == 8  # an option not given is no option


def test_every_image_without_ground_truth_is_named_at_once(tmp_path):
    import shutil

    root = tmp_path / "set"
    shutil.copytree(need(STREET_B) / "test_data", root / "test_data")
    for stem in ("IMG_1", "IMG_3"):
        (root / "test_data" / "ground-truth" / f"GT_{stem}.mat").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        open_dataset(root)
    assert "2 image(s) without ground truth" in str(err.value)
    assert "IMG_1.jpg (no ground-truth/GT_IMG_1.mat)" in str(err.value) and "GT_IMG_3.mat" in str(err.value)


def test_unknown_folder_lists_what_was_looked_for(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(DatasetLayoutError) as err:
        detect_layout(tmp_path)
    msg = str(err.value)
    for expected in ("ShanghaiTech".lower(), "ucf_cc_50", "ucf_qnrf", "nwpu", "jhu", "sasnet.json"):
        assert expected in msg.lower()


def _img(path, w, h):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 128, np.uint8))


def test_qnrf_limits_long_side_and_scales_points(tmp_path):
    import scipy.io

    _img(tmp_path / "Train" / "img_0001.jpg", 400, 200)
    scipy.io.savemat(tmp_path / "Train" / "img_0001_ann.mat", {"annPoints": np.array([[100.0, 50.0]])})
    _img(tmp_path / "Test" / "img_0001.jpg", 100, 50)
    scipy.io.savemat(tmp_path / "Test" / "img_0001_ann.mat", {"annPoints": np.array([[10.0, 5.0]])})
    ds = open_dataset(tmp_path, max_side=200)
    assert ds.layout == "ucf_qnrf" and ds.splits == ["test", "train"]
    big = ds.select("train")[0]
    assert big.resize == (200, 100) and np.allclose(big.points, [[50.0, 25.0]])
    assert big.load_image().shape == (100, 200, 3)
    small = ds.select("test")[0]
    assert small.resize is None and small.load_image().shape == (50, 100, 3)


def test_nwpu_and_jhu_layouts(tmp_path):
    import json

    nw = tmp_path / "nwpu"
    _img(nw / "images" / "0001.jpg", 30, 20)
    _img(nw / "images" / "0002.jpg", 30, 20)
    (nw / "jsons").mkdir()
    (nw / "jsons" / "0001.json").write_text(json.dumps({"img_id": "0001.jpg", "human_num": 2, "points": [[1, 2], [3, 4]]}))
    (nw / "jsons" / "0002.json").write_text(json.dumps({"img_id": "0002.jpg", "human_num": 0, "points": []}))
    (nw / "train.txt").write_text("0001 1 1\n")
    (nw / "val.txt").write_text("0002 1 1\n")
    ds = open_dataset(nw)
    assert ds.layout == "nwpu" and {s.split: s.count for s in ds} == {"train": 2, "val": 0}
    jh = tmp_path / "jhu"
    _img(jh / "val" / "images" / "0003.jpg", 30, 20)
    (jh / "val" / "gt").mkdir()
    (jh / "val" / "gt" / "0003.txt").write_text("5 6 3 3 1 0\n7 8 3 3 2 1\n9 9 2 2 0 0\n")
    ds = open_dataset(jh, "val")
    assert ds.layout == "jhu" and ds[0].count == 3


def test_annotated_folder_with_roi_and_reviewed(tmp_path):
    _img(tmp_path / "a.jpg", 40, 30)
    _img(tmp_path / "b.jpg", 40, 30)
    _img(tmp_path / "unannotated.jpg", 40, 30)
    square = [[0, 0], [20, 0], [20, 30], [0, 30]]
    save_annotation(Annotation(str(tmp_path / "a.jpg"), (40, 30), [[5, 5], [30, 5]], rois=[square],
                               reviewed=True), tmp_path / "a.jpg.sasnet.json")
    save_annotation(Annotation(str(tmp_path / "b.jpg"), (40, 30), [[1, 1]]), tmp_path / "b.jpg.sasnet.json")
    ds = open_dataset(tmp_path)
    assert ds.layout == "annotated_folder" and len(ds) == 2
    assert ds[0].count == 1  # the point at x = 30 is outside the ROI
    assert len(open_dataset(tmp_path, reviewed_only=True)) == 1


def test_annotated_folder_keys_images_by_their_full_name(tmp_path):
    root = tmp_path / "set"
    for name in ("a.jpg", "a.png", "x/img.jpg", "y/img.jpg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        _img(root / name, 40, 30)
    project = tmp_path / "proj"
    from sasnet_core.annotations.store import Project, write_annotation

    for i, name in enumerate(("a.jpg", "a.png", "x/img.jpg", "y/img.jpg")):
        write_annotation(Annotation(str(root / name), (40, 30), [[1, 1]] * (i + 1), reviewed=i != 1),
                         project=Project(project, root))
    ds = open_dataset(root, layout="annotated_folder", project_dir=project)
    got = [(Path(s.image_path).relative_to(root).as_posix(), s.count) for s in ds]
    assert got == [("a.jpg", 1), ("a.png", 2), ("x/img.jpg", 3), ("y/img.jpg", 4)]
    assert len(open_dataset(root, layout="annotated_folder", project_dir=project, reviewed_only=True)) == 3


def test_a_read_only_folder_annotated_in_the_app_is_an_annotated_data_set(tmp_path, read_only):
    from sasnet_core.annotations.store import write_annotation

    root = tmp_path / "shared"
    root.mkdir()
    _img(root / "a.jpg", 40, 30)
    _img(root / "b.jpg", 40, 30)
    read_only(root)
    write_annotation(Annotation(str(root / "b.jpg"), (40, 30), [[3, 4], [5, 6]]))
    assert sorted(p.name for p in root.iterdir()) == ["a.jpg", "b.jpg"]
    ds = open_dataset(root)
    assert ds.layout == "annotated_folder" and [(Path(s.image_path).name, s.count) for s in ds] == [("b.jpg", 2)]


# -- training crops ----------------------------------------------------------------------------------
def test_train_crops_shapes_normalisation_targets_and_collate(tmp_path):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from sasnet_core.datasets.layouts import Sample
    from sasnet_core.training.crops import TrainCrops, collate_crops

    rng = np.random.default_rng(0)
    samples = []
    for i, (w, h) in enumerate([(300, 200), (90, 60), (128, 128)]):  # one smaller than a crop
        _img(tmp_path / f"{i}.jpg", w, h)
        samples.append(Sample(str(tmp_path / f"{i}.jpg"), rng.uniform(0, [w, h], (20, 2)), "train"))
    data = TrainCrops(samples)
    torch.manual_seed(0)
    imgs, tgts = data[0]
    assert imgs.shape == (4, 3, 128, 128) and tgts.shape == (4, 1, 128, 128)
    # grey 128 image -> (128/255 - mean) / std everywhere
    expected = (128 / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(imgs[0, :, 5, 5].numpy(), expected, rtol=1e-5)
    small_imgs, small_t = data[1]  # padded, not crashing; the padded image keeps all its heads
    assert small_imgs.shape == (4, 3, 128, 128)
    assert float(small_t[0].sum()) / 1000 == pytest.approx(20, abs=1e-3)
    full = data[2][1]
    assert float(full[0].sum()) / 1000 == pytest.approx(20, abs=1e-3)  # x1000 count scale
    loader = DataLoader(data, batch_size=2, collate_fn=collate_crops)
    x, y = next(iter(loader))
    assert x.shape == (8, 3, 128, 128) and y.shape == (8, 1, 128, 128)
    assert 0 in data._targets  # density cached per image


def test_train_crops_flip_moves_target_with_image(tmp_path):
    torch = pytest.importorskip("torch")
    import cv2

    from sasnet_core.datasets.layouts import Sample
    from sasnet_core.training.crops import TrainCrops

    img = np.zeros((128, 128, 3), np.uint8)
    img[:, :20] = 255  # bright stripe on the left, heads on the left too
    cv2.imwrite(str(tmp_path / "s.png"), img)
    data = TrainCrops([Sample(str(tmp_path / "s.png"), np.array([[10.0, 64.0]]), "train")],
                      crops_per_image=16)
    torch.manual_seed(1)
    imgs, tgts = data[0]
    for im, t in zip(imgs, tgts):
        bright_left = im[0, 64, :64].mean() > im[0, 64, 64:].mean()
        mass_left = t[0, :, :64].sum() > t[0, :, 64:].sum()
        assert bright_left == mass_left
    flipped = [bool(im[0, 64, 64:].mean() > im[0, 64, :64].mean()) for im in imgs]
    assert any(flipped) and not all(flipped)


def test_what_a_data_set_reader_noticed_is_said_once_however_often_training_reads_it(tmp_path, caplog):
    """`sasnet train` reads its data sets for the training images, again for the encoder's
    statistics pass and for validation: a point off its image was printed once per read."""
    import scipy.io

    from sasnet_core.training.data import load_samples, training_samples

    for split in ("Train", "Test"):
        _img(tmp_path / split / "img_0001.jpg", 40, 20)
        scipy.io.savemat(tmp_path / split / "img_0001_ann.mat", {"annPoints": np.array([[10.0, 5.0], [90.0, 5.0]])})
    with caplog.at_level("WARNING", logger="sasnet_core"):
        for _ in range(3):
            assert len(training_samples([tmp_path])) == 1
        assert len(load_samples(tmp_path, split="test")) == 1
    said = [r.getMessage() for r in caplog.records if "outside the 40x20 image" in r.getMessage()]
    assert len(said) == 2, said  # one per file, Train's and Test's
    assert {("Train" in s, "Test" in s) for s in said} == {(True, False), (False, True)}
