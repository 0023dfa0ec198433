"""Training SASNet as in the paper: plain functions in the torchvision style.

    train_step        one optimiser step on one batch of crops -> loss parts
    train_steps       n steps from any iterator of batches (tests, scripts, fine-tuning)
    train_one_epoch   one pass over a DataLoader
    evaluate          MAE / MSE of whole-image counts
    train             a whole run: data, model, DDP, schedule, validation, checkpoints, logs

Device settings: on CUDA the forward pass runs under ``torch.autocast(dtype=torch.bfloat16)``
with the model and inputs in ``channels_last``, cuDNN benchmark on (fixed crop size) and TF32
matmuls allowed; the losses are computed in float32 (their sums are large and the PRA hard mask
needs exact signs). bf16 keeps fp32's exponent range, so no GradScaler is needed. On CPU
everything is fp32 (bf16 autocast on CPU is slower than fp32 on most CPUs).

A run folder holds ``last.pth`` (a normal checkpoint that also carries the optimiser state for
``--resume``), ``best.pth`` (lowest validation MAE, model only) and ``log.jsonl``. Both files are
written atomically by rank 0 only.
"""
from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from sasnet_core.util.errors import CheckpointError, DatasetLayoutError, OutputExistsError
from sasnet_core.training.losses import total_loss
from sasnet_core.training import distributed as D
from sasnet_core.training.config import TrainConfig
from sasnet_core.training.data import (
    FullImageDataset,
    Sample,
    collate_crops,
    crop_dataset,
    load_samples,
    split_holdout,
    validation_samples,
)
from sasnet_core.training.jsonlog import JsonLog
from sasnet_core.training.progressbar import ProgressBar
from sasnet_core.training.signals import StopRequest, ignore_stop_signals

LAST, BEST, LOG = "last.pth", "best.pth", "log.jsonl"


# -------------------------------------------------------------------------------------------
# device settings
# -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Precision:
    autocast: bool
    dtype: torch.dtype
    channels_last: bool

    @property
    def name(self) -> str:
        return ("bf16-autocast" if self.autocast else "fp32") + (
            "+channels_last" if self.channels_last else "")


def precision_for(device: torch.device, precision: str = "auto") -> Precision:
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return Precision(False, torch.float32, False)
    return Precision(True, torch.bfloat16, device.type == "cuda")


