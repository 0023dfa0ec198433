"""Fine-tuning as a service, shared by the app and scripts (no Qt here).

One :class:`FineTuneRun` is one run a person asked for::

    run = FineTuneRun(FineTuneRequest(weights="shhb", images=paths, cfg=finetune_config(steps=200)))
    run.prepare()        # reads the reviewed set now, names the new model, stages the data
    result = run.run()   # trains in this process (scripts) ...
    argv = run.command() # ... or these are the arguments of `python -m sasnet_core finetune`,
    run.finish(end)      #     run in a child process (the app); then the staging goes
    run.register(make_default=True)

It owns what used to be spread over the app's panel: which images (``staging``), the name and
file of the new model, its provenance (parent model name and file, the data's real folder) and
its registration; every step may run off the GUI thread. The time budget covers the whole run,
from the moment it was asked for (``budget``); a minutes budget below what this model needs on this
machine is refused before anything is staged (``estimate_minimum``). A new model nobody chose to
keep is removed (``discard``), so a rejected run leaves no 156 MB file behind.
"""
from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from sasnet_core.io.atomic import remove_stale_temp_files
from sasnet_core.io.imageio import image_size
from sasnet_core.training.budget import (
    BudgetTooSmallError,
    MinimumBudget,
    measure_speed,
    minimum_budget,
)
from sasnet_core.training.config import TrainConfig
from sasnet_core.training.data import holdout_count, load_samples, split_holdout
from sasnet_core.training.finetuning import finetune, finetune_config, parent_name_of
from sasnet_core.training.staging import (
    STOP_FILE,
    ReviewedSet,
    read_reviewed_set,
    remove_staging,
    stage,
)
from sasnet_core.util import paths
from sasnet_core.util.errors import ImageReadError, ModelRegistryError, SASNetError
from sasnet_core.util.vocab import (
    DEFAULT_TRAINING_PRECISION,
    RUN_KEPT,
    TRAINING_PRECISIONS,
)
from sasnet_core.weights.registry import ModelRegistry, model_name_from


def training_precision(precision: str | None) -> str:
    """The precision the app counts with, as training takes it: training has no fp16 (without
    loss scaling it diverges), so fp16 trains with the automatic choice (bf16 on GPUs)."""
    value = str(precision or DEFAULT_TRAINING_PRECISION)
    return value if value in TRAINING_PRECISIONS else str(DEFAULT_TRAINING_PRECISION)


def new_model_path(parent_name: str, registry=None, folder: Path | None = None) -> Path:
    """A new file in the models folder, named after the parent and the time, free on disk and in
    the registry."""
    folder = folder or paths.models_dir()
    try:
        taken = {e.name for e in registry.entries()} if registry is not None else set()
    except SASNetError:
        taken = set()
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = model_name_from(parent_name, limit=32)
    name, i = f"{base}-ft-{stamp}", 2
    while (folder / f"{name}.pth").exists() or name in taken:  # two runs in one second
        name, i = f"{base}-ft-{stamp}-{i}", i + 1
    return folder / f"{name}.pth"


def estimate_minimum(weights: str | os.PathLike, reviewed: ReviewedSet, cfg: TrainConfig,
                     registry=None) -> MinimumBudget:
    """The least minutes budget a run of ``weights`` on ``reviewed`` needs here (see
    ``budget.minimum_budget``): it loads the model and times a forward pass the first time."""
    sizes = []
    for image, ann in reviewed.items:
        try:
            w, h = ann.image_size or image_size(image)
        except ImageReadError:
            continue  # the run itself names the file; the estimate only needs sizes
        sizes.append(int(w) * int(h))
    held = holdout_count(len(reviewed), cfg.holdout)
    # The largest: whichever images are held out, a budget above the minimum never runs out.
    return _minimum(weights, sum(sorted(sizes, reverse=True)[:held]), cfg, registry)


