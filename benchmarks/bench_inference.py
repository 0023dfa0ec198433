"""Counting speed and memory of the paths users get, against the authors' forward in the same run.

    python benchmarks/bench_inference.py                          # 1024 x 768, interleaved rounds
    python benchmarks/bench_inference.py --weights trained.pth    # + int8 (calibrated on UCF images)
    python benchmarks/bench_inference.py --ucf --rss4k --json bench.json   # the README's figures

* Baseline: the authors' fp32 forward. ``SASNet`` is the network in the released layout
  (tests/test_model.py pins its output to the authors' code at 1e-7), unfolded, fp32, eval mode,
  ``model(x)`` under ``torch.no_grad``, count = sum / 1000.
* ``sasnet count`` default: the Predictor built exactly as the command builds it from its default
  options (``--precision auto --backend auto``, memory budget from the machine), then OpenVINO
  fp32, torch fp32 (the previous default), torch bf16 (the previous app path) and, with
  ``--weights``, int8. Every path counts through ``Predictor.predict`` with the default tiling,
  so a path that the budget would tile is measured tiled. Rounds are interleaved (every path once
  per round) so a busy machine slows all of them alike; the median of the rounds is reported.
* ``--ucf``: the 50 UCF_CC_50 images through the real command (``sasnet count`` in a fresh process
  with an empty cache, so the new engine pays its conversion and compilations as a new user does)
  against the previous engine in the same run: ``--backend torch --precision fp32`` with the
  previous memory budget (``min(1 GB, 0.4 x free)`` at 1400 bytes per pixel, tiles from that
  budget), reproduced by patching the budget in the benchmark's own process only; and the same
  command once more with the model already converted (every later run). ``--ucf-rounds`` (default
  1) sets how many times.
* ``--rss4k``: peak resident memory (VmHWM) of ``sasnet count`` on a 3840 x 2160 image with
  default options, in a fresh process.
* ``--device cuda``: the GPU path instead: the Predictor ``sasnet count --device cuda`` builds
  (bf16 autocast where the GPU computes bf16, channels_last) at batch 1 and batch 8 of the speed
  image, images per second (median of the rounds, CUDA synchronised), fp32 at batch 1 beside
  it, each bf16 count against fp32's, and the share of the GPU's bf16 peak the default reaches:
  the model's FLOPs per image times images per second over the FLOP/s of a large bf16 matrix
  product measured on the same GPU (``gpu_peak_flops``; close to what the hardware sustains).

Weights: ``--weights FILE``; default: random weights in the released layout (full size): speed
and memory do not depend on the values, and the count differences are then only indicative.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import random_weights  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
UCF = DATA / "ucf_cc_50"

# Runs the `sasnet` command in this interpreter and reports its peak resident memory on stderr
# (VmHWM: the peak of this process alone, which ru_maxrss of a child is not on Linux).
_RUN_CLI = """
import sys
from sasnet_core.cli import main
rc = main(sys.argv[1:])
with open('/proc/self/status') as fh:
    hwm = next(int(l.split()[1]) for l in fh if l.startswith('VmHWM:'))
print(f'peak_rss_kb={hwm}', file=sys.stderr)
sys.exit(rc)
"""
# The previous engine: torch fp32 with the previous memory budget and tile size.
_PREVIOUS_BUDGET = """
import sasnet_core.engine.inference as inference
inference.BYTES_PER_PIXEL[("torch", "fp32")] = 1400
inference.default_budget_mb = lambda device: min(1024.0, 0.4 * inference._available_memory_mb(device))
inference.TILE_BUDGET_MB = float("inf")
"""


def cli_run(argv: list[str], home: Path, previous_engine: bool = False) -> dict:
    """Wall time, peak memory and stdout of one `sasnet` command in a fresh process."""
    code = (_PREVIOUS_BUDGET if previous_engine else "") + _RUN_CLI
    env = {**os.environ, "SASNET_STUDIO_HOME": str(home), "SASNET_PROGRESS": "0"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"sasnet {' '.join(argv)} failed: {out.stderr.strip()[-500:]}")
    kb = next(int(line.split("=")[1]) for line in out.stderr.splitlines() if line.startswith("peak_rss_kb="))
    engine = next((line for line in out.stderr.splitlines() if "counting with" in line), "")
    return {"wall_s": wall, "peak_rss_mb": kb / 1024, "stdout": out.stdout, "engine": engine.strip()}


def bench_image(width: int, height: int) -> np.ndarray:
    """A real crowd (UCF_CC_50 image 10, resized) when the shared data is there, else noise."""
    import cv2

    from sasnet_core.io.imageio import read_image

    path = UCF / "10.jpg"
    if path.is_file():
        return cv2.resize(read_image(path), (width, height), interpolation=cv2.INTER_AREA)
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def calibration_images() -> list[Path]:
    """A handful of UCF_CC_50 images for int8, as `sasnet count` passes the images it counts."""
    return sorted(UCF.glob("*.jpg"))[:8]


def default_count_predictor(weights: Path, calibration):
    """The Predictor `sasnet count` builds from its default options."""
    from sasnet_core.cli import build_parser
    from sasnet_core.cli.engine_opts import predictor_from_args

    args = build_parser().parse_args(["count", "image.jpg", "--weights", str(weights)])
    return predictor_from_args(args, "count", keep_levels=False, calibration=calibration)


def model_flops(model, x) -> float:
    """Floating-point operations of one forward pass (a multiply-add counts two), by torch's
    own counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return float(counter.get_total_flops())


