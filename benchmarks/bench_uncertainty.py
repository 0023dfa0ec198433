"""How well each uncertainty score finds the model's errors, patch by patch and in a simulated review.

    python benchmarks/bench_uncertainty.py --weights MODEL.pth [DATASET[:SPLIT] ...]
                                           [--limit N] [--cell 4] [--seeds 20] [--max-side N]

DATASET is a data set folder (any layout ``sasnet_core.datasets`` reads), SPLIT one of its splits
(default: ../shared/data/ucf_cc_50:fold1 and ../shared/data/street_b_layout:test). For every
candidate of ``sasnet_core.engine.uncertainty.METHODS`` it prints, per data set:

- spearman: the Spearman rank correlation, over all 32 x 32 patches of all images, between the
  patch's score and its absolute count error |model count - annotated heads in the patch|;
- top20: the simulated review. Each image is divided into review cells of CELL x CELL patches;
  correcting a cell removes its error |model count - annotated heads in the cell|. Correcting the
  first 20 % of the cells in score order removes this share of the image's total absolute error
  (the sum over its cells), averaged over the images.

and, for reference, the same share for a random order (averaged over SEEDS orders) and for the
best possible order (cells sorted by their true error).

Without --weights a random tiny model is used: that runs the whole measurement (a smoke test), but
its figures mean nothing. Only a trained model's figures can choose the default score; tune on
UCF_CC_50 folds 2-5 or street_b_layout/train_data, never on shanghaitech_a_sample (a holdout).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
DEFAULT_SETS = (f"{DATA / 'ucf_cc_50'}:fold1", f"{DATA / 'street_b_layout'}:test")
SHARE = 0.2  # the first fifth of the cells


def review_shares(scores: np.ndarray, errors: np.ndarray, seeds: int) -> tuple[float, float, float]:
    """(score order, random order, best order): share of the total error in the first 20 % of cells."""
    s, e = scores.ravel(), errors.ravel()
    total = float(e.sum())
    k = max(1, math.ceil(SHARE * e.size))
    by_score = float(e[np.argsort(-s, kind="stable")[:k]].sum()) / total
    rng = np.random.default_rng(0)
    random = float(np.mean([e[rng.permutation(e.size)[:k]].sum() for _ in range(seeds)])) / total
    best = float(np.sort(e)[::-1][:k].sum()) / total
    return by_score, random, best


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")  # a constant score ranks nothing
    return float(spearmanr(x, y).statistic)


def measure(predictor, samples, methods, cell: int, seeds: int) -> dict:
    from sasnet_core.engine import uncertainty as unc

    patch_scores = {m: [] for m in methods}
    patch_errors = []
    shares = {m: [] for m in methods}
    reference = []
    for sample in samples:
        pred = predictor.predict(sample.load_image())
        counts = unc.patch_counts(pred)
        heads = unc.points_per_patch(pred, sample.points)
        patch_errors.append(np.abs(counts - heads).ravel())
        cell_errors = np.abs(unc.cell_sums(counts, cell) - unc.cell_sums(heads, cell))
        useful = cell_errors.sum() > 0
        for m in methods:
            score = unc.patch_scores(pred, m)
            patch_scores[m].append(score.ravel())
            if useful:
                shares[m].append(review_shares(unc.cell_sums(score, cell), cell_errors, seeds)[0])
        if useful:
            reference.append(review_shares(np.zeros_like(cell_errors), cell_errors, seeds)[1:])
        print(f"  {Path(sample.image_path).name}: {len(sample.points)} heads, model {pred.count:.1f}, "
              f"{counts.size} patches", flush=True)
    errors = np.concatenate(patch_errors)
    out = {m: (spearman(np.concatenate(patch_scores[m]), errors), _mean(shares[m])) for m in methods}
    ref = np.array(reference) if reference else np.full((1, 2), np.nan)
    return {"methods": out, "random": float(ref[:, 0].mean()), "best": float(ref[:, 1].mean()),
            "images": len(samples)}


def _mean(values) -> float:
    return float(np.mean(values)) if values else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", nargs="*", default=list(DEFAULT_SETS), metavar="DATASET[:SPLIT]")
    ap.add_argument("--weights", help="a trained checkpoint or registered name (default: random tiny model)")
    ap.add_argument("--width-mult", type=float, default=0.125, help="random model only: its width")
    ap.add_argument("--limit", type=int, help="at most this many images per data set")
    ap.add_argument("--cell", type=int, default=4, help="review cell side in patches (4 = 128 px)")
    ap.add_argument("--seeds", type=int, default=20, help="random review orders to average")
    ap.add_argument("--max-side", type=int, help="downscale images whose long side exceeds this")
    args = ap.parse_args(argv)

    import torch

    from sasnet_core.datasets import open_dataset
    from sasnet_core.engine.inference import Predictor
    from sasnet_core.engine.uncertainty import DEFAULT_METHOD, METHODS
    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet

    options = dict(device="cpu", max_side=args.max_side, keep_levels=True)  # "spread" needs the levels
    if args.weights:
        predictor = Predictor.from_weights(args.weights, **options)
        print(f"model: {args.weights}")
    else:
        torch.manual_seed(0)
        predictor = Predictor(SASNet(SASNetConfig(width_mult=args.width_mult)), **options)
        print(f"model: RANDOM weights (width {args.width_mult}): a smoke test, the figures mean nothing")
    for spec in args.datasets:
        root, _, split = spec.rpartition(":") if ":" in Path(spec).name else (spec, "", None)
        samples = list(open_dataset(root, split=split or None))[: args.limit]
        print(f"{spec}: {len(samples)} images, review cells of {args.cell} x {args.cell} patches")
        res = measure(predictor, samples, METHODS, args.cell, args.seeds)
        print(f"  {'score':<15} {'spearman':>9} {'top20':>7}")
        for m, (rho, top) in res["methods"].items():
            mark = "  (default)" if m == DEFAULT_METHOD else ""
            print(f"  {m:<15} {rho:>9.3f} {top:>7.1%}{mark}")
        print(f"  {'random order':<15} {'':>9} {res['random']:>7.1%}")
        print(f"  {'best order':<15} {'':>9} {res['best']:>7.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
