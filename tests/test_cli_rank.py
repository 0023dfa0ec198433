"""``sasnet rank`` through the real entry point: order, outputs, annotated error, refusals."""
from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
import torch

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.store import write_annotation
from sasnet_core.cli import main
from sasnet_core.engine.inference import Predictor
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet
from sasnet_core.weights.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    model = SASNet(SASNetConfig(width_mult=0.125))
    return model, save_checkpoint(tmp_path_factory.mktemp("weights") / "tiny.pth", model)


@pytest.fixture
def images(tmp_path):
    """Four images of different sizes and content (so their scores differ), one in a sub-folder."""
    rng = np.random.default_rng(3)
    paths = []
    for i, (h, w, rel) in enumerate([(64, 64, "a.png"), (128, 160, "b.png"), (96, 96, "sub/c.png"),
                                     (160, 128, "d.png")]):
        path = tmp_path / "in" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rng.integers(0, 255, (h, w, 3), np.uint8))
        paths.append(path)
    return paths


def rank(tiny, *args) -> int:
    return main(["rank", *map(str, args), "--weights", str(tiny[1]), "--no-progress"])


def test_images_come_highest_uncertainty_first_with_the_scores_the_model_gives(tiny, images, tmp_path, capsys):
    assert rank(tiny, tmp_path / "in", "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    predictor = Predictor(tiny[0], device="cpu")
    expected = {str(p): predictor.predict(p).uncertainty for p in images}
    assert sorted(r["path"] for r in rows) == sorted(expected)
    assert [r["path"] for r in rows] == sorted(expected, key=expected.get, reverse=True)
    for r in rows:
        assert r["uncertainty"] == pytest.approx(expected[r["path"]], abs=1e-3)
        assert r["annotated_count"] is None and r["annotated_error"] is None


def test_annotated_error_column_and_order_from_annotations_in_the_store(tiny, images, tmp_path, capsys):
    heads = {images[0]: 40, images[1]: 0, images[2]: 12}  # d.png has no annotation
    for image, n in heads.items():
        pts = np.random.default_rng(n).random((n, 2)) * 60
        write_annotation(Annotation(str(image), None, pts), image)
    csv_file = tmp_path / "ranking.csv"
    assert rank(tiny, tmp_path / "in", "--by", "annotated-error", "--csv", csv_file) == 0
    assert "4 image(s)" in capsys.readouterr().out
    with open(csv_file, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path"] for r in rows] == [str(images[i]) for i in (0, 2, 1, 3)]
    for r in rows[:3]:
        n = heads[next(p for p in images if str(p) == r["path"])]
        assert int(r["annotated_count"]) == n
        assert float(r["annotated_error"]) == pytest.approx(abs(float(r["count"]) - n), abs=1e-3)
    assert rows[3]["annotated_count"] == "" and rows[3]["annotated_error"] == ""


def test_text_output_has_a_header_and_one_aligned_line_per_image_with_dashes_for_no_annotation(
        tiny, images, capsys):
    assert rank(tiny, images[0], images[2]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split() == ["path", "count", "uncertainty", "annotated", "error"]
    assert len(lines) == 2
    for line in lines:
        path, count, score, annotated, error = line.split()
        assert path in {str(images[0]), str(images[2])}
        assert float(score) <= float(count) + 0.01
        assert (annotated, error) == ("-", "-")
    # aligned: every column ends where its header name ends (numbers are right-aligned)
    for name in ("count", "uncertainty", "annotated", "error"):
        end = header.index(name) + len(name)
        assert all(line[end - 1] != " " and (len(line) == end or line[end] == " ") for line in lines), name


def test_only_missing_folders_give_one_sentence(tiny, tmp_path, capsys):
    assert rank(tiny, tmp_path / "no_such_folder") == 2
    assert capsys.readouterr().err.splitlines() == [
        f"sasnet rank: error: {tmp_path / 'no_such_folder'}: no such file or folder; nothing to rank"]


def test_a_damaged_image_and_a_damaged_annotation_are_named_and_the_rest_is_ranked(tiny, images, tmp_path, capsys):
    (tmp_path / "in" / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "in" / "a.png.sasnet.json").write_text("{ no json", encoding="utf-8")
    assert rank(tiny, tmp_path / "in", "--json") == 1
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in rows][-1] == str(tmp_path / "in" / "broken.jpg")
    assert rows[-1]["skipped"] is True and rows[-1]["count"] is None
    damaged = next(r for r in rows if r["path"] == str(images[0]))
    assert damaged["count"] is not None and damaged["annotated_count"] is None
    assert "a.png.sasnet.json" in damaged["error"]
    assert "broken.jpg" in err and "a.png.sasnet.json" in err


def test_an_existing_csv_is_kept_unless_overwrite_is_given(tiny, images, tmp_path, capsys):
    csv_file = tmp_path / "ranking.csv"
    csv_file.write_text("keep me\n")
    assert rank(tiny, images[0], "--csv", csv_file) == 2
    assert "ranking.csv: already exists; --overwrite replaces it" in capsys.readouterr().err
    assert csv_file.read_text() == "keep me\n"
    assert rank(tiny, images[0], "--csv", csv_file, "--overwrite") == 0
    assert csv_file.read_text().startswith("path,count,uncertainty,annotated_count,annotated_error")