def check_data_budget(weights: str | os.PathLike, data: str | os.PathLike, cfg: TrainConfig) -> None:
    """Refuse ``cfg.max_minutes`` below the minimum of a run of ``weights`` on ``data`` (any data
    set layout, as ``sasnet finetune`` reads it) with a BudgetTooSmallError naming the minimum
    and ``--steps``, before anything is written; the same rule the app's panel and ``FineTuneRun.prepare`` apply."""
    if cfg.max_minutes is None:
        return
    samples = load_samples(data, split="train", all_annotated=cfg.all_annotated, fold=cfg.fold)
    try:
        _train, held_out = split_holdout(samples, cfg.holdout, cfg.seed)  # the ones the run holds out
    except SASNetError:
        held_out = []  # the run itself says why it cannot hold images out
    eval_pixels = 0
    for s in held_out:
        try:
            w, h = s.resize or image_size(s.image_path)
        except ImageReadError:
            continue  # the run itself names the file
        eval_pixels += int(w) * int(h)
    minimum = _minimum(weights, eval_pixels, cfg)
    if not minimum.allows(cfg.max_minutes):
        raise BudgetTooSmallError(cfg.max_minutes, minimum,
                                  shorter="leave out --max-minutes and set the run's length with --steps")


def _minimum(weights, eval_pixels: int, cfg: TrainConfig, registry=None) -> MinimumBudget:
    path = (registry or ModelRegistry()).resolve(weights)  # a file, or a registered name
    speed = measure_speed(path, cfg.device, training_precision(cfg.precision))
    try:
        save_bytes = path.stat().st_size
    except OSError:
        save_bytes = 0
    return minimum_budget(speed, images_per_step=cfg.images_per_step, crops_per_image=cfg.crops_per_image,
                          crop_size=cfg.crop_size, eval_pixels=eval_pixels, save_bytes=save_bytes)


@dataclass
class FineTuneRequest:
    """What a person asked for. ``images``: the images to choose from (the reviewed ones are
    picked when the run starts); ``out``: None for a new file in the app's models folder."""

    weights: str | os.PathLike
    images: list = field(default_factory=list)
    cfg: TrainConfig = field(default_factory=finetune_config)
    out: str | os.PathLike | None = None
    name: str | None = None
    minimum: MinimumBudget | None = None  # measured already (the app shows it before the start)
    started_at: float | None = None  # Unix time the budget counts from (default: the request)
    extra_args: list[str] = field(default_factory=list)  # more `sasnet finetune` options