def cpu_peak_flops(precision: str, seconds: float = 3.0) -> float:
    """What this CPU's convolution kernels reach in ``precision`` ("fp32" or "bf16"): FLOP/s of
    one large 3 x 3 convolution (256 -> 256 channels, 128 x 128, VGG's shape) compiled by
    OpenVINO with that precision hint, two threads as every path here. It tells how far from
    the hardware's floor a path runs: on a CPU without AMX, bf16 runs at about twice fp32's
    rate, not eight times, which caps every ratio against the fp32 baseline."""
    import torch

    from sasnet_core.engine.openvino_backend import load_openvino, shared_core

    ov = load_openvino()

    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).eval()
    x = torch.randn(1, 256, 128, 128)
    with torch.no_grad():
        model = ov.convert_model(conv, example_input=x)
    compiled = shared_core().compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision],
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": torch.get_num_threads()})
    request = compiled.create_infer_request()
    data = x.numpy()
    request.infer({0: data})
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        request.infer({0: data})
        done += 1
    return model_flops(conv, x) * done / (time.perf_counter() - t0)


def speed(weights: Path, width: int, height: int, rounds: int, with_int8: bool) -> dict:
    import torch

    from sasnet_core.engine.inference import Predictor
    from sasnet_core.model.preprocess import model_input
    from sasnet_core.weights.registry import load_model

    image = bench_image(width, height)
    authors, _ = load_model(weights, device="cpu")
    authors.eval()
    x = model_input(image[None], authors.config.block_size).contiguous()

    def authors_forward() -> float:
        with torch.no_grad():
            return float(authors(x).density.sum()) / authors.config.count_scale

    calibration = calibration_images() or [image]
    paths = {"authors' fp32 forward (baseline)": authors_forward}

    def add(name, predictor):
        paths[name] = lambda: predictor.predict(image).count
        return predictor

    default = add("`sasnet count` default", default_count_predictor(weights, calibration))
    default_name = f"`sasnet count` default ({default.engine.describe()})"
    paths[default_name] = paths.pop("`sasnet count` default")
    kw = dict(device="cpu", keep_levels=False)  # OpenVINO: the app's cache, converted once for all
    add("OpenVINO fp32", Predictor.from_weights(weights, backend="openvino", precision="fp32", **kw))
    add("torch fp32 (previous default)", Predictor.from_weights(weights, backend="torch", precision="fp32", **kw))
    add("torch bf16 (previous app path)", Predictor.from_weights(weights, backend="torch", precision="bf16", **kw))
    if with_int8:
        add("OpenVINO int8", Predictor.from_weights(weights, backend="openvino", precision="int8",
                                                   calibration=calibration, **kw))
    counts = {name: fn() for name, fn in paths.items()}  # warm-up: compilation, kernel choice
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    flops = model_flops(authors, x)
    peaks = {p: cpu_peak_flops(p) for p in ("fp32", "bf16")}
    base_name = next(iter(paths))
    base_t, base_c = statistics.median(times[base_name]), counts[base_name]
    rows = [{"path": name, "seconds": statistics.median(times[name]),
             "speedup": base_t / statistics.median(times[name]), "count": counts[name],
             "count_rel_diff": abs(counts[name] - base_c) / max(abs(base_c), 1e-12)}
            for name in paths]
    for row in rows:  # the share of this CPU's peak in the path's arithmetic (none measured for int8)
        kind = None if "int8" in row["path"] else "bf16" if "bf16" in row["path"] else "fp32"
        row["peak_kind"] = kind
        row["peak_share"] = flops / row["seconds"] / peaks[kind] if kind else None
    return {"size": f"{width}x{height}", "threads": torch.get_num_threads(), "rounds": rounds,
            "default_engine": default.engine.describe(), "paths": rows, "cpu": cpu_name(),
            "flops": flops, "peak_flops": peaks,
            "floor_s": {p: flops / peaks[p] for p in peaks}}


