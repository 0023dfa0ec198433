"""How well a fine-tuning run keeps its time budget, measured as the app runs it.

    python benchmarks/bench_finetune_budget.py [--minutes 0.5] [--runs 2] [--images 10]
                                               [--size 384x512] [--width-mult 0.125]

The fine-tune service stages synthetic reviewed images and runs ``sasnet finetune`` in a child
process, the budget counted from the moment the run is asked for (as at a click in the app), until
the child has exited. Target: the whole run within 5 % of the budget. Prints, per run, the wall
time, the overrun and where the time went: start-up (imports, data, model), the evaluation before
training, the steps, the evaluation after and the save, and the exit. On a busy CPU every phase
stretches, so compare runs made on the same, otherwise idle, machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=0.5)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--images", type=int, default=10, help="reviewed images (20%% held out)")
    ap.add_argument("--size", default="384x512", help="image size HxW")
    ap.add_argument("--width-mult", type=float, default=0.125, help="1.0: the full model")
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    os.environ["SASNET_STUDIO_HOME"] = str(home)
    import torch

    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet
    from sasnet_core.training.finetuning import finetune_config
    from sasnet_core.training.service import FineTuneRequest, FineTuneRun
    from sasnet_core.training.synthetic import make_blob_dataset
    from sasnet_core.weights.checkpoint import save_checkpoint

    torch.manual_seed(0)
    parent = save_checkpoint(home / "parent.pth", SASNet(SASNetConfig(width_mult=args.width_mult)),
                             {"name": "parent"})
    h, w = (int(v) for v in args.size.split("x"))
    images = make_blob_dataset(home / "street", n_images=args.images, size=(h, w), max_heads=20,
                               layout="annotations")
    budget = args.minutes * 60
    results = []
    for i in range(args.runs):
        cfg = finetune_config(steps=1_000_000, max_minutes=args.minutes, device="cpu",
                              workers=args.workers)
        run = FineTuneRun(FineTuneRequest(weights=str(parent), images=images, cfg=cfg))
        run.prepare()
        proc = subprocess.run([sys.executable, *run.command()], capture_output=True, text=True,
                              cwd=run.staging)
        wall = time.time() - run.started_at
        run.finish(None)
        records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]

        def at(event, **match):
            r = next((r for r in records if r.get("event") == event
                      and all(r.get(k) == v for k, v in match.items())), None)
            return None if r is None else round(r["time"] - run.started_at, 2)

        steps = [r for r in records if r.get("event") == "step"]
        row = {"run": i + 1, "budget_s": budget, "wall_s": round(wall, 2),
               "overrun_pct": round(100 * (wall / budget - 1), 1), "steps": len(steps),
               "status": next((r.get("status") for r in records if r.get("event") == "end"), None),
               "start_s": at("start"), "before_eval_done_s": at("val", phase="before"),
               "last_step_s": round(steps[-1]["time"] - run.started_at, 2) if steps else None,
               "end_s": at("end")}
        results.append(row)
        print(json.dumps(row))
    worst = max(r["overrun_pct"] for r in results)
    print(f"worst overrun {worst:+.1f}% of a {budget:.0f} s budget (target: at most +5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