def _configure_backends(device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


def set_train_mode(model: nn.Module, freeze_encoder: bool = False, keep_bn_stats: bool = False) -> None:
    """model.train(), but a frozen encoder keeps its BatchNorm statistics (eval mode), and with
    ``keep_bn_stats`` every BatchNorm layer does (its scale and shift still learn)."""
    model.train()
    if freeze_encoder:
        _unwrap(model).encoder.eval()
    if keep_bn_stats:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def freeze_encoder_(model: nn.Module) -> None:
    for p in _unwrap(model).encoder_parameters():
        p.requires_grad_(False)


def make_optimizer(model: nn.Module, lr: float = 1e-5, weight_decay: float = 0.0
                   ) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters (everything frozen?)")
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


# -------------------------------------------------------------------------------------------
# steps
# -------------------------------------------------------------------------------------------
def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               targets: torch.Tensor, *, lam: float = 10.0, gamma: float = 1.0,
               use_pra: bool = True, precision: Precision | None = None,
               device: torch.device | None = None) -> dict[str, float]:
    """One Adam step on a batch of crops (B,3,c,c) with density targets (B,1,c,c)."""
    device = device or next(model.parameters()).device
    precision = precision or precision_for(device, "fp32")
    fmt = torch.channels_last if precision.channels_last else torch.contiguous_format
    images = images.to(device, non_blocking=True, memory_format=fmt)
    targets = targets.to(device, non_blocking=True)
    k = _unwrap(model).config.block_size
    with torch.autocast(device.type, dtype=precision.dtype, enabled=precision.autocast):
        out = model(images)
    loss, parts = total_loss(out, targets, lam=lam, gamma=gamma, use_pra=use_pra, k=k)
    # Checked before the step: a NaN/inf loss must not be written into the weights and the Adam
    # moments (the caller's model, e.g. the GUI's, stays as it was after the last good step).
    if not math.isfinite(parts["total"]):
        raise FloatingPointError(f"loss is {parts['total']}: training diverged "
                                 "(lower the learning rate or check the data)")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return parts


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer,
                batches: Iterable[tuple[torch.Tensor, torch.Tensor]], num_steps: int, *,
                lam: float = 10.0, gamma: float = 1.0, use_pra: bool = True,
                precision: Precision | None = None, device: torch.device | None = None,
                freeze_encoder: bool = False, keep_bn_stats: bool = False,
                on_step: Callable[[int, dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> list[dict[str, float]]:
    """Up to ``num_steps`` steps, cycling over ``batches`` (re-iterated when exhausted).

    Returns the loss parts of every step done. ``should_stop`` is polled before each step.
    """
    history: list[dict[str, float]] = []
    set_train_mode(model, freeze_encoder, keep_bn_stats)
    it: Iterator = iter(batches)
    while len(history) < num_steps:
        if should_stop is not None and should_stop():
            break
        try:
            images, targets = next(it)
        except StopIteration:
            it = iter(batches)
            try:
                images, targets = next(it)
            except StopIteration:
                raise DatasetLayoutError("no training batch: the data set is empty") from None
        parts = train_step(model, optimizer, images, targets, lam=lam, gamma=gamma,
                           use_pra=use_pra, precision=precision, device=device)
        history.append(parts)
        if on_step is not None:
            on_step(len(history), parts)
    return history


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader,
                    device: torch.device, epoch: int, cfg: TrainConfig | None = None,
                    precision: Precision | None = None) -> dict[str, float]:
    """One pass over ``loader``; returns the mean of each loss part."""
    cfg = cfg or TrainConfig()
    for obj in (getattr(loader, "sampler", None), getattr(loader, "dataset", None)):
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
    hist = train_steps(model, optimizer, loader, len(loader), lam=cfg.lam, gamma=cfg.gamma,
                       use_pra=cfg.use_pra, precision=precision, device=device,
                       freeze_encoder=cfg.freeze_encoder, keep_bn_stats=cfg.keeps_bn_stats)
    return {k: sum(h[k] for h in hist) / max(len(hist), 1) for k in (hist[0] if hist else {})}


# -------------------------------------------------------------------------------------------
# evaluation
# -------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, device: torch.device | str = "cpu", *,
             precision: Precision | None = None, dist_info: D.DistInfo | None = None
             ) -> dict[str, float]:
    """Whole-image counts: {"mae", "mse", "n"}. ``mse`` is the root of the mean squared error,
    as crowd-counting papers (and the SASNet paper) report it. ``dataset`` items are
    (normalised image (3,H,W), true count[, ROI mask (H,W) or None]). Under DDP each process takes every world_size-th
    image and the sums are all-reduced, so all processes return the same figures."""
    device = torch.device(device)
    net = _unwrap(model)
    was_training = net.training
    net.eval()
    precision = precision or precision_for(device, "fp32")
    info = dist_info or D.DistInfo(device=device)
    k, scale = net.config.block_size, net.config.count_scale
    abs_sum = sq_sum = n = 0.0
    for i in range(info.rank, len(dataset), info.world_size):
        image, true, *rest = dataset[i]
        mask = rest[0] if rest else None
        x = image[None].to(device)
        h, w = x.shape[-2:]
        if h < k or w < k:  # the model needs one whole k x k patch; pad with "mean colour" zeros
            x = nn.functional.pad(x, (0, max(k - w, 0), 0, max(k - h, 0)))
        if precision.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=precision.dtype, enabled=precision.autocast):
            out = net(x)
        density = out.density.float()[0, 0, :h, :w]
        if mask is not None:
            density = density * mask.to(density.device)
        count = float(density.sum()) / scale
        abs_sum += abs(count - float(true))
        sq_sum += (count - float(true)) ** 2
        n += 1
    abs_sum, sq_sum, n = D.all_reduce_sum([abs_sum, sq_sum, n], info)
    if was_training:
        net.train()
    if n == 0:
        return {"mae": float("nan"), "mse": float("nan"), "n": 0}
    return {"mae": abs_sum / n, "mse": math.sqrt(sq_sum / n), "n": int(n)}


