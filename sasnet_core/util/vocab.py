"""The words SASNet Studio uses in more than one place: precisions, devices and run statuses.

One enum per vocabulary, so argparse ``choices=``, the app's combo boxes and the file list read the
same list and cannot drift apart. The members are ``StrEnum``s: each compares equal to its plain
string, so settings files, JSON logs and checkpoint metadata keep storing ``"fp32"`` or ``"cpu"``.
"""
from __future__ import annotations

import argparse
import re
from enum import StrEnum


class Precision(StrEnum):
    """Number formats a model can run in. ``AUTO`` lets the code pick what the hardware computes
    natively (``sasnet_core.engine.choice``); int8 is post-training quantization (OpenVINO)."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"
    INT8 = "int8"


# Counting (``sasnet count``/``eval``, the Models dialog); int8 is opt-in. The defaults of
# counting (device, backend, precision) are ``sasnet_core.engine.choice``'s.
INFERENCE_PRECISIONS: tuple[Precision, ...] = (Precision.AUTO, Precision.FP32, Precision.BF16,
                                               Precision.FP16, Precision.INT8)
# Training and fine-tuning: fp16 without loss scaling diverges, so it is not offered.
TRAINING_PRECISIONS: tuple[Precision, ...] = (Precision.AUTO, Precision.FP32, Precision.BF16)
# What training does with BatchNorm running statistics (TrainConfig.bn_stats).
BN_STATS = ("update", "keep")
DEFAULT_TRAINING_PRECISION = Precision.AUTO


class Backend(StrEnum):
    """What runs the model's math. ``AUTO``: OpenVINO on the CPU when installed, else torch;
    torch on GPUs."""

    AUTO = "auto"
    TORCH = "torch"
    OPENVINO = "openvino"


BACKENDS: tuple[Backend, ...] = tuple(Backend)


class Device(StrEnum):
    """Where a model runs. ``AUTO``: a CUDA GPU, then an Apple GPU (MPS), then the CPU. On the
    command line ``cuda:N`` picks one of several GPUs."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"


DEVICES: tuple[Device, ...] = tuple(Device)
_CUDA_INDEX = re.compile(r"^cuda:\d+$")


def device_arg(text: str) -> str:
    """argparse type for ``--device``: one of :class:`Device`, or ``cuda:N``."""
    value = text.strip().lower()
    if value in DEVICES or _CUDA_INDEX.match(value):
        return value
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a device; use one of {', '.join(DEVICES)} or cuda:N")


class FileStatus(StrEnum):
    """Where one image stands in the app's file list (and in a count's report)."""

    NOT_RUN = "not run"
    COUNTING = "counting"
    COUNTED = "counted"
    ANNOTATED = "annotated"
    ERROR = "error"


class RunStatus(StrEnum):
    """How a training or fine-tuning run ended (the ``status`` of its last JSON-lines event)."""

    COMPLETED = "completed"
    STOPPED = "stopped"  # asked to stop: the last finished step is kept
    TIME_LIMIT = "time_limit"  # the time budget ran out: the last finished step is kept
    CANCELLED = "cancelled"  # stopped before anything worth keeping
    FAILED = "failed"
    KILLED = "killed"


# Runs that leave a usable checkpoint behind.
RUN_KEPT: tuple[RunStatus, ...] = (RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.TIME_LIMIT)


def choices(values) -> list[str]:
    """Plain strings for argparse ``choices=`` (its usage text then reads ``{fp32,bf16,fp16}``)."""
    return [str(v) for v in values]
