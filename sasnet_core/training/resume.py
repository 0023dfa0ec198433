"""A run folder: what it holds, checkpoints written into it, and resuming the run it holds.

A run folder holds ``last.pth`` (a normal checkpoint that also carries the optimiser state for
``--resume``), ``best.pth`` (lowest validation MAE, model only) and ``log.jsonl``. Both files are
written atomically by rank 0 only.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn

from sasnet_core.model.config import SASNetConfig
from sasnet_core.training.config import ENCODER_STAGES, TrainConfig
from sasnet_core.training.steps import unwrap
from sasnet_core.util.errors import CheckpointError, OutputExistsError, SettingsError
from sasnet_core.weights.checkpoint import read_checkpoint_file, save_checkpoint
from sasnet_core.weights.registry import load_model

LAST, BEST, LOG = "last.pth", "best.pth", "log.jsonl"


def save_training_checkpoint(path: str | os.PathLike, model: nn.Module, metadata: dict,
                             train_state: dict | None = None) -> Path:
    """Our checkpoint format (loadable by ``load_model``), plus the optimiser state for resuming
    when ``train_state`` is given. Atomic: a crash leaves the previous file."""
    extra = {"train_state": train_state} if train_state is not None else None
    return save_checkpoint(path, unwrap(model), metadata, extra=extra)


def _damaged(state: dict) -> str | None:
    """What is wrong with a checkpoint's training state, or None when it can be resumed."""
    step = state.get("step")
    if (not isinstance(step, int) or isinstance(step, bool) or step < 0
            or not isinstance(state.get("optimizer"), dict)):
        return "its training state is damaged (no step count or optimiser state)"
    for key in ("epoch", "batch_in_epoch"):
        if not isinstance(state.get(key, 0), int) or state.get(key, 0) < 0:
            return f"its training state field {key!r} is damaged"
    if not isinstance(state.get("elapsed_s", 0.0), (int, float)) or not isinstance(state.get("best", {}), dict):
        return "its training state is damaged (elapsed time or best figures)"
    mae = state.get("best", {}).get("mae")
    if mae is not None and (isinstance(mae, bool) or not isinstance(mae, (int, float))):
        return "its best validation figure is not a number"
    rng = state.get("torch_rng")
    if rng is not None and not (isinstance(rng, torch.Tensor) and rng.dtype == torch.uint8 and rng.dim() == 1):
        return "its random number state is damaged"
    return None


def load_train_state(path: str | os.PathLike) -> dict:
    """The optimiser state and position a run folder's last.pth carries for ``--resume``."""
    try:
        obj = read_checkpoint_file(path)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot resume: {exc.detail}", path) from None
    state = obj.get("train_state") if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError("cannot resume: this checkpoint holds no optimiser state "
                              "(only a run folder's last.pth does)", path)
    problem = _damaged(state)
    if problem:
        raise CheckpointError(f"cannot resume: {problem}", path)
    return state


def data_folder(cfg: TrainConfig) -> str | list[str] | None:
    """The data set a run learns from, as its metadata records it (and a resume compares it): one
    folder as a string, several as a list in the order given."""
    folders = [os.fspath(Path(d).expanduser().resolve()) for d in cfg.data_sets]
    if not folders:
        return None
    return folders[0] if len(folders) == 1 else folders


def _frozen(config: dict) -> int | None:
    """The encoder stages a recorded run kept frozen (a config from before ``freeze_stages`` says
    ``freeze_encoder``), or None when it does not say."""
    if isinstance(config.get("freeze_stages"), int):
        return config["freeze_stages"]
    if "freeze_encoder" in config:
        return ENCODER_STAGES if config["freeze_encoder"] else 0
    return None