# -------------------------------------------------------------------------------------------
# checkpoints
# -------------------------------------------------------------------------------------------
def save_training_checkpoint(path: str | os.PathLike, model: nn.Module, metadata: dict,
                             train_state: dict | None = None) -> Path:
    """Our checkpoint format (loadable by ``load_model``), plus the optimiser state for resuming
    when ``train_state`` is given. Atomic: a crash leaves the previous file."""
    from sasnet_core.weights.checkpoint import save_checkpoint

    extra = {"train_state": train_state} if train_state is not None else None
    return save_checkpoint(path, _unwrap(model), metadata, extra=extra)


def load_train_state(path: str | os.PathLike) -> dict:
    """The optimiser state and position a run folder's last.pth carries for ``--resume``."""
    from sasnet_core.weights.checkpoint import read_checkpoint_file

    try:
        obj = read_checkpoint_file(path)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot resume: {exc.detail}", path) from None
    state = obj.get("train_state") if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError("cannot resume: this checkpoint holds no optimiser state "
                              "(only a run folder's last.pth does)", path)
    step = state.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0 or not isinstance(state.get("optimizer"), dict):
        raise CheckpointError("cannot resume: its training state is damaged (no step count or "
                              "optimiser state)", path)
    for key in ("epoch", "batch_in_epoch"):
        if not isinstance(state.get(key, 0), int) or state.get(key, 0) < 0:
            raise CheckpointError(f"cannot resume: its training state field {key!r} is damaged", path)
    if not isinstance(state.get("elapsed_s", 0.0), (int, float)) or not isinstance(state.get("best", {}), dict):
        raise CheckpointError("cannot resume: its training state is damaged (elapsed time or best figures)", path)
    mae = state.get("best", {}).get("mae")
    if mae is not None and (isinstance(mae, bool) or not isinstance(mae, (int, float))):
        raise CheckpointError("cannot resume: its best validation figure is not a number", path)
    rng = state.get("torch_rng")
    if rng is not None and not (isinstance(rng, torch.Tensor) and rng.dtype == torch.uint8 and rng.dim() == 1):
        raise CheckpointError("cannot resume: its random number state is damaged", path)
    return state


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# -------------------------------------------------------------------------------------------
# a whole run
# -------------------------------------------------------------------------------------------
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


def _data_folder(cfg: TrainConfig) -> str | None:
    """The data set a run learns from, as its metadata records it (and a resume compares it)."""
    return os.fspath(Path(cfg.data).expanduser().resolve()) if cfg.data else None


def _changed_since_start(metadata: dict, cfg: TrainConfig) -> list[str]:
    """What this resume asks that differs from the run it continues (data set, fold, selection),
    as phrases; empty when the run can go on."""
    was = metadata.get("train_config") if isinstance(metadata.get("train_config"), dict) else {}
    out = []
    data, here = metadata.get("data"), _data_folder(cfg)
    if isinstance(data, str) and here and data != here:
        out.append(f"it learnt from {data}, this run names {here}")
    for key, option in (("fold", "--fold"), ("selection", "--selection")):
        if key in was and was[key] != getattr(cfg, key):
            out.append(f"it ran with {option} {was[key]}, this run asks for {getattr(cfg, key)}")
    return out


