"""Reading ahead while counting: a folder of generated JPEGs counted with and without read-ahead.

    python benchmarks/bench_read_ahead.py                      # 20 images of 1024 x 768, tiny model
    python benchmarks/bench_read_ahead.py --side 3840 --max-side 1920 --width 1.0

The model has random weights (speed does not depend on their values). ``--width`` scales its
channels: the tiny default makes decoding a large share of the time, which is where reading ahead
shows; the full model (1.0) is what users count with. Rounds alternate between the two settings,
the order alternating, after a warm-up over the whole folder; the best and the median wall time
of each are printed, so a busy machine hurts both alike.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def write_folder(folder: Path, n: int, width: int, height: int) -> list[Path]:
    from sasnet_core.io.imageio import write_image

    rng = np.random.default_rng(0)
    base = np.linspace(30, 220, width, dtype=np.float32)[None, :, None]
    paths = []
    for i in range(n):
        image = np.clip(base + rng.normal(0, 30, (height, width, 3)), 0, 255).astype(np.uint8)
        path = folder / f"img_{i:03d}.jpg"
        write_image(path, image)
        paths.append(path)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--side", type=int, default=1024, help="long side of the generated images (4:3)")
    ap.add_argument("--max-side", type=int, default=None)
    ap.add_argument("--width", type=float, default=0.125, help="the model's width multiplier")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from sasnet_core.engine.counting import count_stream, default_read_ahead
    from sasnet_core.engine.inference import Predictor
    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet

    torch.manual_seed(0)
    predictor = Predictor(SASNet(SASNetConfig(width_mult=args.width)), device="cpu", backend=args.backend,
                          max_side=args.max_side, keep_levels=False)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_folder(Path(tmp), args.images, args.side, args.side * 3 // 4)
        # Warm-up over the whole folder: every batch shape compiled (OpenVINO) or tuned (oneDNN).
        list(count_stream(predictor, paths, batch_size=args.batch_size, maps=False))
        settings = {"read_ahead=0": 0, f"read_ahead={default_read_ahead(args.batch_size)}": None}
        times: dict[str, list[float]] = {name: [] for name in settings}
        for k in range(args.rounds):
            for name, depth in list(settings.items())[:: 1 if k % 2 == 0 else -1]:  # alternate who goes first
                t0 = time.perf_counter()
                results = list(count_stream(predictor, paths, batch_size=args.batch_size, maps=False,
                                            read_ahead=depth))
                times[name].append(time.perf_counter() - t0)
                assert len(results) == len(paths) and not any(r.skipped for r in results)
    print(f"{args.images} images {args.side} x {args.side * 3 // 4}, max side {args.max_side}, "
          f"width {args.width}, batch {args.batch_size}, {predictor.backend} {predictor.precision}, "
          f"{torch.get_num_threads()} torch threads")
    base = min(times["read_ahead=0"])
    for name, t in times.items():
        print(f"  {name:14s} best {min(t):6.2f} s  median {statistics.median(t):6.2f} s  "
              f"({base / min(t):.2f}x)")


if __name__ == "__main__":
    main()
