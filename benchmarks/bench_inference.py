"""Inference speed and memory: the authors' plain forward against the engine's fp32 and bf16 paths.

    python benchmarks/bench_inference.py            # speed at 1024x768 + 4K peak memory
    python benchmarks/bench_inference.py --skip-4k  # speed only

Weights are random in the released layout (He-initialised, realistic BatchNorm statistics): speed
and memory do not depend on the values, and the count comparisons are relative.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch


def released_like_model(seed: int = 0):
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
    return model


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN picks its kernels on the first call
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def speed(width: int, height: int, repeats: int) -> dict:
    from sasnet_core.inference import Predictor

    model = released_like_model()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    x = ((torch.from_numpy(image).float() / 255 - mean) / std).permute(2, 0, 1)[None].contiguous()

    def plain():  # the authors' main.py: eager fp32 NCHW forward under no_grad, count = sum / 1000
        with torch.no_grad():
            return float(model(x).density.sum()) / 1000.0

    fp32 = Predictor(model, device="cpu", precision="fp32", tile=0, keep_levels=False)
    bf16 = Predictor(model, device="cpu", precision="bf16", tile=0, keep_levels=False)
    t_plain = best_of(plain, repeats)
    t_fp32 = best_of(lambda: fp32.predict(image), repeats)
    t_bf16 = best_of(lambda: bf16.predict(image), repeats)
    c_plain, c_fp32, c_bf16 = plain(), fp32.predict(image).count, bf16.predict(image).count
    return {
        "size": f"{width}x{height}", "threads": torch.get_num_threads(),
        "plain_fp32_s": t_plain, "engine_fp32_s": t_fp32, "engine_bf16_s": t_bf16,
        "fp32_speedup": t_plain / t_fp32, "bf16_speedup": t_plain / t_bf16,
        "fp32_count_rel_diff": abs(c_fp32 - c_plain) / c_plain,
        "bf16_count_rel_diff": abs(c_bf16 - c_plain) / c_plain,
    }


def tiling_agreement(width: int, height: int) -> dict:
    """Count of a tiled pass (the default budget's tiles) against one untiled pass, full model."""
    from sasnet_core.inference import Predictor

    model = released_like_model()
    image = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    whole = Predictor(model, device="cpu", precision="bf16", tile=0, keep_levels=False).predict(image)
    tiled = Predictor(model, device="cpu", precision="bf16", tile=512, keep_levels=False).predict(image)
    return {"tiles": tiled.tiles, "rel_diff": abs(tiled.count - whole.count) / whole.count}


def peak_rss_gb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: on Linux ru_maxrss survives
    exec, so a child started by a big parent would report the parent's size."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def peak_memory_child(width: int, height: int, precision: str) -> None:
    """Runs in a fresh process so ru_maxrss is this image's peak alone."""
    from sasnet_core.inference import Predictor

    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    # As `sasnet count` runs it: the loaded model is folded in place, the fused map alone is kept.
    predictor = Predictor(released_like_model(), device="cpu", precision=precision, keep_levels=False,
                          copy_model=False)
    pred = predictor.predict(image)
    print(json.dumps({
        "size": f"{width}x{height}", "precision": precision, "tiles": pred.tiles,
        "seconds": time.perf_counter() - t0, "peak_rss_gb": peak_rss_gb(),
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-4k", action="store_true")
    ap.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        peak_memory_child(int(args._child[0]), int(args._child[1]), args._child[2])
        return
    r = speed(1024, 768, args.repeats)
    print(f"CPU forward at {r['size']}, {r['threads']} threads (best of {args.repeats}):")
    print(f"  plain fp32 eager forward (authors' way)  {r['plain_fp32_s']:7.2f} s")
    print(f"  engine fp32 (folded BN, channels_last)   {r['engine_fp32_s']:7.2f} s   "
          f"x{r['fp32_speedup']:.2f}  (target >= 1.3)  count rel. diff {r['fp32_count_rel_diff']:.1e} (<= 1e-4)")
    print(f"  engine bf16 (autocast, channels_last)    {r['engine_bf16_s']:7.2f} s   "
          f"x{r['bf16_speedup']:.2f}  (target >= 2.5)  count rel. diff {r['bf16_count_rel_diff']:.2%} (<= 0.5%)")
    t = tiling_agreement(1920, 1080)
    print(f"tiled vs untiled count at 1920x1080 ({t['tiles']} tiles of 512 + 96 px margin): "
          f"rel. diff {t['rel_diff']:.3%} (target <= 1%)")
    if not args.skip_4k:
        for precision in ("fp32", "bf16"):
            out = subprocess.run([sys.executable, __file__, "--_child", "3840", "2160", precision],
                                 capture_output=True, text=True, check=True)
            m = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"3840x2160 {precision}: {m['tiles']} tiles, {m['seconds']:.1f} s, "
                  f"peak resident memory {m['peak_rss_gb']:.2f} GB (target <= 3 GB)")
    print("GPU path (not measurable here): Predictor(device='cuda', precision='bf16') runs autocast bf16 with "
          "channels_last, batches same-size images up to the memory budget (40% of free GPU memory, max 1 GB "
          "by default; raise memory_budget_mb on big GPUs).")


if __name__ == "__main__":
    main()