def gpu_peak_flops(device, seconds: float = 2.0) -> float:
    """FLOP/s of a large bf16 matrix product on ``device``: the rate its tensor cores sustain,
    against which a path's arithmetic is set (a convolution network does not reach it)."""
    import torch

    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    a @ b  # cuBLAS picks its kernel
    torch.cuda.synchronize(device)
    runs, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        runs += 1
        torch.cuda.synchronize(device)
    return 2.0 * n ** 3 * runs / (time.perf_counter() - t0)


def gpu_speed(weights: Path, width: int, height: int, rounds: int) -> dict:
    """The GPU path: images per second at batch 1 and 8, bf16 (the default) and fp32."""
    import torch

    from sasnet_core.cli import build_parser
    from sasnet_core.cli.engine_opts import predictor_from_args
    from sasnet_core.engine.inference import Predictor
    from sasnet_core.model.preprocess import model_input

    if not torch.cuda.is_available():
        sys.exit("bench_inference: --device cuda needs a CUDA GPU, and torch sees none here")
    args = build_parser().parse_args(["count", "image.jpg", "--weights", str(weights), "--device", "cuda"])
    default = predictor_from_args(args, "count", keep_levels=False)
    fp32 = Predictor.from_weights(weights, device="cuda", precision="fp32", keep_levels=False)
    image = bench_image(width, height)
    rows = []
    for name, predictor, batch in (("`sasnet count --device cuda` default", default, 1),
                                   ("`sasnet count --device cuda` default", default, 8),
                                   ("torch fp32", fp32, 1)):
        images = [image] * batch
        counts = [r.count for r in predictor.predict_batch(images)]  # warm-up: cuDNN's choice
        times = []
        for _ in range(rounds):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            predictor.predict_batch(images)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        rows.append({"path": f"{name} ({predictor.engine.describe()})", "batch": batch,
                     "images_per_s": batch / statistics.median(times), "count": counts[0]})
    base = rows[-1]["count"]
    for row in rows:
        row["count_rel_diff"] = abs(row["count"] - base) / max(abs(base), 1e-12)
    model = fp32.model
    x = model_input(image[None], model.config.block_size).to("cuda")
    flops = model_flops(model, x)
    peak = gpu_peak_flops(torch.device("cuda"))
    for row in rows:
        row["bf16_peak_share"] = flops * row["images_per_s"] / peak
    return {"size": f"{width}x{height}", "gpu": torch.cuda.get_device_name(), "rounds": rounds,
            "flops": flops, "bf16_peak_flops": peak, "paths": rows}


