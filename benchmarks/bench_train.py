"""Cost of a SASNet training step and of its target building (confidence labels + PRA mask).

    python benchmarks/bench_train.py [--batch 32] [--size 128] [--steps 3] [--width-mult 1.0]
                                     [--device auto] [--precision auto]

Target: building the confidence labels and the PRA loss costs at most 5% of a step, measured
against the step's forward and backward (full-size model, batch 32 x 3 x 128 x 128 = the paper's
8 images x 4 crops). Prints one JSON line with the figures as well as a readable summary.
On CUDA the step runs as training does: bf16 autocast, channels_last, cuDNN benchmark, TF32.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import sasnet  # noqa: E402
from sasnet_core.training.losses import confidence_labels, pra_hard_mask, total_loss  # noqa: E402
from sasnet_core.training.steps import (  # noqa: E402
    configure_backends,
    make_optimizer,
    precision_for,
)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3, help="measured steps (after one warm-up)")
    ap.add_argument("--width-mult", type=float, default=1.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    args = ap.parse_args(argv)

    device = torch.device(args.device if args.device != "auto" else
                          ("cuda" if torch.cuda.is_available() else "cpu"))
    configure_backends(device)
    prec = precision_for(device, args.precision)
    torch.manual_seed(0)
    model = sasnet(config=SASNetConfig(width_mult=args.width_mult)).to(device).train()
    fmt = torch.channels_last if prec.channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    opt = make_optimizer(model, lr=1e-5)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device).contiguous(memory_format=fmt)
    gt = torch.rand(args.batch, 1, args.size, args.size, device=device) * 5

    fwd_bwd, targets, steps = [], [], []
    for i in range(args.steps + 1):
        _sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=prec.dtype, enabled=prec.autocast):
            out = model(x)
        _sync(device)
        t1 = time.perf_counter()
        # the part under test: targets built from the outputs (no gradient)
        labels = confidence_labels(out.level_densities.float(), gt, k=32)
        mask = pra_hard_mask(out.density.float(), gt)
        _sync(device)
        t2 = time.perf_counter()
        loss, _ = total_loss(out, gt)  # builds them again inside, plus the differentiable terms
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        t3 = time.perf_counter()
        del labels, mask
        if i == 0:
            continue  # warm-up
        target_s = t2 - t1
        fb = (t1 - t0) + (t3 - t2) - target_s  # forward + loss terms + backward + Adam, without the
        fwd_bwd.append(fb)                      # second (inside total_loss) target building
        targets.append(target_s)
        steps.append(fb + target_s)

    fb, tg, st = statistics.median(fwd_bwd), statistics.median(targets), statistics.median(steps)
    images = args.batch / 4  # 4 crops per image in the paper's schedule
    result = {
        "device": str(device), "precision": prec.name, "threads": torch.get_num_threads(),
        "batch": args.batch, "size": args.size, "width_mult": args.width_mult,
        "step_s": st, "forward_backward_s": fb, "targets_s": tg, "targets_ratio": tg / fb,
        "crops_per_s": args.batch / st, "images_per_s": images / st,
    }
    print(f"device {device} ({prec.name}, {torch.get_num_threads()} threads), batch "
          f"{args.batch} x 3 x {args.size} x {args.size}, width_mult {args.width_mult}")
    print(f"  training step           {st:8.3f} s  ({args.batch / st:.2f} crops/s, "
          f"{images / st:.2f} images/s of 4 crops)")
    print(f"  forward + backward      {fb:8.3f} s")
    print(f"  labels + PRA hard mask  {tg * 1000:8.1f} ms  = {100 * tg / fb:.2f}% of forward+backward "
          f"(target <= 5%)")
    print(json.dumps(result))
    return 0 if tg / fb <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
