"""Activation memory per input pixel of one forward pass, per backend and precision: the figures
behind ``sasnet_core.inference.BYTES_PER_PIXEL`` (the memory budget that decides tiling and
batching).

    python benchmarks/bench_memory.py                        # every backend and precision
    python benchmarks/bench_memory.py --pairs openvino:bf16  # one of them
    python benchmarks/bench_memory.py --weights trained.pth --json memory.json

Method: a fresh process loads the model as ``sasnet count`` does (folded in place, the fused map
alone kept), counts ONE image untiled, and reports its peak resident memory (VmHWM). Done at two
sizes, the difference of the peaks divided by the difference of the pixels is the cost of one
more pixel: the weights, the compiled model and the libraries cancel out. The OpenVINO IR is
converted (and quantized, with the same calibration images every time) once beforehand, so no
run pays for that; each run compiles its own shape, as a first count of a new size does.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PAIRS = ("torch:fp32", "torch:bf16", "openvino:fp32", "openvino:bf16", "openvino:int8")
SIZES = ((960, 540), (1920, 1080))


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: on Linux ru_maxrss survives
    exec, so a child started by a big parent would report the parent's size."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def random_weights(path: Path, seed: int = 0) -> Path:
    """A full-size checkpoint in the released layout with random weights (He-initialised,
    realistic BatchNorm statistics): speed and memory do not depend on the values."""
    import torch

    from sasnet_core.checkpoint import save_checkpoint
    from sasnet_core.model import SASNet

    torch.manual_seed(seed)
    model = SASNet().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return save_checkpoint(path, model, {"name": "random weights in the released layout"})


def _child(backend: str, precision: str, width: int, height: int, weights: str, cache: str) -> None:
    import numpy as np

    from sasnet_core.inference import Predictor

    calibration = None
    if precision == "int8":  # the same few images in every run: quantized once, then read from the cache
        calibration = [np.random.default_rng(i).integers(0, 256, (540, 960, 3), dtype=np.uint8)
                       for i in range(4)]
    predictor = Predictor.from_weights(weights, device="cpu", backend=backend, precision=precision,
                                       tile=0, keep_levels=False, ov_cache=cache, calibration=calibration)
    built = peak_rss_mb()
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    pred = predictor.predict(image)
    print(json.dumps({"backend": predictor.backend, "precision": predictor.precision,
                      "pixels": width * height, "tiles": pred.tiles, "built_mb": built,
                      "peak_mb": peak_rss_mb()}))


def run_child(backend: str, precision: str, width: int, height: int, weights: Path, cache: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--_child", backend, precision, str(width), str(height),
                          str(weights), str(cache)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "child failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def quantize_available() -> bool:
    try:
        import sasnet_core.quantize  # noqa: F401
    except ImportError:
        return False
    return True


def measure(pairs, weights: Path, cache: Path) -> list[dict]:
    # Convert the IR (and quantize) once, so the runs below read it instead of tracing the model.
    run_child("openvino", "fp32", 64, 64, weights, cache)
    rows = []
    for pair in pairs:
        backend, precision = pair.split(":")
        if precision == "int8" and not quantize_available():
            print(f"{pair}: skipped (sasnet_core.quantize is not there)", file=sys.stderr)
            continue
        if precision == "int8":
            run_child(backend, precision, 64, 64, weights, cache)
        small, big = (run_child(backend, precision, w, h, weights, cache) for w, h in SIZES)
        bpp = (big["peak_mb"] - small["peak_mb"]) * 2**20 / (big["pixels"] - small["pixels"])
        rows.append({"backend": backend, "precision": precision, "bytes_per_pixel": round(bpp),
                     "built_mb": round(big["built_mb"]), "peak_mb_small": round(small["peak_mb"]),
                     "peak_mb_big": round(big["peak_mb"])})
        print(f"{pair:15s} {bpp:6.0f} B/pixel   built {big['built_mb']:5.0f} MB   peak "
              f"{small['peak_mb']:5.0f} MB at {SIZES[0][0]}x{SIZES[0][1]}, "
              f"{big['peak_mb']:5.0f} MB at {SIZES[1][0]}x{SIZES[1][1]}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, help="a checkpoint (default: random weights, released layout)")
    ap.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=PAIRS, metavar="BACKEND:PRECISION")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    ap.add_argument("--_child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        b, p, w, h, weights, cache = args._child
        _child(b, p, int(w), int(h), weights, cache)
        return
    with tempfile.TemporaryDirectory(prefix="sasnet-bench-memory-") as tmp:
        weights = args.weights or random_weights(Path(tmp) / "random.pth")
        os.environ["SASNET_STUDIO_HOME"] = str(Path(tmp) / "home")  # no registry or cache of the user's
        rows = measure(args.pairs, weights, Path(tmp) / "openvino")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
