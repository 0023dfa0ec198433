"""How far int8 moves the counts of a trained model, on images it did not calibrate on too.

    python benchmarks/bench_int8.py --weights MODEL.pth [--json FILE]

For each evaluation set (UCF_CC_50 fold 1, ``street_b_layout`` test) the model counts every image
twice, as ``sasnet count SET --precision int8`` and as ``--precision fp32`` (both OpenVINO,
the CPU backend): int8 is calibrated the way the command calibrates it, on up to 8 of the images
being counted (``quantize.calibration_inputs``), so the other images of the set are ones it
never saw. Printed per set: the mean and largest |int8 - fp32| / fp32 over the images, the
difference of the set's total count, and both precisions' MAE against the annotations.

Target (the speed work): int8 counts within 1 % of fp32 on a trained model.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
SETS = {"UCF_CC_50 fold 1": (DATA / "ucf_cc_50", dict(split="test", fold=1)),
        "street_b_layout test": (DATA / "street_b_layout", dict(split="test"))}
TARGET = 0.01


def open_set(path: Path, options: dict):
    from sasnet_core.datasets import open_dataset

    return list(open_dataset(path, **options))


def measure(weights: str, samples: list) -> dict:
    from sasnet_core.engine.inference import Predictor

    images = [s.image_path for s in samples]
    truth = [float(s.count) for s in samples]
    kw = dict(device="cpu", backend="openvino", keep_levels=False)
    counts = {}
    for precision in ("fp32", "int8"):
        predictor = Predictor.from_weights(weights, precision=precision, calibration=images, **kw)
        counts[precision] = [predictor.predict(p).count for p in images]
        del predictor
    rel = [abs(i - f) / max(f, 1.0) for i, f in zip(counts["int8"], counts["fp32"])]
    total_f, total_i = sum(counts["fp32"]), sum(counts["int8"])
    return {"images": len(images), "mean_rel_diff": sum(rel) / len(rel), "max_rel_diff": max(rel),
            "total_rel_diff": abs(total_i - total_f) / max(total_f, 1.0),
            "mae_fp32": sum(abs(c - t) for c, t in zip(counts["fp32"], truth)) / len(truth),
            "mae_int8": sum(abs(c - t) for c, t in zip(counts["int8"], truth)) / len(truth)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="a trained checkpoint or registered name")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    from sasnet_core.engine.quantize import nncf_missing_reason

    reason = nncf_missing_reason()
    if reason:
        sys.exit(f"bench_int8: {reason}")
    with tempfile.TemporaryDirectory(prefix="sasnet-bench-int8-") as tmp:
        os.environ["SASNET_STUDIO_HOME"] = tmp  # an empty cache: int8 is calibrated here
        results = {name: measure(args.weights, open_set(path, opts))
                   for name, (path, opts) in SETS.items() if path.is_dir()}
    print(f"model: {args.weights}; int8 vs fp32, both OpenVINO on the CPU, int8 calibrated on up to "
          "8 of each set's images as `sasnet count --precision int8` does")
    print("| set | images | mean |int8 - fp32| | largest | total count | MAE fp32 | MAE int8 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | {r['images']} | {100 * r['mean_rel_diff']:.2f} % | {100 * r['max_rel_diff']:.2f} % "
              f"| {100 * r['total_rel_diff']:.2f} % | {r['mae_fp32']:.1f} | {r['mae_int8']:.1f} |")
    worst = max(r["mean_rel_diff"] for r in results.values())
    print(f"target: mean difference within {TARGET:.0%}: {'met' if worst <= TARGET else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"weights": args.weights, "sets": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