def build_model(cfg: TrainConfig):
    """(model, provenance dict) from ``cfg.init`` or from scratch (+ ImageNet encoder)."""
    from sasnet_core.model.sasnet import SASNetConfig, sasnet

    arch = SASNetConfig(block_size=cfg.block_size, selection=cfg.selection,
                        width_mult=cfg.width_mult)
    if cfg.init:
        from sasnet_core.weights.registry import load_model

        model, info = load_model(cfg.init, device="cpu", config=arch)
        return model, {"parent": str(info.path), "parent_name": info.name,
                       "parent_kind": info.kind}
    enc = cfg.encoder_weights if cfg.encoder_weights not in (None, "", "none") else None
    model = sasnet(config=arch, encoder_weights=enc)
    return model, {"parent": None, "encoder_init": enc or "random"}


def _samples_for(cfg: TrainConfig) -> tuple[list[Sample], list[Sample], str]:
    train = load_samples(cfg.data, split="train", all_annotated=cfg.all_annotated, fold=cfg.fold)
    if cfg.val_data:
        return train, load_samples(cfg.val_data, split="test", all_annotated=True), str(cfg.val_data)
    if cfg.holdout > 0:
        train, val = split_holdout(train, cfg.holdout, cfg.seed)
        return train, val, f"holdout {cfg.holdout:g} of {cfg.data}"
    val = validation_samples(cfg.data, fold=cfg.fold)
    if val:
        return train, val, f"{cfg.data} test split"
    return train, [], ""


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
            result = _run(cfg, info, log, stopper, model, provenance, train_samples, val_samples,
                          val_desc, final_path, extra_metadata or {}, start_event or {},
                          evaluate_before, save_run)
        finished = True
        return result
    except BaseException as exc:
        log.fail(exc, cfg.to_dict())
        raise
    finally:
        if own_log:
            log.close()
        D.cleanup(info, finished=finished)


def _worker_errors_named(loader: Iterable) -> Iterator:
    """Batches of ``loader``; a person's error raised in a loader process (a damaged image) comes
    back from torch as the same type wrapped around the worker's whole traceback: raise it again
    with its own one-sentence message, which is the traceback's last line."""
    from sasnet_core.util.errors import SASNetError

    try:
        yield from loader
    except SASNetError as exc:
        text = str(exc)
        if "Original Traceback" not in text:
            raise
        last = text.strip().splitlines()[-1]
        prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
        raise type(exc)(last[len(prefix):] if last.startswith(prefix) else last) from None


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


