"""A whole training run: data, model, DDP, schedule, validation, checkpoints, logs; the building
block of ``sasnet train``, ``sasnet finetune`` and the app's fine-tuning.

The run composes the parts of ``sasnet_core.training``: ``steps`` (one step and the one step
loop), ``validation`` (counting the validation images as ``sasnet eval`` does), ``resume`` (the
run folder, its checkpoints and resuming) and ``recorder`` (what the run records as it goes).
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import sasnet
from sasnet_core.training import distributed as D
from sasnet_core.training.config import PAPER_LR, TrainConfig
from sasnet_core.training.data import (
    Sample,
    collate_crops,
    crop_dataset,
    load_samples,
    split_holdout,
    training_samples,
    validation_sets,
)
from sasnet_core.training.encoder_init import encoder_calibration_images
from sasnet_core.training.jsonlog import JsonLog
from sasnet_core.training.recorder import Position, RunRecorder
from sasnet_core.training.resume import (
    BEST,
    LAST,
    check_run_folder,
    data_folder,
    restore_optimizer,
    resume_run,
    save_training_checkpoint,
)
from sasnet_core.training.signals import StopRequest, ignore_stop_signals
from sasnet_core.training.steps import (
    configure_backends,
    freeze_stages_,
    make_optimizer,
    precision_for,
    set_train_mode,
    step_loop,
    train_step,
)
from sasnet_core.util.errors import DatasetLayoutError, SASNetError, SettingsError
from sasnet_core.util.progress import StepBar
from sasnet_core.weights.registry import load_model


@dataclass
class TrainResult:
    status: str  # completed | stopped | time_limit
    step: int
    checkpoint: Path | None  # last.pth (or the fine-tuned model)
    best_checkpoint: Path | None
    figures: dict = field(default_factory=dict)  # final validation figures
    best: dict = field(default_factory=dict)
    history: list = field(default_factory=list)  # step records (rank 0)
    before: dict = field(default_factory=dict)  # validation figures before the first step
    stop_reason: str | None = None  # what stopped a "stopped" run: SIGINT, SIGTERM, stop file, ...


def build_model(cfg: TrainConfig):
    """(model, provenance dict) from ``cfg.init`` or from scratch (+ ImageNet encoder)."""
    arch = SASNetConfig(block_size=cfg.block_size, selection=cfg.selection,
                        width_mult=cfg.width_mult)
    if cfg.init:
        model, info = load_model(cfg.init, device="cpu", config=arch)
        return model, {"parent": str(info.path), "parent_name": info.name,
                       "parent_kind": info.kind}
    enc = cfg.encoder_weights if cfg.encoder_weights not in (None, "", "none") else None
    model = sasnet(config=arch, encoder_weights=enc, calibration_images=encoder_calibration_images(cfg))
    return model, {"parent": None, "encoder_init": enc or "random"}


def _samples_for(cfg: TrainConfig) -> tuple[list[Sample], list[Sample], str]:
    """The training images of every data set of ``cfg``, and the validation images: ``--val``,
    else ``--holdout`` of the training images, else the test split of each data set that has one."""
    data = cfg.data_sets
    train = training_samples(data, all_annotated=cfg.all_annotated, fold=cfg.fold)
    if cfg.val_data:
        return train, load_samples(cfg.val_data, split="test", all_annotated=True), str(cfg.val_data)
    if cfg.holdout > 0:
        train, val = split_holdout(train, cfg.holdout, cfg.seed)
        return train, val, f"holdout {cfg.holdout:g} of {' + '.join(data)}"
    sets = validation_sets(data, fold=cfg.fold)
    val = [s for _, samples in sets for s in samples]
    return train, val, " + ".join(f"{path} test split" for path, _ in sets)


class _EpochSampler(torch.utils.data.Sampler):
    """DistributedSampler (one replica when not distributed) that can skip the batches a resumed
    run already did in its current epoch."""

    def __init__(self, base: DistributedSampler):
        self.base, self.skip = base, 0

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def __iter__(self):
        idx = list(iter(self.base))[self.skip:]
        self.skip = 0
        return iter(idx)

    def __len__(self) -> int:
        return len(self.base) - self.skip


def train(cfg: TrainConfig, *, model: nn.Module | None = None, provenance: dict | None = None,
          train_samples: list[Sample] | None = None, val_samples: list[Sample] | None = None,
          val_desc: str | None = None, log: JsonLog | None = None,
          stop: StopRequest | None = None, final_path: str | os.PathLike | None = None,
          extra_metadata: dict | None = None, start_event: dict | None = None,
          evaluate_before: bool = False, save_run: bool = True) -> TrainResult:
    """Run the schedule of ``cfg``; the building block of ``sasnet train`` and ``finetune``.

    Given ``model``/``*_samples`` it uses them, else builds them from ``cfg``. ``final_path``:
    write the final model there (lean, atomic) as well. ``evaluate_before``: validate once before
    the first step (fine-tuning reports MAE before and after). ``save_run=False``: no run folder
    (no last.pth / best.pth), only ``final_path``.
    """
    if save_run:
        check_run_folder(cfg)
    info = D.setup(cfg.device)
    own_log = log is None
    log = log or JsonLog(cfg.log_json, enabled=info.is_main)
    finished = False
    try:
        with (stop or StopRequest(cfg.stop_file)) as stopper:
            run = _Run(cfg, info, log, stopper, save_run=save_run, extra_meta=extra_metadata or {},
                       start_event=start_event or {})
            result = run.run(model, provenance, train_samples, val_samples, val_desc,
                             final_path, evaluate_before)
        finished = True
        return result
    except BaseException as exc:
        log.fail(exc, cfg.to_dict())
        raise
    finally:
        if own_log:
            log.close()
        D.cleanup(info, finished=finished)


class _Run:
    """One run, set up in stages (model, loader, records) and then stepped to its end."""

    def __init__(self, cfg: TrainConfig, info: D.DistInfo, log: JsonLog, stopper: StopRequest, *,
                 save_run: bool, extra_meta: dict, start_event: dict):
        self.cfg, self.info, self.log, self.stopper = cfg, info, log, stopper
        self.save_run, self.extra_meta, self.start_event = save_run, extra_meta, start_event
        self.pos = Position()
        self.last_path = Path(cfg.out) / LAST

    def run(self, model, provenance, train_samples, val_samples, val_desc, final_path,
            evaluate_before) -> TrainResult:
        torch.manual_seed(self.cfg.seed)
        configure_backends(self.info.device)
        self.prec = precision_for(self.info.device, self.cfg.precision)
        if train_samples is None:
            train_samples, val_samples, val_desc = _samples_for(self.cfg)
        val_samples = val_samples or []
        resume_state = self._model(model, provenance)
        self._loader(train_samples)
        rec = self._recorder(train_samples, val_samples, val_desc, resume_state)
        if evaluate_before:
            rec.evaluate_before()
        return self._steps(rec, final_path)

    # -- model, optimiser, resume ----------------------------------------------------------
    def _model(self, model, provenance) -> dict | None:
        cfg, info = self.cfg, self.info
        resume_state = None
        if cfg.resume and self.save_run and self.last_path.is_file():
            resumed = resume_run(cfg, self.last_path)
            model, provenance, resume_state = resumed.model, resumed.provenance, resumed.state
            self.cfg = cfg = resumed.cfg
        elif cfg.resume and info.is_main:
            self.log.write("message", text=f"no {self.last_path} to resume from: starting a new run")
        if cfg.lr is None:  # a new run after all, or a saved rate unusable: the paper's
            self.cfg = cfg = replace(cfg, lr=PAPER_LR)
        if model is None:
            model, provenance = build_model(cfg)
        self.provenance = provenance or {}
        freeze_stages_(model, cfg.freeze_stages)
        model.to(info.device)
        if self.prec.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model, self.net = model, model
        if info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            device = info.device
            self.net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
        k = model.config.block_size
        if cfg.crop_size % k:
            raise SettingsError(f"--crop-size {cfg.crop_size} is not a multiple of the model's patch size k = {k}")
        if resume_state is not None:
            self._restore(resume_state)
        return resume_state

    def _restore(self, state: dict) -> None:
        cfg, pos = self.cfg, self.pos
        replaced = restore_optimizer(self.optimizer, state, cfg.out, cfg.lr)
        if replaced is not None and self.info.is_main:
            text = f"learning rate {cfg.lr:g} from step {int(state['step']) + 1} (the run stepped at {replaced:g})"
            self.log.write("message", text=text)
            logging.getLogger(__name__).info(text)
        pos.step = int(state["step"])
        if pos.step >= cfg.steps and self.info.is_main:  # else "completed" would read as trained
            text = (f"{self.last_path} is at step {pos.step} already, --steps is {cfg.steps}: nothing "
                    "left to train; give more --steps to go on")
            self.log.write("message", text=text)
            logging.getLogger(__name__).warning(text)
        pos.epoch = int(state.get("epoch", 0))
        pos.batch_in_epoch = int(state.get("batch_in_epoch", 0))
        pos.elapsed_prev = float(state.get("elapsed_s", 0.0))
        if isinstance(state.get("torch_rng"), torch.Tensor):
            torch.set_rng_state(state["torch_rng"])

    # -- data --------------------------------------------------------------------------------
    def _loader(self, train_samples) -> None:
        cfg, info = self.cfg, self.info
        self.crops = crop_dataset(train_samples, cfg.crop_size, cfg.crops_per_image, cfg.flip,
                                  cfg.sigma, cfg.adaptive_kernel, self.model.config.count_scale)
        base = DistributedSampler(self.crops, num_replicas=info.world_size, rank=info.rank,
                                  shuffle=True, seed=cfg.seed)
        self.sampler = _EpochSampler(base)
        drop_last = len(base) >= cfg.images_per_step  # a tiny set still gives one (smaller) batch
        self.loader = DataLoader(self.crops, batch_size=cfg.images_per_step, sampler=self.sampler,
                                 num_workers=cfg.workers, collate_fn=collate_crops,
                                 drop_last=drop_last, pin_memory=info.device.type == "cuda",
                                 persistent_workers=False,
                                 worker_init_fn=ignore_stop_signals if cfg.workers else None)
        self.steps_per_epoch = len(base) // cfg.images_per_step if drop_last else 1

    def _batches(self) -> Iterator:
        """Batches epoch after epoch; ends (a stopped run) when a stop request also stopped the
        loader processes (Ctrl-C in a terminal reaches them too)."""
        pos = self.pos
        while True:
            self.sampler.set_epoch(pos.epoch)
            if hasattr(self.crops, "set_epoch"):
                self.crops.set_epoch(pos.epoch)
            got = False
            try:
                for batch in _worker_errors_named(self.loader):
                    got = True
                    pos.batch_in_epoch += 1  # counted when taken, so a checkpoint skips it on resume
                    yield batch
            except RuntimeError:
                if self.stopper.requested:
                    pos.status = "stopped"
                    return
                raise
            if not got:
                raise DatasetLayoutError("no training batch: the data set is empty")
            pos.epoch, pos.batch_in_epoch = pos.epoch + 1, 0

    # -- records -----------------------------------------------------------------------------
    def _recorder(self, train_samples, val_samples, val_desc, resume_state) -> RunRecorder:
        cfg, info, model = self.cfg, self.info, self.model
        self.bar = StepBar(cfg.steps, desc="train", enabled=cfg.progress and info.is_main)
        run_meta = {"data": data_folder(cfg), "frozen_stages": cfg.freeze_stages,
                    "train_images": len(train_samples),
                    "val_images": len(val_samples), "validation": val_desc or None,
                    "train_config": cfg.to_dict(), **self.provenance, **self.extra_meta}
        rec = RunRecorder(cfg, info, self.log, self.bar, self.pos, net=self.net, model=model,
                          optimizer=self.optimizer, precision=self.prec, val_samples=val_samples,
                          run_meta=run_meta, save_run=self.save_run, wall0=time.perf_counter())
        if resume_state is not None:
            rec.restore_best(resume_state.get("best", rec.best))
        self.log.write("start", config=cfg.to_dict(), device=str(info.device), precision=self.prec.name,
                       world_size=info.world_size, backend=info.backend,
                       train_images=len(train_samples), val_images=len(val_samples),
                       validation=val_desc or None, steps_per_epoch=self.steps_per_epoch,
                       parameters=sum(p.numel() for p in model.parameters()),
                       trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
                       resumed_from_step=self.pos.step if resume_state else None, out=str(Path(cfg.out)),
                       **self.provenance, **self.start_event)
        return rec

    # -- the steps and the end -------------------------------------------------------------
    def _should_stop(self, wall0: float) -> bool:
        cfg, stopper = self.cfg, self.stopper
        # --max-minutes counts wall time of this process's loop (validation included)
        limit_hit = cfg.max_minutes is not None and time.perf_counter() - wall0 >= cfg.max_minutes * 60
        if not D.any_process(stopper.requested or limit_hit, self.info):
            return False
        # a stop request may itself be a time budget (fine-tuning counts set-up too)
        self.pos.status = ("time_limit" if (limit_hit and not stopper.requested)
                           or stopper.reason == "time_limit" else "stopped")
        return True

    def _steps(self, rec: RunRecorder, final_path) -> TrainResult:
        cfg, pos = self.cfg, self.pos
        set_train_mode(self.net, cfg.freeze_stages, cfg.keeps_bn_stats)
        if pos.batch_in_epoch >= self.steps_per_epoch:  # the checkpoint was taken at an epoch's end
            pos.epoch, pos.batch_in_epoch = pos.epoch + 1, 0
        self.sampler.skip = pos.batch_in_epoch * cfg.images_per_step
        wall0 = rec.start_clock()
        step_fn = partial(train_step, self.net, self.optimizer, lam=cfg.lam, gamma=cfg.gamma,
                          use_pra=cfg.use_pra, precision=self.prec, device=self.info.device)
        batches = self._batches()
        try:
            step_loop(step_fn, batches, pos.step, cfg.steps,
                      should_stop=partial(self._should_stop, wall0), on_step=rec.on_step)
        finally:
            # The loader's processes end here, also when a step raised: a suspended generator
            # kept by the error's caller would keep them alive to the process's exit, where
            # Python sends them SIGTERM (which they ignore) and waits for them forever.
            batches.close()
        if pos.status == "running":
            pos.status = "completed"
        self.bar.show(pos.step, "", eta_s=0.0, force=True)
        self.bar.close()
        rec.validate_final()
        rec.save_last(rec.figures)
        return self._finish(rec, final_path)

    def _finish(self, rec: RunRecorder, final_path) -> TrainResult:
        pos, info = self.pos, self.info
        out_path = self.last_path if self.save_run else None
        if final_path is not None and info.is_main:
            out_path = save_training_checkpoint(final_path, self.model, rec.metadata(rec.figures))
            self.log.write("checkpoint", kind="final", path=str(out_path), step=pos.step)
        best_ck = Path(self.cfg.out) / BEST if rec.has_best and self.save_run else None
        result = TrainResult(pos.status, pos.step, Path(out_path) if out_path else None, best_ck,
                             rec.figures, dict(rec.best), rec.history, dict(rec.before),
                             self.stopper.reason)
        rec.end_event(out_path, best_ck, self.stopper.reason)
        if info.is_main:
            self.bar.message(f"{pos.status} at step {pos.step}: {out_path}")
        return result


def _worker_errors_named(loader: Iterable) -> Iterator:
    """Batches of ``loader``; a person's error raised in a loader process (a damaged image) comes
    back from torch as the same type wrapped around the worker's whole traceback: raise it again
    with its own one-sentence message, which is the traceback's last line."""
    try:
        yield from loader
    except SASNetError as exc:
        text = str(exc)
        if "Original Traceback" not in text:
            raise
        last = text.strip().splitlines()[-1]
        prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
        raise type(exc)(last[len(prefix):] if last.startswith(prefix) else last) from None
