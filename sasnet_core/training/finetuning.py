"""Fine-tuning: start from any checkpoint (released or ours), train on a folder of corrected
annotations or any data set layout, write one new model file with its provenance.

The same loop as ``sasnet train`` (``loop.train``), with fine-tuning defaults: a short schedule,
a share of the images held out to report MAE before and after, no run folder, and the result
written atomically to ``out`` (a cancelled run leaves either no file or a complete one: the model
after the last finished step, marked ``"status": "stopped"`` in its metadata). A minutes budget
covers the whole run, set-up and the evaluations included (``budget.TimeBudget``).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from sasnet_core.io.atomic import check_output_file
from sasnet_core.io.imageio import image_size
from sasnet_core.model.config import SASNetConfig
from sasnet_core.training.budget import ObservedLog, TimeBudget, step_work_ratio
from sasnet_core.training.config import FINETUNE_DEFAULTS, TrainConfig
from sasnet_core.training.data import load_samples, split_holdout
from sasnet_core.training.jsonlog import JsonLog
from sasnet_core.training.loop import TrainResult, train
from sasnet_core.training.staging import staged_origin
from sasnet_core.util.errors import (
    CheckpointError,
    DatasetLayoutError,
    ImageReadError,
    SASNetError,
    SettingsError,
)
from sasnet_core.weights.registry import ModelRegistry, load_model

SUGGESTED_MINUTES = 10.0  # what the app offers when a person picks a time budget instead of steps


def finetune_config(**overrides) -> TrainConfig:
    """TrainConfig with the fine-tuning defaults (paper batch and lr, 300 steps, 20% held out)."""
    return TrainConfig(**{**FINETUNE_DEFAULTS, **overrides})


def parent_name_of(weights: str | os.PathLike, path: Path) -> str:
    """The name a person knows the starting model by: its registry name, else its file stem."""
    try:
        entries = ModelRegistry().entries()
    except SASNetError:  # a damaged registry only costs the nice name
        return path.stem
    for entry in entries:
        if entry.name == str(weights):
            return entry.name
    resolved = path.resolve()
    return next((e.name for e in entries if e.path.resolve() == resolved), path.stem)


def finetune(weights: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike,
             cfg: TrainConfig | None = None, *, overwrite: bool = False,
             name: str | None = None, log: JsonLog | None = None, stop=None,
             started_at: float | None = None) -> TrainResult:
    """Fine-tune ``weights`` (a file or a registered model name) on ``data``; write ``out``.

    Images come from our annotation files (reviewed ones, unless ``cfg.all_annotated``) or from
    any data set layout. ``cfg.holdout`` of them are kept out of training and scored before and
    after. ``cfg.max_minutes`` is the budget of the whole run, counted from ``started_at`` (Unix
    time; default: now). ``stop``: a StopRequest to use instead of the budget's own. Raises
    SASNetError subclasses on bad input (nothing to train on, unreadable weights, an output that
    exists already, ...).
    """
    import time

    started_at = time.time() if started_at is None else started_at
    own_log = log is None
    log = JsonLog(cfg.log_json if cfg else None) if log is None else log
    try:
        try:
            cfg = dataclasses.replace(cfg or finetune_config(), data=os.fspath(data),
                                      init=os.fspath(weights))
            out = Path(out).expanduser()
            if out.is_dir():
                raise CheckpointError("output is a folder; give a file name such as my_model.pth", out)
            # Before the run: a refusal at its end would throw the whole fine-tune away.
            check_output_file(out, overwrite)

            if cfg.max_minutes is not None and not cfg.max_minutes > 0:
                raise SettingsError(f"--max-minutes {cfg.max_minutes:g} leaves no time to train; "
                                    "give more than 0 minutes")
            samples = load_samples(data, split="train", all_annotated=cfg.all_annotated, fold=cfg.fold)
            try:
                train_samples, held_out = split_holdout(samples, cfg.holdout, cfg.seed)
            except DatasetLayoutError as exc:
                raise DatasetLayoutError(exc.detail, exc.path or data) from None
            if not train_samples:
                raise DatasetLayoutError("no images left to train on after the holdout", data)

            model, info = load_model(weights, device="cpu", config=SASNetConfig(selection=cfg.selection))
            if info.path.resolve() == out.resolve():
                raise CheckpointError("output would overwrite the model being fine-tuned; choose "
                                      "another --out", out)
            # Where the data really is: a staging folder names the images' own folder.
            data_folder = staged_origin(data) or str(Path(data).expanduser().resolve())
            provenance = {
                "parent": str(info.path), "parent_name": parent_name_of(weights, info.path),
                "parent_kind": info.kind, "kind": "finetuned", "name": name or out.stem,
                "data": data_folder, "data_folder": data_folder,
                "finetune_images": len(train_samples), "holdout_images": len(held_out),
                # which images were held out, so "after" figures can be checked, named below the
                # data folder as the person knows them (capped: metadata is copied into the model
                # registry)
                "holdout_files": [_below(s.image_path, data_folder) for s in held_out][:200],
                # where the images are: a reviewed set may span folders below its common one
                "image_folders": sorted({_below(os.path.dirname(s.image_path), data_folder)
                                         for s in train_samples + held_out})[:20],
            }
        except SASNetError as exc:  # nothing trained yet: still end the JSON stream properly
            log.fail(exc, (cfg or finetune_config()).to_dict())
            raise
        if stop is None:
            stop = TimeBudget(cfg.stop_file, cfg.max_minutes, started_at,
                              save_bytes=_size(info.path), step_per_eval=_step_per_eval(cfg, held_out))
        if isinstance(stop, TimeBudget):
            log = ObservedLog(log, stop)
        return train(cfg, model=model, provenance=provenance, train_samples=train_samples,
                     val_samples=held_out,
                     val_desc=f"holdout {cfg.holdout:g} of {data_folder}" if held_out else None,
                     log=log, stop=stop, final_path=out, evaluate_before=bool(held_out),
                     save_run=False, start_event={"command": "finetune", "weights": os.fspath(weights),
                                                  "output": str(out)})
    finally:
        if own_log:
            log.close()


def _step_per_eval(cfg: TrainConfig, held_out) -> float:
    """For the budget's guess of the first step: its work over the held-out evaluation's."""
    if cfg.max_minutes is None or not held_out:
        return 0.0
    pixels = 0
    for sample in held_out:
        try:
            w, h = sample.resize or image_size(sample.image_path)
        except ImageReadError:  # the evaluation will say so; the guess only needs a size
            return 0.0
        pixels += int(w) * int(h)
    return step_work_ratio(cfg.images_per_step, cfg.crops_per_image, cfg.crop_size, pixels)


def _below(path: str, folder: str) -> str:
    """``path`` relative to ``folder`` ("." for the folder itself), or as it is where it lies
    elsewhere."""
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(folder))
    except ValueError:  # another drive
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