def _run(cfg, info, log, stopper, model, provenance, train_samples, val_samples, val_desc,
         final_path, extra_meta, start_event, evaluate_before=False, save_run=True
         ) -> TrainResult:
    torch.manual_seed(cfg.seed)
    device = info.device
    _configure_backends(device)
    prec = precision_for(device, cfg.precision)
    out_dir = Path(cfg.out)
    last_path, best_path = out_dir / LAST, out_dir / BEST

    # -- data ----------------------------------------------------------------------------
    if train_samples is None:
        train_samples, val_samples, val_desc = _samples_for(cfg)
    val_samples = val_samples or []

    # -- model, optimiser, resume --------------------------------------------------------
    resume_state = None
    if cfg.resume and save_run and last_path.is_file():
        from sasnet_core.weights.registry import load_model
        from sasnet_core.model.sasnet import SASNetConfig

        model, ck = load_model(last_path, device="cpu",
                               config=SASNetConfig(selection=cfg.selection))
        if model.config.width_mult != cfg.width_mult:
            # Its weights fix the width. Not asked for: the run goes on at its own width, and that
            # is what its records say. Asked for another: refused, not recorded and ignored.
            if cfg.width_mult != TrainConfig.width_mult:
                from sasnet_core.util.errors import SettingsError

                raise SettingsError(f"cannot resume {last_path}: it holds a model of width "
                                    f"{model.config.width_mult:g}, this run asks for {cfg.width_mult:g}; "
                                    f"give --width-mult {model.config.width_mult:g}, or start a new run "
                                    "with --overwrite")
            cfg = replace(cfg, width_mult=model.config.width_mult)
        changed = _changed_since_start(ck.metadata, cfg)
        if changed:
            from sasnet_core.util.errors import SettingsError

            # One run learns from one data set with one scale selection: its best checkpoint is
            # the best on one validation set, and its record describes every step.
            raise SettingsError(f"cannot resume {last_path}: " + "; ".join(changed)
                                + " (start a new run with another --out, or --overwrite)")
        provenance = {k: ck.metadata.get(k) for k in ("parent", "parent_name", "parent_kind",
                                                       "encoder_init") if k in ck.metadata}
        resume_state = load_train_state(last_path)
    elif cfg.resume and info.is_main:
        log.write("message", text=f"no {last_path} to resume from: starting a new run")
    if model is None:
        model, provenance = build_model(cfg)
    provenance = provenance or {}
    if cfg.freeze_encoder:
        freeze_encoder_(model)
    model.to(device)
    if prec.channels_last:
        model.to(memory_format=torch.channels_last)
    net = model
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
    k = model.config.block_size
    if cfg.crop_size % k:
        from sasnet_core.util.errors import SettingsError

        raise SettingsError(f"--crop-size {cfg.crop_size} is not a multiple of the model's patch size k = {k}")

    step, epoch, batch_in_epoch, elapsed_prev = 0, 0, 0, 0.0
    best = {"mae": float("inf"), "mse": float("inf"), "step": None}
    if resume_state is not None:
        try:
            optimizer.load_state_dict(resume_state["optimizer"])
        except (ValueError, KeyError) as exc:
            from sasnet_core.util.errors import SettingsError

            raise SettingsError("cannot resume: the optimiser state does not fit this run's trainable "
                                f"parameters (was --freeze-encoder changed?) ({exc})", cfg.out) from None
        step = int(resume_state["step"])
        if step >= cfg.steps and info.is_main:  # else "completed" would read as trained
            text = (f"{last_path} is at step {step} already, --steps is {cfg.steps}: nothing left to "
                    "train; give more --steps to go on")
            log.write("message", text=text)
            logging.getLogger(__name__).warning(text)
        epoch = int(resume_state.get("epoch", 0))
        batch_in_epoch = int(resume_state.get("batch_in_epoch", 0))
        elapsed_prev = float(resume_state.get("elapsed_s", 0.0))
        if isinstance(resume_state.get("torch_rng"), torch.Tensor):
            torch.set_rng_state(resume_state["torch_rng"])
        best = dict(resume_state.get("best", best))
        if best.get("mae") is None:
            best["mae"] = float("inf")

    # -- loader --------------------------------------------------------------------------
    crops = crop_dataset(train_samples, cfg.crop_size, cfg.crops_per_image, cfg.flip, cfg.sigma,
                         cfg.adaptive_kernel, model.config.count_scale)
    base = DistributedSampler(crops, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                              seed=cfg.seed)
    sampler = _EpochSampler(base)
    drop_last = len(base) >= cfg.images_per_step  # a tiny set still gives one (smaller) batch
    loader = DataLoader(crops, batch_size=cfg.images_per_step, sampler=sampler,
                        num_workers=cfg.workers, collate_fn=collate_crops, drop_last=drop_last,
                        pin_memory=device.type == "cuda", persistent_workers=False,
                        worker_init_fn=ignore_stop_signals if cfg.workers else None)
    steps_per_epoch = len(base) // cfg.images_per_step if drop_last else 1
    val_set = FullImageDataset(val_samples) if val_samples else None

    bar = ProgressBar(cfg.steps, desc="train", enabled=cfg.progress and info.is_main)
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    run_meta = {
        "data": _data_folder(cfg),
        "train_images": len(train_samples), "val_images": len(val_samples),
        "validation": val_desc or None, "train_config": cfg.to_dict(), **provenance, **extra_meta,
    }
    log.write("start", config=cfg.to_dict(), device=str(device), precision=prec.name,
              world_size=info.world_size, backend=info.backend, train_images=len(train_samples),
              val_images=len(val_samples), validation=val_desc or None,
              steps_per_epoch=steps_per_epoch, parameters=n_params, trainable_parameters=n_train,
              resumed_from_step=step if resume_state else None, out=str(out_dir),
              **provenance, **start_event)

    before: dict = {}

    def metadata(figures: dict | None = None) -> dict:
        m = {**run_meta, "steps": step, "epoch": epoch, "trained": _now(), "status": status}
        if figures:
            m.update({"val_mae": figures.get("mae"), "val_mse": figures.get("mse")})
        if before:
            m.update({"val_mae_before": before.get("mae"), "val_mse_before": before.get("mse")})
        if best.get("step") is not None:
            m.update({"best_val_mae": best["mae"], "best_val_mse": best["mse"],
                      "best_step": best["step"]})
        return m

    def save_last(figures: dict | None = None) -> None:
        if info.is_main and save_run:
            state = {"optimizer": optimizer.state_dict(), "step": step, "epoch": epoch,
                     "batch_in_epoch": batch_in_epoch, "best": dict(best),
                     "elapsed_s": elapsed_prev + train_time, "config": cfg.to_dict(),
                     "torch_rng": torch.get_rng_state()}  # crops are drawn from torch's RNG
            save_training_checkpoint(last_path, model, metadata(figures), state)
            log.write("checkpoint", kind="last", path=str(last_path), step=step)

    def validate(phase: str = "during") -> dict:
        figures = evaluate(net, val_set, device, precision=prec, dist_info=info)
        set_train_mode(net, cfg.freeze_encoder, cfg.keeps_bn_stats)
        is_best = figures["mae"] < best["mae"]
        if is_best:
            best.update(mae=figures["mae"], mse=figures["mse"], step=step)
            if info.is_main and save_run:
                # The run goes on after this snapshot: it is the run's best so far, not "running".
                save_training_checkpoint(best_path, model, {**metadata(figures), "status": "best"})
                log.write("checkpoint", kind="best", path=str(best_path), step=step)
        log.write("val", phase=phase, step=step, mae=figures["mae"], mse=figures["mse"],
                  n=figures["n"], best_mae=best["mae"], best_step=best["step"], is_best=is_best)
        bar.message(f"step {step}: val MAE {figures['mae']:.2f} MSE {figures['mse']:.2f}"
                    + (" (best)" if is_best else ""))
        return figures

    # -- the loop ------------------------------------------------------------------------
    status, figures, history = "running", {}, []
    if evaluate_before and val_set is not None:
        before.update(evaluate(net, val_set, device, precision=prec, dist_info=info))
        log.write("val", phase="before", step=step, mae=before["mae"], mse=before["mse"],
                  n=before["n"])
        bar.message(f"before training: val MAE {before['mae']:.2f} MSE {before['mse']:.2f}")
    train_time, window = 0.0, []
    t_window = time.perf_counter()
    imgs_per_step = cfg.images_per_step * info.world_size
    set_train_mode(net, cfg.freeze_encoder, cfg.keeps_bn_stats)
    if batch_in_epoch >= steps_per_epoch:  # the checkpoint was taken at the end of an epoch
        epoch, batch_in_epoch = epoch + 1, 0
    sampler.skip = batch_in_epoch * cfg.images_per_step
    wall0 = time.perf_counter()

    def batches():
        nonlocal epoch, batch_in_epoch
        while True:
            sampler.set_epoch(epoch)
            if hasattr(crops, "set_epoch"):
                crops.set_epoch(epoch)
            got = False
            for batch in _worker_errors_named(loader):
                got = True
                batch_in_epoch += 1  # counted when taken, so a checkpoint skips it on resume
                yield batch
            if not got:
                raise DatasetLayoutError("no training batch: the data set is empty")
            epoch, batch_in_epoch = epoch + 1, 0

    stream = batches()
    last_val_step = None
    while step < cfg.steps:
        # --max-minutes counts wall time of this process's loop (validation included)
        limit_hit = (cfg.max_minutes is not None
                     and time.perf_counter() - wall0 >= cfg.max_minutes * 60)
        if D.any_process(stopper.requested or limit_hit, info):
            # a stop request may itself be a time budget (fine-tuning counts set-up too)
            status = ("time_limit" if (limit_hit and not stopper.requested)
                      or stopper.reason == "time_limit" else "stopped")
            break
        t0 = time.perf_counter()
        try:
            images, targets = next(stream)
        except RuntimeError:
            if stopper.requested:  # Ctrl-C in a terminal also stops the loader processes
                status = "stopped"
                break
            raise
        parts = train_step(net, optimizer, images, targets, lam=cfg.lam, gamma=cfg.gamma,
                           use_pra=cfg.use_pra, precision=prec, device=device)
        step += 1
        dt = time.perf_counter() - t0
        train_time += dt
        window.append(parts)
        if step % cfg.log_every == 0 or step == cfg.steps or step == 1:
            span = time.perf_counter() - t_window
            t_window = time.perf_counter()
            mean = {key: sum(p[key] for p in window) / len(window) for key in window[0]}
            rate = len(window) * imgs_per_step / max(span, 1e-9)
            sec_per_step = span / len(window)
            eta = (cfg.steps - step) * sec_per_step
            if cfg.max_minutes is not None:
                eta = min(eta, max(cfg.max_minutes * 60 - (time.perf_counter() - wall0), 0.0))
            record = {"step": step, "steps": cfg.steps, "epoch": epoch, "loss": mean["total"],
                      "den": mean["den"], "conf": mean["conf"], "pra": mean["pra"],
                      "hard_fraction": mean["hard_fraction"], "lr": optimizer.param_groups[0]["lr"],
                      "images_per_s": rate, "crops_per_s": rate * cfg.crops_per_image,
                      "sec_per_step": sec_per_step, "elapsed_s": elapsed_prev + train_time,
                      "eta_s": eta}
            history.append(record)
            log.write("step", **record)
            bar.update(step, f"loss {mean['total']:.4g} {rate:.1f} img/s", eta_s=eta)
            window = []
        if val_set is not None and cfg.val_every and step % cfg.val_every == 0 and step < cfg.steps:
            figures = validate()
            last_val_step = step
            save_last(figures)

    if status == "running":
        status = "completed"
    bar.update(step, "", eta_s=0.0, force=True)
    bar.close()
    if val_set is not None and last_val_step != step:
        # stopped before the first step: the evaluation before training still stands
        figures = dict(before) if step == 0 and before else validate("final")
    save_last(figures)
    out_path = last_path if save_run else None
    if final_path is not None and info.is_main:
        out_path = save_training_checkpoint(final_path, model, metadata(figures))
        log.write("checkpoint", kind="final", path=str(out_path), step=step)
    best_ck = best_path if best.get("step") is not None and save_run else None
    result = TrainResult(status, step, Path(out_path) if out_path else None, best_ck, figures,
                         {k: v for k, v in best.items()}, history, dict(before), stopper.reason)
    log.write("end", status=status, step=step, checkpoint=str(out_path) if out_path else None,
              best_checkpoint=str(best_ck) if best_ck else None,
              mae=figures.get("mae"), mse=figures.get("mse"),
              best_mae=best["mae"] if best.get("step") is not None else None,
              best_mse=best["mse"] if best.get("step") is not None else None,
              mae_before=before.get("mae"), mse_before=before.get("mse"),
              elapsed_s=elapsed_prev + train_time, stop_reason=stopper.reason)
    if info.is_main:
        bar.message(f"{status} at step {step}: {out_path}")
    return result
