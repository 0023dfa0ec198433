"""The review -> fine-tune loop benchmark runs end to end on a tiny data set with a random model,
and what it fine-tunes on is what it says: whole reviewed images, or only reviewed cells."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from sasnet_core.annotations.annotation import load_annotation
from sasnet_core.training.synthetic import make_blob_dataset

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_review_loop.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("bench_review_loop", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_loop_fine_tunes_on_whole_images_and_on_reviewed_cells_and_reports_both(tmp_path, capsys):
    data = tmp_path / "street"
    make_blob_dataset(data, 4, size=(256, 256), max_heads=30, split="train", seed=3)
    make_blob_dataset(data, 2, size=(128, 128), max_heads=8, split="test", seed=4)
    work, out = tmp_path / "work", tmp_path / "loop.json"

    assert _benchmark().main(["--data", str(data), "--minutes", "5", "--steps", "1",
                              "--cells", "0.25", "--work", str(work), "--json", str(out)]) == 0

    text = capsys.readouterr().out
    assert "every other one in name order): IMG_1, IMG_3" in text
    assert "review loop on street test (2 images): MAE" in text
    figures = json.loads(out.read_text())
    assert figures["smoke"] and figures["before"]["images"] == 2
    for name, images in (("all", 4), ("cells", 2)):
        run = figures["runs"][name]
        assert run["train_images"] == images and run["steps"] == 1
        assert run["after"]["mae"] != figures["before"]["mae"]  # a new model was evaluated

    whole = sorted((work / "all").glob("*.sasnet.json"))
    assert len(whole) == 4 and all(load_annotation(f).reviewed for f in whole)
    partial = [load_annotation(f) for f in sorted((work / "cells").glob("*.sasnet.json"))]
    assert [Path(a.image_path).name for a in partial] == ["IMG_1.jpg", "IMG_3.jpg"]
    for ann in partial:
        # A quarter of the 2 x 2 cells, holding the ground-truth heads of that cell only.
        assert not ann.reviewed and len(ann.reviewed_cells) == 1
        assert ann.in_reviewed_cells().all()
    heads = sum(a.count for a in partial)
    assert heads == figures["runs"]["cells"]["heads"]
    assert np.isfinite(figures["runs"]["cells"]["after"]["mse"])
