"""``sasnet train DATASET --out RUN_DIR``: train SASNet with the paper's schedule.

Runs alone or under torchrun (DDP: NCCL on GPUs, gloo on CPUs), e.g.
``torchrun --nproc_per_node 4 -m sasnet_core train DATA --out runs/x``.
"""
from __future__ import annotations

import argparse

from sasnet_core import vocab

HELP = "train SASNet on a data set (paper schedule; DDP under torchrun)"


def add_common_options(p: argparse.ArgumentParser, *, finetune: bool = False) -> None:
    """Options shared by ``train`` and ``finetune``."""
    sched = p.add_argument_group("schedule (defaults: the paper's)")
    sched.add_argument("--steps", type=int, default=300 if finetune else 20000,
                       help="optimiser steps in all (default: %(default)s)")
    sched.add_argument("--max-minutes", type=float, default=None, metavar="M",
                       help="stop cleanly after M minutes of wall time (checkpoint kept)")
    sched.add_argument("--images-per-step", type=int, default=8, metavar="N",
                       help="images per step and process (default: %(default)s)")
    sched.add_argument("--crops", type=int, default=4, dest="crops_per_image",
                       help="random crops per image (default: %(default)s)")
    sched.add_argument("--crop-size", type=int, default=128, help="crop side (default: %(default)s)")
    sched.add_argument("--no-flip", dest="flip", action="store_false",
                       help="no random horizontal flips")
    sched.add_argument("--lr", type=float, default=1e-5, help="Adam learning rate (default: %(default)s)")
    sched.add_argument("--weight-decay", type=float, default=0.0)
    sched.add_argument("--freeze-encoder", action="store_true",
                       help="train only the decoder and heads (the VGG16-bn encoder stays as is)")
    loss = p.add_argument_group("loss and model (ablations of the paper)")
    loss.add_argument("--lam", type=float, default=10.0, help="weight of L_conf (default: %(default)s)")
    loss.add_argument("--gamma", type=float, default=1.0, help="PRA hard-pixel weight (default: %(default)s)")
    loss.add_argument("--no-pra", dest="use_pra", action="store_false",
                      help="plain Euclidean loss on the fused map instead of PRA")
    loss.add_argument("--selection", choices=("soft", "hard", "average"), default="soft",
                      help="scale selection: soft (paper), hard (argmax) or average (default: soft)")
    data = p.add_argument_group("data")
    data.add_argument("--fold", type=int, choices=range(1, 6), metavar="K",
                      help="UCF_CC_50: validate on fold K (1-5), train on the other four")
    data.add_argument("--holdout", type=float, default=0.2 if finetune else 0.0, metavar="SHARE",
                      help="hold out this share of the images for validation "
                      + ("and report MAE before and after (default: %(default)s)" if finetune
                         else "(default: the data set's test split if it has one, else none)"))
    data.add_argument("--all-annotated", action="store_true",
                      help="with our annotation files: also use images not marked reviewed")
    data.add_argument("--sigma", type=float, default=4.0, help="Gaussian kernel sigma (default: 4)")
    data.add_argument("--adaptive-kernel", action="store_true",
                      help="geometry-adaptive kernels instead of the fixed one")
    data.add_argument("--workers", type=int, default=2, help="data loader processes (default: 2)")
    run = p.add_argument_group("run")
    run.add_argument("--val-every", type=int, default=0 if finetune else 500, metavar="N",
                     help="validate every N steps (0: only at the end; default: %(default)s)")
    run.add_argument("--log-every", type=int, default=10, metavar="N",
                     help="progress record every N steps (default: %(default)s)")
    run.add_argument("--log-json", metavar="FILE", default=None,
                     help="JSON-lines progress to FILE ('-': stdout); first record event=start, "
                     "last event=end")
    run.add_argument("--stop-file", metavar="FILE", default=None,
                     help="stop after the current step once FILE exists (like SIGTERM)")
    run.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bar on stderr")
    run.add_argument("--device", default=str(vocab.DEFAULT_DEVICE), type=vocab.device_arg,
                     help="auto, cpu, cuda or cuda:N (default: auto)")
    run.add_argument("--precision", choices=vocab.choices(vocab.TRAINING_PRECISIONS),
                     default=str(vocab.DEFAULT_TRAINING_PRECISION),
                     help="auto: bf16 autocast + channels_last on CUDA, fp32 on CPU")
    run.add_argument("--seed", type=int, default=0)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help=HELP, description=HELP + ". Defaults follow the paper: 8 images x 4 "
        "random 128x128 crops per step, horizontal flip, Adam lr 1e-5, k = 32, lambda = 10, "
        "PRA gamma = 1. RUN_DIR receives last.pth (resumable), best.pth (lowest validation "
        "MAE) and log.jsonl.",
        epilog="Examples: sasnet train ../data/ShanghaiTech/part_B --out runs/b ; "
        "sasnet train DATA --out runs/b --resume ; "
        "torchrun --nproc_per_node 2 -m sasnet_core train DATA --out runs/b")
    p.add_argument("dataset", metavar="DATASET",
                   help="training data: a data set folder (ShanghaiTech, UCF, ...) or a folder "
                   "of images with sasnet annotations")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    p.add_argument("--val", dest="val_data", metavar="DATASET", default=None,
                   help="validation data (default: DATASET's test split, or --holdout)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pth")
    init = p.add_mutually_exclusive_group()
    init.add_argument("--init", metavar="WEIGHTS", default=None,
                      help="start from this checkpoint (file or registered model name)")
    init.add_argument("--encoder-weights", default="imagenet", metavar="imagenet|FILE|none",
                      help="encoder initialisation when not starting from a checkpoint: "
                      "torchvision's VGG16-bn ImageNet weights (local cache), a file, or none")
    p.add_argument("--width-mult", type=float, default=1.0, help=argparse.SUPPRESS)  # tiny models
    add_common_options(p)
    p.set_defaults(func=run)


def config_from_args(args, **extra):
    from sasnet_core.training.config import TrainConfig

    fields = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}
    fields.update(extra)
    return TrainConfig(**fields)


def run(args) -> int:
    import json
    import os
    import sys
    from pathlib import Path

    from sasnet_core.training.loop import LOG, train

    try:
        cfg = config_from_args(args, data=args.dataset, out=args.out)
    except ValueError as exc:
        print(f"sasnet train: error: {exc}", file=sys.stderr)
        return 2
    # Without --log-json the progress records go to RUN_DIR/log.jsonl (appended on --resume).
    if cfg.log_json is None:
        cfg.log_json = str(Path(cfg.out) / LOG)
    result = train(cfg)
    if cfg.log_json != "-" and os.environ.get("RANK", "0") == "0":  # one summary under torchrun
        print(json.dumps({"status": result.status, "step": result.step,
                          "checkpoint": str(result.checkpoint),
                          "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
                          **{f"val_{k}": v for k, v in result.figures.items()}}))
    return 0 if result.status in ("completed", "time_limit", "stopped") else 1
