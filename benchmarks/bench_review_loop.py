"""The review -> fine-tune loop, end to end: does fine-tuning on corrected images lower the error?

    python benchmarks/bench_review_loop.py --weights MODEL.pth [--minutes 15] [--data DATASET]
                                           [--cells 0.2] [--json FILE] [--work DIR]

DATASET (default ../shared/data/street_b_layout) has a train and a test split. Three figures of
the test split, each by the evaluation ``sasnet eval DATASET --split test`` runs (MAE and MSE, the
root mean square), of the model in full precision (fp32, PyTorch, CPU):

- before: the starting model;
- all: after fine-tuning on every training image, annotated whole and marked reviewed;
- cells: after fine-tuning on half of the training images (every other one in name order, the
  names printed), each annotated only in the review cells a person would have checked first: the
  first CELLS share of its cells in the starting model's order of uncertainty (the order review
  mode visits them in, ``uncertainty.review_order``), holding the ground-truth heads of those
  cells and nothing else. Training learns from those cells alone.

Both runs go the way the app's Fine-tune panel sends them: our annotation files (written by the
annotation store beside copies of the images) -> the fine-tune service's reviewed set and
staging -> ``sasnet finetune`` in a child process with the panel's defaults (300 steps, 20 %
of the images held out and scored before and after, automatic device and precision), the run
capped at MINUTES (the whole run, start-up and both evaluations included). Prints a table,
one line of figures for the README, and with --json the same as JSON.

Target (the review-where-unsure goal): "all" lowers the test MAE by at least 30 % within 15
minutes on this CPU. Without --weights a random tiny model is fine-tuned: that runs the whole
loop (a smoke test), but its figures mean nothing.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "street_b_layout"
TARGET = 0.30  # the share of the test MAE the loop must remove


def child_env() -> dict:
    """The environment of a child ``sasnet``: this checkout's code first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def model_predictor(weights):
    """The model itself, in full precision on the CPU: the automatic engine choice may count in
    reduced precision, whose own error the speed benchmark measures, not this one."""
    from sasnet_core.engine.inference import Predictor

    return Predictor.from_weights(weights, device="cpu", precision="fp32", backend="torch")


def figures_on_test_split(weights, data: Path) -> dict:
    """MAE and MSE (root mean square) of ``weights`` on the test split, by the evaluation
    ``sasnet eval`` runs."""
    from sasnet_core.datasets import open_dataset
    from sasnet_core.evaluation.evaluate import evaluate

    report = evaluate(model_predictor(weights), open_dataset(data, split="test"))
    if report.skipped:
        raise SystemExit(f"{report.skipped[0][0]}: {report.skipped[0][1]}")
    return {"mae": report.mae, "mse": report.mse, "images": report.n_images}


