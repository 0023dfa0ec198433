"""Ground-truth density speed on the densest UCF_CC_50 image (1.jpg, 4,633 heads).

Fixed mode vs the released per-point loop (prepare_dataset.py, copied below as the baseline);
adaptive mode vs the CSRNet script's per-head scipy.ndimage.gaussian_filter over the whole
image, run on a few heads and extrapolated (the full run takes minutes).

    python benchmarks/bench_density.py [--repeat 7]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "ucf_cc_50"


# The released preprocessing (the baseline) lives beside the tests, which use it as their oracle.
sys.path.insert(0, str(ROOT / "tests"))
from _released_density import generate_density_map as released_density  # noqa: E402


def csrnet_adaptive_per_head_seconds(points, shape, n_heads=5):
    """Time of the CSRNet script's loop body (one full-image gaussian_filter per head)."""
    from scipy.ndimage import gaussian_filter
    from scipy.spatial import KDTree

    tree = KDTree(points.copy(), leafsize=2048)
    distances, _ = tree.query(points, k=4)
    t = time.perf_counter()
    for i in range(n_heads):
        pt2d = np.zeros(shape, dtype=np.float32)
        pt2d[min(int(points[i, 1]), shape[0] - 1), min(int(points[i, 0]), shape[1] - 1)] = 1.0
        sigma = (distances[i][1] + distances[i][2] + distances[i][3]) * 0.1
        gaussian_filter(pt2d, sigma, mode="constant")
    return (time.perf_counter() - t) / n_heads


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    if not (DATA / "1_ann.mat").is_file():
        print(f"UCF_CC_50 not found at {DATA}; nothing to benchmark")
        return 1
    from sasnet_core.annotations.density import density_map
    from sasnet_core.annotations.formats import read_points
    from sasnet_core.io.imageio import image_size

    ann = read_points(DATA / "1_ann.mat", report=[])
    w, h = image_size(DATA / "1.jpg")
    pts, shape = ann.points, (h, w)
    print(f"UCF_CC_50 1.jpg: {len(pts)} heads, {w}x{h}, median of {args.repeat} runs")

    density_map(pts, shape)  # warm-up (imports, caches)
    t_ref, ref = timed(lambda: released_density(shape, pts), max(3, args.repeat // 2))
    t_fix, fix = timed(lambda: density_map(pts, shape, drop_outside=False), args.repeat)
    print(f"released per-point loop   {t_ref * 1e3:8.1f} ms")
    print(f"density_map fixed         {t_fix * 1e3:8.1f} ms   speed-up {t_ref / t_fix:5.1f}x   "
          f"max |diff| {np.abs(ref - fix).max():.1e}   sum {fix.sum():.3f}")
    t_ad, ad = timed(lambda: density_map(pts, shape, adaptive=True), max(3, args.repeat // 2))
    per_head = csrnet_adaptive_per_head_seconds(pts, shape)
    print(f"density_map adaptive      {t_ad * 1e3:8.1f} ms   sum {ad.sum():.3f}")
    print(f"CSRNet per-head filter    {per_head * 1e3:8.1f} ms/head x {len(pts)} heads = "
          f"{per_head * len(pts):.0f} s (extrapolated)   speed-up {per_head * len(pts) / t_ad:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