def gpu_table(result: dict) -> str:
    lines = [f"GPU: {result['gpu']}; {result['size']}, median of {result['rounds']} rounds; "
             f"{result['flops'] / 1e9:.0f} GFLOP per image; measured bf16 peak "
             f"{result['bf16_peak_flops'] / 1e12:.0f} TFLOP/s",
             "| path | batch | images/s | count vs fp32 | share of bf16 peak |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for r in result["paths"]:
        lines.append(f"| {r['path']} | {r['batch']} | {r['images_per_s']:.1f} | "
                     f"{100 * r['count_rel_diff']:.2f} % | {100 * r['bf16_peak_share']:.1f} % |")
    return "\n".join(lines)


def cpu_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def ucf(weights: Path, rounds: int, limit: int | None, work: Path) -> dict:
    images = sorted(UCF.glob("*.jpg"))[:limit]
    folder = work / "ucf"
    folder.mkdir(exist_ok=True)
    for p in images:  # the images alone: count takes a folder, and the .mat files are not images
        target = folder / p.name
        if not target.exists():
            target.symlink_to(p)
    argv = ["count", str(folder), "--weights", str(weights), "--no-progress"]
    previous_argv = [*argv, "--backend", "torch", "--precision", "fp32"]
    new, again, old = [], [], []
    for r in range(rounds):  # interleaved; a fresh home (empty caches) every first run
        new.append(cli_run(argv, work / f"home-new-{r}"))
        again.append(cli_run(argv, work / f"home-new-{r}"))  # a later run: the model converted
        old.append(cli_run(previous_argv, work / f"home-old-{r}", previous_engine=True))
    t_new = statistics.median(run["wall_s"] for run in new)
    t_again = statistics.median(run["wall_s"] for run in again)
    t_old = statistics.median(run["wall_s"] for run in old)
    return {"images": len(images), "rounds": rounds, "default_s": t_new, "previous_s": t_old,
            "speedup": t_old / t_new, "default_converted_s": t_again, "speedup_converted": t_old / t_again,
            "default_engine": new[0]["engine"]}


def rss4k(weights: Path, work: Path) -> dict:
    import cv2

    from sasnet_core.io.imageio import write_image

    path = work / "crowd_3840x2160.png"
    write_image(path, cv2.resize(bench_image(1920, 1080), (3840, 2160), interpolation=cv2.INTER_LINEAR))
    run = cli_run(["count", str(path), "--weights", str(weights), "--no-progress"], work / "home-4k")
    return {"size": "3840x2160", "peak_rss_mb": run["peak_rss_mb"], "wall_s": run["wall_s"],
            "engine": run["engine"]}


def table(result: dict) -> str:
    s = result["speed"]
    peak = s["peak_flops"]
    lines = [f"{s.get('cpu', 'CPU')}, {s['threads']} threads, {s['size']}, median of {s['rounds']} "
             "interleaved rounds; baseline: the authors' fp32 forward (tests/test_model.py pins it "
             "to their code at 1e-7)",
             f"One forward pass: {s['flops'] / 1e12:.2f} TFLOP. This CPU's convolution kernels: "
             f"{peak['fp32'] / 1e9:.0f} GFLOP/s fp32, {peak['bf16'] / 1e9:.0f} GFLOP/s bf16 "
             f"(x{peak['bf16'] / peak['fp32']:.1f}), so the floor is {s['floor_s']['fp32']:.2f} s fp32, "
             f"{s['floor_s']['bf16']:.2f} s bf16.",
             "", "| path | seconds | x authors' fp32 forward | count vs authors' fp32 | share of peak |",
             "| --- | --- | --- | --- | --- |"]
    for row in s["paths"]:
        lines.append(f"| {row['path']} | {row['seconds']:.2f} | {row['speedup']:.1f} | "
                     f"{100 * row['count_rel_diff']:.2f} % | "
                     + (f"{100 * row['peak_share']:.0f} % of {row['peak_kind']} |" if row["peak_kind"] else "- |"))
    if "ucf" in result:
        u = result["ucf"]
        lines += ["", f"{u['images']} UCF_CC_50 images, `sasnet count` defaults vs the previous engine "
                      f"(torch fp32, previous budget), median of {u['rounds']}: {u['default_s']:.1f} s vs "
                      f"{u['previous_s']:.1f} s, **{u['speedup']:.1f}x** faster on the first run (the "
                      f"model converted for this CPU on the way); a later run {u['default_converted_s']:.1f} s, "
                      f"**{u['speedup_converted']:.1f}x**"]
    if "rss4k" in result:
        m = result["rss4k"]
        lines += ["", f"3840 x 2160 with `sasnet count` defaults: peak resident memory "
                      f"**{m['peak_rss_mb'] / 1024:.2f} GB** ({m['wall_s']:.1f} s)"]
    return "\n".join(lines)


GPU_NOTE = ("GPU path: torch on CUDA, `--precision auto` = bf16 where the GPU computes it (autocast, "
            "channels_last), same-size images batched up to the memory budget; not measured by this run "
            "unless a CUDA device is present.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, help="a trained checkpoint (default: random weights, released layout)")
    ap.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT of the speed image (default 1024x768)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--ucf", action="store_true", help="the 50 UCF_CC_50 images, default vs previous engine")
    ap.add_argument("--ucf-limit", type=int, metavar="N", help="only the first N UCF images (smoke runs)")
    ap.add_argument("--ucf-rounds", type=int, default=1,
                    help="rounds of the UCF comparison (default 1: the previous engine takes ~15 min)")
    ap.add_argument("--rss4k", action="store_true", help="peak memory of `sasnet count` on 3840 x 2160")
    ap.add_argument("--int8", action="store_true", help="measure int8 with random weights too")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cpu (default): the CPU paths; cuda: the GPU path at batch 1 and 8")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="sasnet-bench-inference-") as tmp:
        work = Path(tmp)
        os.environ["SASNET_STUDIO_HOME"] = str(work / "home")  # no registry or cache of the user's
        weights = args.weights or random_weights(work / "random.pth")
        result = {"weights": str(args.weights or "random, released layout")}
        if args.device == "cuda":  # the GPU path alone: the CPU paths' options do not apply
            if args.ucf or args.rss4k or args.int8:
                sys.exit("bench_inference: --ucf, --rss4k and --int8 measure the CPU paths; "
                         "run them without --device cuda")
            result["gpu"] = gpu_speed(weights, width, height, args.rounds)
            print(gpu_table(result["gpu"]))
            if args.json:
                args.json.write_text(json.dumps(result, indent=1) + "\n")
            return
        from sasnet_core.engine.quantize import nncf_missing_reason

        with_int8 = (args.weights is not None or args.int8) and nncf_missing_reason() is None
        if args.rss4k:  # first, while this process is small (nothing depends on it)
            result["rss4k"] = rss4k(weights, work)
        result["speed"] = speed(weights, width, height, args.rounds, with_int8)
        if args.ucf:
            if not UCF.is_dir():
                sys.exit(f"bench_inference: --ucf needs the UCF_CC_50 images in {UCF}")
            result["ucf"] = ucf(weights, args.ucf_rounds, args.ucf_limit, work)
    print(table(result))
    print()
    print(GPU_NOTE)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
