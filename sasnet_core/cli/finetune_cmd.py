"""``sasnet finetune WEIGHTS DATA --out NEW_MODEL.pth``: adapt a model to your own images.

The GUI's one-click fine-tuning runs this command with ``--log-json -`` and follows the JSON
lines; SIGTERM (or ``--stop-file``) stops it after the current step, writing a complete model.
Defaults come from the fine-tuning config (``training.finetuning.finetune_config``), the same
source the app's panel reads.
"""
from __future__ import annotations

import argparse

from sasnet_core.cli.argtypes import output_file, positive_float
from sasnet_core.cli.train_cmd import (
    add_common_options,
    config_from_args,
    stopped_by_signal,
)
from sasnet_core.training.config import FINETUNE_DEFAULTS
from sasnet_core.training.jsonlog import JsonLog

HELP = "fine-tune a model on your annotated images (or any data set)"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "finetune", help=HELP,
        description=HELP + ". Starts from WEIGHTS (a .pth file, released or ours, or a "
        "registered model name) and trains on DATA: a folder of images with sasnet annotation "
        "files (only those marked reviewed, unless --all-annotated), or any data set layout. "
        "A share of the images (--holdout) is kept out and scored before and after. The result "
        "records its parent model, data, steps and MAE before/after; register it with "
        "'sasnet models add NAME NEW_MODEL.pth'. --max-minutes is the budget of the whole run, "
        "loading and both evaluations included.",
        epilog="Example: sasnet finetune shhb my_street/ --out street.pth --steps 200 "
        "--freeze-encoder --log-json progress.jsonl")
    p.add_argument("weights", metavar="WEIGHTS", help="model to start from: file or registered name")
    p.add_argument("data", metavar="DATA", help="folder of annotated images or a data set")
    p.add_argument("--out", required=True, type=output_file, metavar="NEW_MODEL.pth",
                   help="file to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    # The option's former name: scripts written for it keep working; --help shows one name.
    p.add_argument("--force", dest="overwrite", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--name", default=None, help="model name stored in the file (default: file stem)")
    # The app's click: the time budget counts from then, child-process start-up included.
    p.add_argument("--budget-from", type=positive_float, default=None, help=argparse.SUPPRESS)
    add_common_options(p, finetune=True)
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import os
    import sys
    import time

    started_at = args.budget_from if args.budget_from is not None else time.time()
    # deferred: torch and the training stack; `sasnet --help` needs none
    from sasnet_core.training.finetuning import finetune

    try:
        cfg = config_from_args(args, out=str(args.out),
                               **{k: v for k, v in FINETUNE_DEFAULTS.items() if k not in vars(args)})
    except ValueError as exc:
        print(f"sasnet finetune: error: {exc}", file=sys.stderr)
        return 2
    if args.budget_from is None:
        # The app's panel refused a budget below the minimum before it started this command, and
        # measuring again would spend the budget; a person's command is refused here the same way.
        # deferred: torch; `sasnet --help` needs none
        from sasnet_core.training.service import check_data_budget

        check_data_budget(args.weights, args.data, cfg)
    with JsonLog(cfg.log_json, enabled=os.environ.get("RANK", "0") == "0") as log:
        result = finetune(args.weights, args.data, args.out, cfg, overwrite=args.overwrite,
                          name=args.name, log=log, started_at=started_at)
    summary = {"status": result.status, "step": result.step, "checkpoint": str(result.checkpoint),
               "mae_before": result.before.get("mae"), "mae_after": result.figures.get("mae"),
               "elapsed_s": round(time.time() - started_at, 1)}
    if cfg.log_json != "-" and os.environ.get("RANK", "0") == "0":
        print(json.dumps(summary))
    stopped = stopped_by_signal(result)
    if stopped is not None:
        print(f"sasnet finetune: stopped by {stopped.args[0]} after step {result.step}; {result.checkpoint} "
              "holds the model as trained so far", file=sys.stderr)
        return stopped.exit_code
    return 0
