"""Optimiser steps: the device settings of a training step, one step on a batch of crops, and
the one step loop that every run of steps goes through (``sasnet train``, fine-tuning, tests and
scripts via ``train_steps``).

Device settings: on CUDA the forward pass runs under ``torch.autocast(dtype=torch.bfloat16)``
with the model and inputs in ``channels_last``, cuDNN benchmark on (fixed crop size) and TF32
matmuls allowed; the losses are computed in float32 (their sums are large and the PRA hard mask
needs exact signs). bf16 keeps fp32's exponent range, so no GradScaler is needed. On CPU
everything is fp32 (bf16 autocast on CPU is slower than fp32 on most CPUs).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn as nn

from sasnet_core.engine.choice import training_precision
from sasnet_core.training.losses import total_loss
from sasnet_core.util.errors import DatasetLayoutError

StepFn = Callable[[torch.Tensor, torch.Tensor], dict]


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
    """The autocast settings for ``engine.choice.training_precision`` (which owns the rule)."""
    if training_precision(device, precision) == "fp32":
        return Precision(False, torch.float32, False)
    return Precision(True, torch.bfloat16, device.type == "cuda")


def configure_backends(device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def unwrap(model: nn.Module) -> nn.Module:
    """The model itself, also when DDP wraps it."""
    return getattr(model, "module", model)


def frozen_stages(model: nn.Module, n: int) -> list[nn.Module]:
    """Encoder stages 1..n (``features1``..) of ``model``, the ones a run with ``freeze_stages=n``
    keeps as they are."""
    return list(unwrap(model).encoder)[:n]


def set_train_mode(model: nn.Module, freeze_stages: int = 0, keep_bn_stats: bool = False) -> None:
    """model.train(), but frozen encoder stages keep their BatchNorm statistics (eval mode), and
    with ``keep_bn_stats`` every BatchNorm layer does (its scale and shift still learn)."""
    model.train()
    for stage in frozen_stages(model, freeze_stages):
        stage.eval()
    if keep_bn_stats:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def freeze_stages_(model: nn.Module, n: int) -> None:
    """Stop encoder stages 1..n from learning. They are a prefix of the network and the input needs
    no gradient, so autograd records nothing in them: their forward runs without a graph and the
    backward pass ends at stage n + 1 (no gradient is computed through the frozen stages)."""
    for stage in frozen_stages(model, n):
        for p in stage.parameters():
            p.requires_grad_(False)


def make_optimizer(model: nn.Module, lr: float = 1e-5, weight_decay: float = 0.0
                   ) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters (everything frozen?)")
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


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
    k = unwrap(model).config.block_size
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


def step_loop(step_fn: StepFn, batches: Iterator, step: int, end: int, *,
              should_stop: Callable[[], bool] | None = None,
              on_step: Callable[[int, dict, float], None] | None = None) -> int:
    """Steps from ``step`` up to ``end``: ``should_stop`` is polled before each one, and the loop
    also ends when ``batches`` does. ``on_step(step, loss parts, seconds)`` follows each step.
    Returns the step reached."""
    while step < end:
        if should_stop is not None and should_stop():
            break
        t0 = time.perf_counter()
        try:
            images, targets = next(batches)
        except StopIteration:
            break
        parts = step_fn(images, targets)
        step += 1
        if on_step is not None:
            on_step(step, parts, time.perf_counter() - t0)
    return step


def cycle(batches: Iterable) -> Iterator:
    """``batches`` over and over (re-iterated when exhausted); an empty one is a data error."""
    while True:
        got = False
        for batch in batches:
            got = True
            yield batch
        if not got:
            raise DatasetLayoutError("no training batch: the data set is empty")


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer,
                batches: Iterable[tuple[torch.Tensor, torch.Tensor]], num_steps: int, *,
                lam: float = 10.0, gamma: float = 1.0, use_pra: bool = True,
                precision: Precision | None = None, device: torch.device | None = None,
                freeze_stages: int = 0, keep_bn_stats: bool = False,
                on_step: Callable[[int, dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> list[dict[str, float]]:
    """Up to ``num_steps`` steps, cycling over ``batches`` (re-iterated when exhausted).

    Returns the loss parts of every step done. ``should_stop`` is polled before each step.
    ``freeze_stages``: encoder stages 1..n keep their BatchNorm statistics (their weights are
    frozen by ``freeze_stages_``, before the optimiser is made).
    """
    history: list[dict[str, float]] = []
    set_train_mode(model, freeze_stages, keep_bn_stats)

    def step_fn(images, targets):
        return train_step(model, optimizer, images, targets, lam=lam, gamma=gamma,
                          use_pra=use_pra, precision=precision, device=device)

    def record(step: int, parts: dict, _seconds: float) -> None:
        history.append(parts)
        if on_step is not None:
            on_step(step, parts)

    step_loop(step_fn, cycle(batches), 0, num_steps, should_stop=should_stop, on_step=record)
    return history
