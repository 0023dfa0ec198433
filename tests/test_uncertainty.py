"""The uncertainty score on hand-built predictions, its aggregation, and where it is exposed."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from sasnet_core.engine import uncertainty as unc
from sasnet_core.engine.counting import summarize
from sasnet_core.engine.inference import Prediction, Predictor
from sasnet_core.engine.patch_grid import patch_edges
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet

K = 32


def prediction(weights: np.ndarray, density: np.ndarray, levels: np.ndarray | None = None) -> Prediction:
    """A prediction of an image of ``density``'s size with per-patch level ``weights`` (5, gh, gw)."""
    h, w = density.shape
    gh, gw = weights.shape[1:]
    return Prediction(count=float(density.sum(dtype=np.float64)), density=density.astype(np.float32),
                      level_densities=levels, confidence=weights.astype(np.float32),
                      patch_rows=patch_edges(h, gh), patch_cols=patch_edges(w, gw), image_size=(w, h))


def uniform_density(gh: int, gw: int, people_per_patch: float) -> np.ndarray:
    return np.full((gh * K, gw * K), people_per_patch / (K * K), np.float64)


def released_weights(scores: np.ndarray) -> np.ndarray:
    """What the released model makes of per-level scores: a softmax across levels of sigmoids."""
    return torch.softmax(torch.sigmoid(torch.as_tensor(scores, dtype=torch.float64) * 50), 0).numpy()


def test_flat_weights_score_highest_and_one_dominant_level_zero():
    weights = np.zeros((5, 1, 3))
    weights[:, 0, 0] = 0.2  # flat
    weights[:, 0, 1] = [1, 0, 0, 0, 0]  # one level only
    weights[:, 0, 2] = [0.25, 0.2, 0.2, 0.2, 0.15]  # leaning towards P1, as the release can
    e = unc.level_entropy(weights)
    assert e[0, 0] == pytest.approx(1.0)
    assert e[0, 1] == pytest.approx(0.0)
    assert 0.0 < e[0, 2] < 1.0


def test_weights_that_are_not_numbers_count_as_unsure_not_as_nan():
    weights = np.full((5, 1, 3), 0.2)
    weights[:, 0, 0] = [np.inf, 0, 0, 0, 0]
    weights[:, 0, 1] = [np.nan, 1, 0, 0, 0]
    weights[:, 0, 2] = [1, 0, 0, 0, 0]
    np.testing.assert_allclose(unc.level_entropy(weights), [[1, 1, 0]])


