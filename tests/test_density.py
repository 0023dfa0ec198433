"""Ground-truth density maps: exact parity with the released preprocessing, counts."""

import numpy as np
import pytest
from _data_paths import SHANGHAITECH_A, UCF_CC_50, need
from _released_density import generate_density_map, matlab_style_gauss2D  # the oracle

from sasnet_core.annotations.density import density_map, inside_image


def _ucf(n):
    from sasnet_core.annotations.formats import read_points
    from sasnet_core.io.imageio import image_size

    need(UCF_CC_50 / f"{n}_ann.mat")
    w, h = image_size(UCF_CC_50 / f"{n}.jpg")
    return read_points(UCF_CC_50 / f"{n}_ann.mat", report=[]).points, (h, w)


def test_parity_with_released_code_on_random_edge_cases():
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        pts = rng.uniform(-12, 72, (int(rng.integers(0, 40)), 2))  # inside, borders, outside
        sigma = float(rng.choice([4.0, 2.5, 1.0, 0.5]))
        f = int(rng.choice([15, 1, 3, 5, 21]))
        ref = generate_density_map((h, w), pts, f, sigma)
        ours = density_map(pts, (h, w), sigma, f, drop_outside=False)
        assert ours.shape == (h, w)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_parity_default_mode_for_points_inside_image():
    rng = np.random.default_rng(1)
    pts = np.concatenate([rng.uniform(0, [200, 100], (500, 2)),
                          [[0, 0], [199.9, 99.9], [200.5, 100.5], [0.2, 50]]])  # edges; 1-based edge
    assert inside_image(pts, (100, 200)).all()
    np.testing.assert_allclose(density_map(pts, (100, 200)),
                               generate_density_map((100, 200), pts), rtol=0, atol=1e-12)


def test_floor_and_one_based_placement_quirk():
    d = density_map(np.array([[10.7, 20.2]]), (40, 40))
    # floor -> (10, 20), read 1-based -> 0-based pixel (col 9, row 19) holds the peak
    assert np.unravel_index(d.argmax(), d.shape) == (19, 9)


def test_border_kernel_is_fresh_centred_gaussian_not_a_crop():
    d = density_map(np.array([[1.0, 1.0]]), (30, 30))  # window cropped to 8 x 8
    np.testing.assert_allclose(d[:8, :8], matlab_style_gauss2D((8, 8), 4.0), atol=1e-15)
    assert d.sum() == pytest.approx(1.0, abs=1e-12)


def test_outside_points_dropped_by_default_and_clamped_in_parity_mode():
    pts = np.array([[5.0, 5.0], [-30.0, 8.0], [500.0, 5.0], [8.0, 41.5]])
    d = density_map(pts, (40, 50))
    assert d.sum() == pytest.approx(1.0, abs=1e-12)  # only the first is on the image
    p = density_map(pts, (40, 50), drop_outside=False)
    assert p.sum() == pytest.approx(4.0, abs=1e-12)  # released: every point lands somewhere
    np.testing.assert_allclose(p, generate_density_map((40, 50), pts), atol=1e-12)


def test_every_map_sums_to_count_on_real_data():
    pts, shape = _ucf(1)
    d = density_map(pts, shape)
    assert len(pts) == 4633
    assert d.sum() == pytest.approx(inside_image(pts, shape).sum(), abs=1e-8)
    np.testing.assert_allclose(d, generate_density_map(shape, pts), atol=1e-12)


def test_shanghaitech_map_sums_to_published_count():
    from sasnet_core.annotations.formats import read_points
    from sasnet_core.io.imageio import image_size

    gt = need(SHANGHAITECH_A / "test_data" / "ground-truth" / "GT_IMG_4.mat")
    w, h = image_size(SHANGHAITECH_A / "test_data" / "images" / "IMG_4.jpg")
    assert density_map(read_points(gt).points, (h, w)).sum() == pytest.approx(413, abs=1e-8)


def test_fixed_mode_matches_released_loop_on_the_densest_ucf_image():
    # The 10x speed-up is measured by benchmarks/bench_density.py; here only the result.
    pts, shape = _ucf(1)
    np.testing.assert_allclose(density_map(pts, shape, drop_outside=False), generate_density_map(shape, pts),
                               rtol=0, atol=1e-12)


def test_adaptive_mode_sums_to_count_and_is_local():
    pts, shape = _ucf(1)
    d = density_map(pts, shape, adaptive=True)
    assert d.sum() == pytest.approx(inside_image(pts, shape).sum(), rel=1e-9)
    # dense crowd -> small kernels; an isolated pair far apart -> wide kernels
    pair = density_map(np.array([[10.0, 10.0], [90.0, 90.0]]), (100, 100), adaptive=True)
    assert pair.sum() == pytest.approx(2.0) and pair[10, 10] < 0.01
    tight = density_map(np.array([[50.0, 50.0], [52.0, 50.0]]), (100, 100), adaptive=True)
    assert tight[50, 50] > 0.1


def test_degenerate_inputs():
    assert density_map(np.zeros((0, 2)), (5, 6)).shape == (5, 6)
    assert density_map([[1.0, 1.0]], (0, 4)).shape == (0, 4)
    one = density_map([[2.0, 2.0]], (3, 3), adaptive=True)
    assert one.sum() == pytest.approx(1.0)
    dup = density_map([[5.0, 5.0], [5.0, 5.0]], (20, 20), adaptive=True)
    assert np.isfinite(dup).all() and dup.sum() == pytest.approx(2.0)
    with pytest.raises(ValueError):
        density_map([[np.nan, 1.0]], (5, 5))
    with pytest.raises(ValueError):
        density_map([[1.0, 1.0]], (5, 5), kernel_size=4)