class FineTuneRun:
    def __init__(self, request: FineTuneRequest, registry=None):
        self.request = request
        self.registry = registry or ModelRegistry()
        self.started_at = request.started_at if request.started_at is not None else time.time()
        self.reviewed = ReviewedSet()
        self.staging: Path | None = None
        self.out: Path | None = None
        self.name: str | None = None
        self.parent: tuple[str, Path] | None = None  # (name, file) of the starting model
        self.cfg: TrainConfig = request.cfg
        self.model_path: Path | None = None  # the new model, once a run kept one
        self.minimum: MinimumBudget | None = request.minimum

    # -- before ----------------------------------------------------------------------------
    def prepare(self) -> ReviewedSet:
        """Read the reviewed set now, resolve the parent, name the output, stage the data."""
        import dataclasses

        self.reviewed = read_reviewed_set(self.request.images)
        parent_path = self.registry.resolve(self.request.weights)
        minutes = self.request.cfg.max_minutes
        if minutes is not None and len(self.reviewed):  # refused before anything is staged
            if self.minimum is None:
                self.minimum = estimate_minimum(parent_path, self.reviewed, self.request.cfg)
            if not self.minimum.allows(minutes):
                raise BudgetTooSmallError(minutes, self.minimum)
        self.parent = (parent_name_of(self.request.weights, parent_path), parent_path)
        self.out = Path(self.request.out) if self.request.out else new_model_path(
            self.parent[0], self.registry)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.name = self.request.name or self.out.stem
        self.staging = stage(self.reviewed)  # refuses an empty set
        holdout = self.request.cfg.holdout if len(self.reviewed) >= 2 else 0.0
        self.cfg = dataclasses.replace(
            self.request.cfg, holdout=holdout, precision=training_precision(self.request.cfg.precision),
            stop_file=str(self.staging / STOP_FILE))
        return self.reviewed

    @property
    def stop_file(self) -> Path | None:
        return self.staging / STOP_FILE if self.staging else None

    def _weights_arg(self) -> str:
        """The parent by registry name when it has one (the child resolves the same registry)."""
        name, path = self.parent
        return name if self.registry.get(name) is not None and self.registry.get(name).path == path \
            else str(path)

    def command(self) -> list[str]:
        """Arguments for ``sys.executable`` that run this (prepared) run as ``sasnet finetune``,
        following it on stdout in JSON lines."""
        cfg = self.cfg
        args = ["-m", "sasnet_core", "finetune", self._weights_arg(), str(self.staging),
                "--out", str(self.out), "--name", self.name, "--log-json", "-", "--no-progress",
                "--log-every", "1", "--steps", str(cfg.steps), "--holdout", f"{cfg.holdout:g}",
                "--device", str(cfg.device), "--precision", str(cfg.precision),
                "--bn-stats", cfg.bn_stats,
                "--stop-file", str(self.stop_file), "--budget-from", f"{self.started_at:.3f}"]
        if cfg.max_minutes is not None:
            args += ["--max-minutes", f"{cfg.max_minutes:g}"]
        if cfg.freeze_encoder:  # the app's switch, named as a person reads it in the command
            args.append("--freeze-encoder")
        elif cfg.freeze_stages:
            args += ["--freeze-stages", str(cfg.freeze_stages)]
        return args + list(self.request.extra_args)

    # -- in this process -------------------------------------------------------------------
    def run(self, log=None, stop=None):
        """Prepare if needed, train here, finish; returns the TrainResult."""
        if self.staging is None:
            self.prepare()
        try:
            result = finetune(self._weights_arg(), self.staging, self.out, self.cfg,
                              name=self.name, log=log, stop=stop, started_at=self.started_at)
        except BaseException:
            self.finish(None)
            raise
        self.finish({"status": result.status, "step": result.step,
                     "checkpoint": str(result.checkpoint) if result.checkpoint else None})
        return result

    # -- after -----------------------------------------------------------------------------
    def finish(self, end: dict | None) -> Path | None:
        """After the trainer ended, however it ended (``end``: its last record, None when it
        failed): keep the new model only if it learnt something, remove partial saves and the
        staging data. Returns the new model's file or None."""
        try:
            status = (end or {}).get("status")
            checkpoint = (end or {}).get("checkpoint")
            step = int((end or {}).get("step") or 0)
            path = Path(checkpoint) if checkpoint else None
            if path is not None and not path.is_absolute() and self.staging is not None:
                path = self.staging / path  # the child's working folder
            if status not in RUN_KEPT or step == 0 or path is None or not path.is_file():
                if path is not None and step == 0 and status in RUN_KEPT:
                    path.unlink(missing_ok=True)  # stopped before the first step: the parent
                path = None
            if self.out is not None:  # a save the trainer was killed in the middle of
                remove_stale_temp_files(self.out)
            self.model_path = path
            return path
        finally:
            self.cleanup()

    def discard(self) -> bool:
        """Remove the new model unless it was registered (kept or used); True if a file went.
        A run nobody chose to keep (not better on the held-out images, or declined) ends here."""
        path, self.model_path = self.model_path, None
        if path is None:
            return False
        try:
            gone = self.registry.delete_unless_registered(path)
        except SASNetError:
            gone = False  # an unreadable or busy registry: never delete what it may list
        if not gone:
            self.model_path = path
        return gone

    def cleanup(self) -> None:
        remove_staging(self.staging)
        self.staging = None

    def register(self, make_default: bool = True):
        """Register the new model (its file carries the provenance); the parent gets an entry too
        when it was used straight from a file, so a person can go back to it."""
        if self.model_path is None:
            raise ModelRegistryError("this fine-tuning run left no model to register")
        self._keep_parent_registered()
        return self.registry.get(self.name) or self.registry.add(
            self.name, self.model_path, make_default=make_default)

    def _keep_parent_registered(self) -> None:
        parent_name, parent_path = self.parent
        entries = self.registry.entries()
        if any(e.path.resolve() == parent_path.resolve() for e in entries):
            return
        self.registry.add(model_name_from(parent_name, {e.name for e in entries}), parent_path)