def test_the_most_decided_patch_the_released_model_can_give_scores_zero():
    # Its weights are a softmax of sigmoids: however sure, the other levels keep some weight.
    scores = np.full((5, 1, 2), -1.0)
    scores[2, 0, 0] = 1.0  # P3 clearly chosen
    decided = released_weights(scores)
    assert decided[:, 0, 0].min() > 0.1  # far from one-hot, yet
    assert unc.level_entropy(decided)[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert unc.level_entropy(decided)[0, 1] == pytest.approx(1.0)  # all levels equally unsure


def test_score_grows_with_the_people_in_an_unsure_patch_and_zero_density_scores_zero():
    weights = np.full((5, 2, 2), 0.2)
    density = np.zeros((2 * K, 2 * K))
    density[:K, :K] = 30 / (K * K)  # 30 people in patch (0, 0)
    density[:K, K:] = 3 / (K * K)  # 3 in patch (0, 1); the bottom row is empty
    scores = unc.patch_scores(prediction(weights, density))
    np.testing.assert_allclose(scores, [[30, 3], [0, 0]], atol=1e-4)


def test_disagreeing_level_densities_give_a_high_spread_and_agreeing_ones_none():
    gh, gw = 1, 2
    fused = uniform_density(gh, gw, 10)
    levels = np.stack([uniform_density(gh, gw, 10)] * 5).astype(np.float32)
    levels[:, :, K:] = np.stack([uniform_density(gh, 1, c) for c in (2, 6, 10, 14, 18)])
    pred = prediction(np.full((5, gh, gw), 0.2), fused, levels)
    spread = unc.patch_scores(pred, "spread")
    assert spread[0, 0] == pytest.approx(0.0, abs=1e-4)
    assert spread[0, 1] == pytest.approx(np.std([2, 6, 10, 14, 18]), rel=1e-4)


def test_spread_without_level_densities_says_what_is_missing():
    pred = prediction(np.full((5, 1, 1), 0.2), uniform_density(1, 1, 5))
    with pytest.raises(ValueError, match="keep_levels=True"):
        unc.patch_scores(pred, "spread")
    with pytest.raises(ValueError, match="unknown uncertainty method 'nope'"):
        unc.patch_scores(pred, "nope")


def test_image_score_is_the_sum_of_its_patch_scores_on_uneven_patches():
    rng = np.random.default_rng(0)
    density = rng.random((100, 130)) / 50  # patch edges of an image not a multiple of 32
    weights = rng.random((5, 3, 4))
    pred = prediction(weights, density)
    counts = unc.patch_counts(pred)
    assert counts.sum() == pytest.approx(pred.count, rel=1e-9)
    assert counts[1, 2] == pytest.approx(pred.patch_count(1, 2), rel=1e-9)
    for method in ("count_entropy", "entropy", "count"):
        assert unc.image_score(pred, method) == pytest.approx(unc.patch_scores(pred, method).sum())
    assert unc.image_score(pred) <= pred.count + 1e-9


def test_a_shrunk_density_grid_gives_the_same_patch_counts():
    rng = np.random.default_rng(1)
    pred = prediction(rng.random((5, 8, 8)), rng.random((8 * K, 8 * K)) / 100)
    small = summarize(pred, display_side=64, heads=False)  # what the app's file queue keeps
    np.testing.assert_allclose(unc.patch_counts(small), unc.patch_counts(pred), rtol=1e-3, atol=1e-6)
    assert unc.image_score(small) == pytest.approx(unc.image_score(pred), rel=1e-3)


def test_annotated_patch_error_counts_heads_per_patch():
    pred = prediction(np.full((5, 2, 2), 0.2), uniform_density(2, 2, 4))
    points = np.array([[5, 5], [10, 40], [40, 40], [41, 41], [42, 42], [70, 70]])  # last one off the grid
    np.testing.assert_array_equal(unc.points_per_patch(pred, points), [[1, 0], [1, 3]])
    np.testing.assert_allclose(unc.annotated_patch_error(pred, points), [[3, 4], [3, 1]], atol=1e-4)


def test_review_cells_sum_their_patches_and_keep_the_partial_edge_cells():
    patch_map = np.arange(30, dtype=float).reshape(5, 6)
    cells = unc.cell_sums(patch_map, 4)
    assert cells.shape == (2, 2)
    assert cells[0, 0] == patch_map[:4, :4].sum()
    assert cells[1, 1] == patch_map[4:, 4:].sum()
    assert cells.sum() == patch_map.sum()


def test_review_order_puts_the_most_unsure_cell_first_and_ties_in_reading_order():
    # 2 x 3 cells of 2 x 2 patches; flat weights everywhere, people only in cell (1, 0), a few in (0, 2).
    weights = np.full((5, 4, 6), 0.2)
    density = np.zeros((4 * K, 6 * K))
    density[2 * K:, :2 * K] = 5.0 / (K * K)
    density[:K, 5 * K:] = 1.0 / (K * K)
    order = unc.review_order(prediction(weights, density), (2, 3), cell=2)
    assert order.tolist() == [[1, 0], [0, 2], [0, 0], [0, 1], [1, 1], [1, 2]]


def test_prediction_exposes_the_score_only_when_asked(monkeypatch):
    torch.manual_seed(0)
    predictor = Predictor(SASNet(SASNetConfig(width_mult=0.125)), device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (96, 130, 3), np.uint8)
    calls = []
    real = unc.patch_scores
    monkeypatch.setattr(unc, "patch_scores", lambda *a, **k: calls.append(1) or real(*a, **k))
    pred = predictor.predict(image)
    assert calls == []  # counting alone never computes it
    assert pred.patch_uncertainty.shape == pred.confidence.shape[1:]
    assert pred.uncertainty == pytest.approx(real(pred).sum())
    assert 0 < pred.uncertainty <= pred.count
    pred.uncertainty
    assert calls == [1]  # computed once


def test_count_json_carries_the_image_score(tmp_path, capsys):
    import cv2

    from sasnet_core.cli import main
    from sasnet_core.weights.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = SASNet(SASNetConfig(width_mult=0.125))
    weights = save_checkpoint(tmp_path / "tiny.pth", model)
    image = np.random.default_rng(2).integers(0, 255, (96, 128, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image[:, :, ::-1])
    assert main(["count", str(tmp_path / "a.png"), "--weights", str(weights), "--json", "--no-progress"]) == 0
    rec = json.loads(capsys.readouterr().out)
    expected = Predictor(model, device="cpu").predict(image).uncertainty
    assert math.isfinite(rec["uncertainty"])
    assert rec["uncertainty"] == pytest.approx(expected, abs=1e-3)


def _benchmark():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_uncertainty.py"
    spec = importlib.util.spec_from_file_location("bench_uncertainty", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_simulated_review_counts_the_error_of_the_first_fifth_of_the_cells():
    bench = _benchmark()
    errors = np.array([10.0, 5, 0, 0, 0, 0, 0, 0, 0, 5])  # 20 people wrong in ten cells
    by_score, random, best = bench.review_shares(np.arange(10.0)[::-1], errors, seeds=400)
    assert by_score == pytest.approx(15 / 20)  # cells 0 and 1 first
    assert best == pytest.approx(15 / 20)
    assert random == pytest.approx(0.2, abs=0.03)  # a random fifth holds a fifth of the error
    assert bench.review_shares(np.arange(10.0), errors, seeds=1)[0] == pytest.approx(5 / 20)


def test_benchmark_runs_on_real_annotated_images_with_a_random_model(capsys):
    from _data_paths import STREET_B, need

    assert _benchmark().main([f"{need(STREET_B)}:test", "--limit", "1", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "RANDOM weights" in out
    for method in unc.METHODS:
        assert method in out
    assert "random order" in out and "best order" in out
