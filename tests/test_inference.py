"""The inference engine: batching, tiling, downscaling, precision and head points."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _data_paths import UCF_CC_50, need

from sasnet_core.engine.inference import Predictor
from sasnet_core.engine.tiling import core_for_budget, plan_tiles
from sasnet_core.io.imageio import read_image
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.fast_forward import fold_batchnorm, lean_forward
from sasnet_core.model.sasnet import SASNet

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = SASNet(SASNetConfig(width_mult=0.125)).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them is really exercised
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
    return m


@pytest.fixture(scope="module")
def crowd():
    path = DATA / "shanghaitech_a_sample" / "test_data" / "images" / "IMG_4.jpg"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    return read_image(path)[:320, :448]


def test_folded_lean_forward_matches_the_model(model):
    x = torch.randn(2, 3, 64, 96)
    folded = fold_batchnorm(model)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()), "original must stay intact"
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        ref = model(x)
        for out in (folded(x), lean_forward(folded, x)):
            for a, b in zip(ref, out):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_prediction_is_in_people_and_original_pixels(model, crowd):
    pred = Predictor(model, device="cpu").predict(crowd)
    h, w = crowd.shape[:2]
    assert pred.density.shape == (h, w) and pred.density.dtype == np.float32
    assert pred.image_size == (w, h)
    assert pred.count == pytest.approx(float(pred.density.sum(dtype=np.float64)), rel=1e-5)
    assert pred.level_densities.shape == (5, h, w)
    assert pred.confidence.shape == (5, h // 32, w // 32)
    np.testing.assert_allclose(pred.confidence.sum(0), 1.0, rtol=1e-5)
    assert set(np.unique(pred.level_map)) <= {1, 2, 3, 4, 5}
    assert pred.patch_rows[0] == 0 and pred.patch_rows[-1] == h and pred.patch_cols[-1] == w
    i, j = pred.patch_at(40.0, 70.0)
    assert (i, j) == (2, 1)
    assert pred.patch_count(i, j) == pytest.approx(float(pred.density[64:96, 32:64].sum()), rel=1e-5)
    assert pred.patch_at(-1, 5) is None and pred.patch_at(w + 1, 5) is None


def test_batched_images_give_the_same_results_as_single_ones(model, crowd):
    p = Predictor(model, device="cpu")
    a, b = crowd[:160, :224], crowd[160:, 224:]
    other = crowd[:96, :128]  # a different size goes in its own batch
    batch = p.predict_batch([a, other, b])
    for img, pred in zip([a, other, b], batch):
        single = p.predict(img)
        assert pred.count == pytest.approx(single.count, rel=1e-4)
        np.testing.assert_allclose(pred.density, single.density, rtol=1e-3, atol=1e-7)


def test_tiled_count_is_within_one_percent_of_the_untiled_count(model, crowd):
    whole = Predictor(model, device="cpu", tile=0).predict(crowd)
    tiled = Predictor(model, device="cpu", tile=128).predict(crowd)
    assert tiled.tiles == 12 and whole.tiles == 1
    assert abs(tiled.count - whole.count) / whole.count < 0.01
    assert tiled.density.shape == whole.density.shape
    # The selected levels of most patches agree as well.
    assert (tiled.level_map == whole.level_map).mean() > 0.9


def test_memory_budget_switches_tiling_on(model, crowd):
    p = Predictor(model, device="cpu", memory_budget_mb=150)  # ~68k pixels per pass at fp32
    pred = p.predict(crowd)
    assert pred.tiles > 1
    ref = Predictor(model, device="cpu", tile=0).predict(crowd)
    assert abs(pred.count - ref.count) / ref.count < 0.01


def test_plan_tiles_cover_every_pixel_once():
    tiles = plan_tiles(700, 1000, core=256, margin=64)
    owned = np.zeros((700, 1000), int)
    for t in tiles:
        owned[t.cy0 : t.cy1, t.cx0 : t.cx1] += 1
        assert t.y0 % 32 == 0 and t.x0 % 32 == 0
        assert t.y0 <= t.cy0 and t.cy1 <= t.y1 and t.x0 <= t.cx0 and t.cx1 <= t.x1
    assert (owned == 1).all()
    assert core_for_budget(512 * 512, 64) == 384


def test_downscale_keeps_count_in_original_units(model, crowd):
    pred = Predictor(model, device="cpu", max_side=224).predict(crowd)
    assert pred.scale == pytest.approx(0.5)
    assert pred.density.shape == crowd.shape[:2]
    assert float(pred.density.sum()) == pytest.approx(pred.count, rel=1e-4)
    small = Predictor(model, device="cpu").predict(
        __import__("cv2").resize(crowd, (224, 160), interpolation=__import__("cv2").INTER_AREA)
    )
    assert pred.count == pytest.approx(small.count, rel=1e-4)


def test_images_smaller_than_a_patch_are_padded_not_refused(model):
    tiny = np.full((20, 25, 3), 128, np.uint8)
    pred = Predictor(model, device="cpu").predict(tiny)
    assert pred.density.shape == (20, 25)
    assert np.isfinite(pred.count)


def test_grayscale_and_16bit_arrays_are_accepted(model):
    gray = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    a = Predictor(model, device="cpu").predict(gray)
    b = Predictor(model, device="cpu").predict(np.repeat(gray[:, :, None], 3, 2))
    assert a.count == pytest.approx(b.count, rel=1e-6)


def test_bf16_count_is_close_to_fp32(model, crowd):
    fp32 = Predictor(model, device="cpu", precision="fp32").predict(crowd)
    bf16 = Predictor(model, device="cpu", precision="bf16").predict(crowd)
    assert abs(bf16.count - fp32.count) / fp32.count < 0.02


def test_heads_number_equals_rounded_count(model, crowd):
    pred = Predictor(model, device="cpu").predict(crowd)
    heads = pred.heads
    assert len(heads) == round(pred.count)
    h, w = crowd.shape[:2]
    assert (heads[:, 0] >= 0).all() and (heads[:, 0] < w).all() and (heads[:, 1] < h).all()


def test_heads_find_separate_blobs():
    from sasnet_core.annotations.density import density_map
    from sasnet_core.engine.heads import estimate_heads

    pts = np.array([[20.5, 30.5], [60.5, 30.5], [40.5, 70.5]])
    dens = density_map(pts, (100, 100))
    found = estimate_heads(dens)
    assert len(found) == 3
    # each true head has an estimated point within 2 pixels
    d = np.linalg.norm(found[:, None, :] - pts[None, :, :], axis=2)
    assert (d.min(0) <= 2.0).all()
    dense = density_map(np.random.default_rng(1).uniform(10, 40, (40, 2)), (50, 50))
    assert len(estimate_heads(dense)) == 40  # merged blobs are filled up to the count


def test_heads_of_the_densest_real_crowd_are_never_on_adjacent_pixels():
    """UCF_CC_50 image 1 (4,633 heads): its ground truth has no two heads 1.5 pixels apart, and
    the starting points a person corrects must not either (a smoothed map's plateaus of equal
    values once gave rows of points on neighbouring pixels)."""
    from scipy.spatial import cKDTree

    from sasnet_core.annotations.density import density_map
    from sasnet_core.datasets import open_dataset
    from sasnet_core.engine.heads import estimate_heads
    from sasnet_core.io.imageio import image_size

    sample = open_dataset(need(UCF_CC_50))[0]
    w, h = image_size(sample.image_path)
    heads = estimate_heads(density_map(sample.points, (h, w)))
    assert len(heads) == 4633
    nearest, _ = cKDTree(heads).query(heads, k=2)
    assert nearest[:, 1].min() > 1.5
    to_truth, _ = cKDTree(sample.points).query(heads)
    assert np.median(to_truth) < 2.5  # and they sit on the heads


@pytest.mark.parametrize("kwargs,match", [
    ({"precision": "fp8"}, "precision"), ({"tile": -1}, "tile"), ({"max_side": 8}, "max_side"),
    ({"device": "cuda:7"}, "cuda"),
])
def test_bad_settings_are_explained(model, kwargs, match):
    if kwargs.get("device", "").startswith("cuda") and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match=match):
        Predictor(model, **kwargs)


def test_heads_of_a_merged_crowd_stay_in_the_crowd_not_on_faint_background():
    from sasnet_core.annotations.density import density_map
    from sasnet_core.engine.heads import estimate_heads

    rng = np.random.default_rng(2)
    crowd = rng.uniform([60, 60], [120, 100], (150, 2))  # 150 heads merged into one dense blob
    dens = density_map(crowd, (200, 200)) + rng.uniform(0, 2e-5, (200, 200))  # faint noise, ~0.8 people
    heads = estimate_heads(dens)
    assert len(heads) == round(dens.sum())
    inside = (heads[:, 0] > 50) & (heads[:, 0] < 130) & (heads[:, 1] > 50) & (heads[:, 1] < 110)
    assert inside.mean() >= 0.99


@pytest.mark.parametrize("backend,precision", [
    ("torch", "fp32"), ("torch", "bf16"), ("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8"),
])
def test_full_hd_is_counted_in_one_pass_with_8_gb_free(model, backend, precision, monkeypatch, tmp_path):
    import sasnet_core.engine.inference as inference

    if precision == "int8":
        pytest.importorskip("nncf")
    monkeypatch.setattr(inference, "_available_memory_mb", lambda device: 8192.0)
    image = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    p = Predictor(model, device="cpu", backend=backend, precision=precision, keep_levels=False,
                  ov_cache=tmp_path, calibration=[image[:256, :256]])
    assert (p.backend, p.precision) == (backend, precision)
    assert p.predict(image).tiles == 1  # and so every smaller image (1024 x 768 among them)
