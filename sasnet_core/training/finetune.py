"""Fine-tuning: start from any checkpoint (released or ours), train on a folder of corrected
annotations or any data set layout, write one new model file with its provenance.

The same loop as ``sasnet train`` (``loop.train``), with fine-tuning defaults: a short schedule,
a share of the images held out to report MAE before and after, no run folder, and the result
written atomically to ``out`` (a cancelled run leaves either no file or a complete one: the model
after the last finished step, marked ``"status": "stopped"`` in its metadata).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from sasnet_core.errors import CheckpointError, DatasetLayoutError, SASNetError
from sasnet_core.training.config import TrainConfig
from sasnet_core.training.jsonlog import JsonLog
from sasnet_core.training.loop import TrainResult, train

FINETUNE_DEFAULTS = dict(steps=300, val_every=0, holdout=0.2, encoder_weights=None)


def finetune_config(**overrides) -> TrainConfig:
    """TrainConfig with the fine-tuning defaults (paper batch and lr, 300 steps, 20% held out)."""
    return TrainConfig(**{**FINETUNE_DEFAULTS, **overrides})


def finetune(weights: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike,
             cfg: TrainConfig | None = None, *, overwrite: bool = False,
             name: str | None = None, log: JsonLog | None = None, stop=None) -> TrainResult:
    """Fine-tune ``weights`` (a file or a registered model name) on ``data``; write ``out``.

    Images come from our annotation files (reviewed ones, unless ``cfg.all_annotated``) or from
    any data set layout. ``cfg.holdout`` of them are kept out of training and scored before and
    after. Raises SASNetError subclasses on bad input (nothing to train on, unreadable weights,
    an output that exists already, ...).
    """
    from sasnet_core.registry import load_model
    from sasnet_core.model import SASNetConfig
    from sasnet_core.training.data import load_samples, split_holdout

    try:
        cfg = dataclasses.replace(cfg or finetune_config(), data=os.fspath(data),
                                  init=os.fspath(weights))
        out = Path(out).expanduser()
        if out.is_dir():
            raise CheckpointError("output is a folder; give a file name such as my_model.pth", out)
        if out.exists() and not overwrite:
            raise CheckpointError("output file exists already (pass --force to replace it)", out)

        samples = load_samples(data, split="train", all_annotated=cfg.all_annotated, fold=cfg.fold)
        train_samples, held_out = split_holdout(samples, cfg.holdout, cfg.seed)
        if not train_samples:
            raise DatasetLayoutError("no images left to train on after the holdout", data)

        model, info = load_model(weights, device="cpu", config=SASNetConfig(selection=cfg.selection))
        if info.path.resolve() == out.resolve():
            raise CheckpointError("output would overwrite the model being fine-tuned; choose "
                                  "another --out", out)
        provenance = {
            "parent": str(info.path), "parent_name": info.name, "parent_kind": info.kind,
            "kind": "finetuned", "name": name or out.stem,
            "data_folder": str(Path(data).expanduser().resolve()),
            "finetune_images": len(train_samples), "holdout_images": len(held_out),
            # which images were held out, so "after" figures can be checked (capped: metadata
            # is copied into the model registry)
            "holdout_files": [os.path.basename(s.image_path) for s in held_out][:200],
        }
    except SASNetError as exc:  # nothing trained yet: still end the JSON stream properly
        if log is not None:
            log.fail(exc, (cfg or finetune_config()).to_dict())
        raise
    return train(cfg, model=model, provenance=provenance, train_samples=train_samples,
                 val_samples=held_out, val_desc=f"holdout {cfg.holdout:g} of {data}" if held_out else None,
                 log=log, stop=stop, final_path=out, evaluate_before=bool(held_out), save_run=False,
                 start_event={"command": "finetune", "weights": os.fspath(weights),
                              "output": str(out)})