def changed_since_start(metadata: dict, cfg: TrainConfig) -> list[str]:
    """What this resume asks that differs from the run it continues (data sets, fold, selection,
    frozen stages), as phrases; empty when the run can go on."""
    was = metadata.get("train_config") if isinstance(metadata.get("train_config"), dict) else {}
    out = []
    data, here = metadata.get("data"), data_folder(cfg)
    if isinstance(data, (str, list)) and here and data != here:
        out.append(f"it learnt from {_names(data)}, this run names {_names(here)}")
    for key, option in (("fold", "--fold"), ("selection", "--selection")):
        if key in was and was[key] != getattr(cfg, key):
            out.append(f"it ran with {option} {was[key]}, this run asks for {getattr(cfg, key)}")
    frozen = _frozen(was)
    if frozen is not None and frozen != cfg.freeze_stages:
        out.append(f"it ran with --freeze-stages {frozen}, this run asks for {cfg.freeze_stages} "
                   f"(--freeze-encoder is --freeze-stages {ENCODER_STAGES})")
    return out


def _names(data: str | list) -> str:
    return data if isinstance(data, str) else " + ".join(map(str, data))


def check_run_folder(cfg: TrainConfig) -> None:
    """Refuse, before anything is loaded or written, a run folder that cannot take this run: one
    that is a file or lies inside a file, or one that holds a run (its last.pth or best.pth) when
    neither ``resume`` nor ``overwrite`` says what to do with it."""
    out = Path(cfg.out).expanduser()
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                raise OutputExistsError("is a file, not a run folder" if folder == out else
                                        f"is a file, so the run folder {out} cannot be made in it", folder)
            break
    held = [name for name in (LAST, BEST) if (out / name).exists()]
    if held and not cfg.resume and not cfg.overwrite:
        raise OutputExistsError(f"holds a training run already ({', '.join(held)}); add --resume to "
                                "continue it, or --overwrite to start a new run in its place", out)


@dataclass
class Resumed:
    """A run taken up again from its last.pth: the model, the config it goes on with (its width),
    where the model came from, and the training state to restore."""

    model: nn.Module
    cfg: TrainConfig
    provenance: dict
    state: dict


def resume_run(cfg: TrainConfig, last_path: Path) -> Resumed:
    """Load ``last_path`` for ``cfg``; refuse a resume that would change what the run learns."""
    model, ck = load_model(last_path, device="cpu", config=SASNetConfig(selection=cfg.selection))
    if model.config.width_mult != cfg.width_mult:
        # Its weights fix the width. Not asked for: the run goes on at its own width, and that
        # is what its records say. Asked for another: refused, not recorded and ignored.
        if cfg.width_mult != TrainConfig.width_mult:
            raise SettingsError(f"cannot resume {last_path}: it holds a model of width "
                                f"{model.config.width_mult:g}, this run asks for {cfg.width_mult:g}; "
                                f"give --width-mult {model.config.width_mult:g}, or start a new run "
                                "with --overwrite")
        cfg = replace(cfg, width_mult=model.config.width_mult)
    changed = changed_since_start(ck.metadata, cfg)
    if changed:
        # One run learns from one set of data with one scale selection and one frozen part: its
        # best checkpoint is the best on one validation set, and its record describes every step.
        raise SettingsError(f"cannot resume {last_path}: " + "; ".join(changed)
                            + " (start a new run with another --out, or --overwrite)")
    provenance = {k: ck.metadata.get(k) for k in ("parent", "parent_name", "parent_kind",
                                                   "encoder_init") if k in ck.metadata}
    state = load_train_state(last_path)
    if cfg.lr is None:  # not asked: the rate its optimiser ran at (None: the run loop's default)
        cfg = replace(cfg, lr=run_lr(state))
    return Resumed(model, cfg, provenance, state)


def run_lr(state: dict) -> float | None:
    """The learning rate a run's saved optimiser state steps at, or None when it does not say."""
    try:
        lr = float(state["optimizer"]["param_groups"][0]["lr"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return lr if math.isfinite(lr) and lr > 0 else None


def restore_optimizer(optimizer: torch.optim.Optimizer, state: dict, out, lr: float) -> float | None:
    """Load the saved optimiser state, then step at ``lr`` (the run's own rate unless another was
    asked). Returns the rate it replaced, or None when it kept the run's."""
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError) as exc:
        raise SettingsError("cannot resume: the optimiser state does not fit this run's trainable "
                            f"parameters (were --freeze-stages or --freeze-encoder changed?) ({exc})", out) from None
    before = optimizer.param_groups[0]["lr"]
    for group in optimizer.param_groups:
        group["lr"] = lr
    return before if before != lr else None