def reviewed_cells(predictor, sample, share: float) -> set:
    """The first ``share`` of the image's review cells (at least one) in the model's order of
    uncertainty, as review mode visits them."""
    from sasnet_core.annotations.annotation import DEFAULT_REVIEW_CELL_PX as CELL_PX
    from sasnet_core.engine.uncertainty import REVIEW_CELL, review_order

    image = sample.load_image()
    grid = (-(-image.shape[0] // CELL_PX), -(-image.shape[1] // CELL_PX))
    order = review_order(predictor.predict(image), grid, REVIEW_CELL)
    return {(int(r), int(c)) for r, c in order[: max(1, math.ceil(share * len(order)))]}


def write_set(folder: Path, items) -> int:
    """Copies of the images with our annotation files beside them (the annotation store's way);
    ``items``: (sample, reviewed cells or None for the whole image). Returns the heads written."""
    from sasnet_core.annotations.annotation import DEFAULT_REVIEW_CELL_PX, Annotation
    from sasnet_core.annotations.store import write_annotation
    from sasnet_core.io.imageio import image_size

    folder.mkdir(parents=True)
    heads = 0
    for sample, cells in items:
        image = folder / Path(sample.image_path).name
        shutil.copy2(sample.image_path, image)
        ann = Annotation(str(image), image_size(image), sample.points, reviewed=cells is None,
                         reviewed_cells=cells or set(), review_cell_px=DEFAULT_REVIEW_CELL_PX)
        if cells is not None:  # a person checked these cells only: no head is known elsewhere
            ann = Annotation(ann.image_path, ann.image_size, sample.points[ann.in_reviewed_cells()],
                             reviewed_cells=cells, review_cell_px=DEFAULT_REVIEW_CELL_PX)
        write_annotation(ann)
        heads += ann.count
    return heads


def finetune_as_the_app(weights, folder: Path, out: Path, minutes: float,
                        steps: int | None = None) -> dict:
    """One run as the Fine-tune panel starts it with its defaults, capped at ``minutes``
    (``steps``: instead of the panel's default). A run the budget stopped before its first step
    leaves no model (the app keeps the starting one): ``model`` is then None."""
    from sasnet_core.engine import choice
    from sasnet_core.training.finetuning import finetune_config
    from sasnet_core.training.service import (
        FineTuneRequest,
        FineTuneRun,
        training_precision,
    )

    cfg = finetune_config(max_minutes=minutes, device=str(choice.DEFAULT_DEVICE),
                          precision=training_precision(str(choice.DEFAULT_PRECISION)),
                          **({} if steps is None else {"steps": steps}))
    run = FineTuneRun(FineTuneRequest(weights=str(weights), images=[folder], cfg=cfg, out=out))
    run.prepare()
    proc = subprocess.run([sys.executable, *run.command()], capture_output=True, text=True,
                          cwd=run.staging, env=child_env())
    wall = time.time() - run.started_at
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    end = next((r for r in records if r.get("event") == "end"), None)
    model = run.finish(end)
    if model is None and (end or {}).get("step") != 0:
        why = next((r.get("message") for r in records if r.get("event") == "error"), None)
        raise SystemExit(f"fine-tuning on {folder} failed: {why or proc.stderr.strip()[-300:]}")
    start = next((r for r in records if r.get("event") == "start"), {})
    holdout = {r.get("phase"): r.get("mae") for r in records if r.get("event") == "val"}
    return {"model": None if model is None else str(model), "status": end.get("status"),
            "steps": end.get("step"), "minutes": round(wall / 60, 2),
            "trained_images": start.get("finetune_images"), "held_out_images": start.get("holdout_images"),
            "holdout_mae_before": holdout.get("before"), "holdout_mae_after": holdout.get("final"),
            "settings": settings(run.cfg)}


def settings(cfg) -> str:
    """The options of a run that decide its result, as ``sasnet finetune`` takes them."""
    text = (f"--steps {cfg.steps} --holdout {cfg.holdout:g} --device {cfg.device} "
            f"--precision {cfg.precision} --max-minutes {cfg.max_minutes:g} --bn-stats {cfg.bn_stats}")
    return text + (" --freeze-encoder" if cfg.freeze_encoder else "")


def change(before: float, after: float) -> float:
    return (after - before) / before if before else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="the starting model: a checkpoint or registered name "
                    "(default: a random tiny model, a smoke test)")
    ap.add_argument("--minutes", type=float, default=15.0, help="budget of each fine-tuning run")
    ap.add_argument("--steps", type=int, help="steps of each run instead of the app's default "
                    "(smoke tests)")
    ap.add_argument("--data", type=Path, default=DATA, help="data set with train and test splits")
    ap.add_argument("--cells", type=float, default=0.2,
                    help="share of each image's review cells checked in the 'cells' variant")
    ap.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON")
    ap.add_argument("--work", type=Path, help="folder for the image copies and the new models "
                    "(default: a temporary folder, removed at the end)")
    args = ap.parse_args(argv)
    if not args.minutes > 0 or not 0 < args.cells <= 1 or (args.steps is not None and args.steps < 1):
        ap.error("--minutes must be above 0, --cells in (0, 1] and --steps at least 1")

    from sasnet_core.datasets import open_dataset

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-review-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        weights = args.weights
        if weights is None:
            import torch

            from sasnet_core.model.config import SASNetConfig
            from sasnet_core.model.sasnet import SASNet
            from sasnet_core.weights.checkpoint import save_checkpoint

            torch.manual_seed(0)
            weights = save_checkpoint(work / "random_tiny.pth", SASNet(SASNetConfig(width_mult=0.125)),
                                      {"name": "random_tiny"})
            print("model: RANDOM tiny weights: a smoke test, the figures mean nothing")
        else:
            print(f"model: {weights}")
        train = list(open_dataset(args.data, split="train"))
        half = train[::2]
        print(f"data: {args.data}: {len(train)} training images; 'cells' uses {len(half)} of them "
              f"(every other one in name order): {', '.join(Path(s.image_path).stem for s in half)}")

        before = figures_on_test_split(weights, args.data)
        print(f"before: test MAE {before['mae']:.2f}, MSE {before['mse']:.2f} ({before['images']} images)")

        predictor = model_predictor(weights)
        cells = {s.image_path: reviewed_cells(predictor, s, args.cells) for s in half}
        del predictor
        sets = {"all": [(s, None) for s in train], "cells": [(s, cells[s.image_path]) for s in half]}
        results = {}
        for name, items in sets.items():
            heads = write_set(work / name, items)
            print(f"{name}: fine-tuning on {len(items)} images, {heads} heads, "
                  f"at most {args.minutes:g} min ...", flush=True)
            run = finetune_as_the_app(weights, work / name, work / f"{name}.pth", args.minutes,
                                      args.steps)
            if run["model"] is None:
                print(f"{name}: the budget ran out before the first step; the starting model stays")
            after = figures_on_test_split(run["model"], args.data) if run["model"] else dict(before)
            results[name] = {**run, "heads": heads, "train_images": len(items), "after": after,
                             "mae_change": change(before["mae"], after["mae"]),
                             "mse_change": change(before["mse"], after["mse"])}
            print(f"{name}: {run['steps']} steps in {run['minutes']:.2f} min ({run['status']}); "
                  f"test MAE {after['mae']:.2f}, MSE {after['mse']:.2f}", flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    report(before, results, args)
    return 0


def report(before: dict, results: dict, args) -> None:
    labels = {"all": f"all {results['all']['train_images']} images, whole",
              "cells": f"{results['cells']['train_images']} images, {args.cells:.0%} of cells"}
    print()
    print(f"test split ({before['images']} images) of the model before and after fine-tuning; "
          "'trained + held out': the images the run learnt from and those it scored before and after")
    print(f"{'fine-tuned on':<28} {'trained + held out':>18} {'heads':>6} {'steps':>6} {'min':>6} "
          f"{'MAE':>8} {'MSE':>8} {'MAE change':>11}")
    print(f"{'(starting model)':<28} {'':>18} {'':>6} {'':>6} {'':>6} {before['mae']:>8.2f} "
          f"{before['mse']:>8.2f} {'':>11}")
    for name, r in results.items():
        split = f"{r['trained_images']} + {r['held_out_images']}"
        print(f"{labels[name]:<28} {split:>18} {r['heads']:>6} {r['steps']:>6} {r['minutes']:>6.2f} "
              f"{r['after']['mae']:>8.2f} {r['after']['mse']:>8.2f} {r['mae_change']:>+10.1%}")
    a, c = results["all"], results["cells"]
    verdict = "met" if a["mae_change"] <= -TARGET else "NOT met"
    print(f"settings: {a['settings']}")
    print(f"review loop on {Path(args.data).name} test ({before['images']} images): MAE "
          f"{before['mae']:.2f} -> {a['after']['mae']:.2f} ({a['mae_change']:+.0%}) fine-tuned on all "
          f"{a['train_images']} training images, -> {c['after']['mae']:.2f} ({c['mae_change']:+.0%}) "
          f"on {args.cells:.0%} of the cells of {c['train_images']} images (MSE {before['mse']:.2f} -> "
          f"{a['after']['mse']:.2f} / {c['after']['mse']:.2f}); {args.minutes:g} min budget per run; "
          f"target -{TARGET:.0%} {verdict}")
    if args.json:
        from sasnet_core.io.atomic import atomic_write_text

        def clean(value):  # standard JSON: an undefined figure is null
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return None if isinstance(value, float) and not math.isfinite(value) else value

        atomic_write_text(args.json, json.dumps(clean(
            {"weights": args.weights, "smoke": args.weights is None, "data": str(args.data),
             "minutes": args.minutes, "cells_share": args.cells, "before": before,
             "runs": results, "target_mae_change": -TARGET}), indent=1, allow_nan=False))


if __name__ == "__main__":
    sys.exit(main())
