"""Which backend and number format count on this machine: one answer for the CLI and the app.

``--precision auto`` (the default) means bf16 where the hardware computes it natively (CPUs with
AMX or AVX512-BF16, CUDA GPUs with bf16), else fp32: on those CPUs bf16 is several times faster
and changes a count by about 0.3 %; elsewhere bf16 is emulated and slower than fp32.
``--backend auto`` means OpenVINO on the CPU when it is installed, else torch (one line says so);
torch on CUDA and Apple GPUs.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from sasnet_core.util.errors import EngineUnavailableError
from sasnet_core.util.vocab import Backend, Precision


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty where that is not available)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    flags = cpu_flags()
    if flags:
        return bool({"amx_bf16", "avx512_bf16"} & flags)
    # No /proc/cpuinfo (Windows, macOS): ask oneDNN's dispatcher through torch, when it says.
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def native_precision(device: torch.device) -> Precision:
    """What ``auto`` means on ``device``."""
    if device.type == "cuda":
        return Precision.BF16 if torch.cuda.is_bf16_supported() else Precision.FP32
    if device.type == "cpu":
        return Precision.BF16 if cpu_has_native_bf16() else Precision.FP32
    return Precision.FP32  # Apple GPUs: fp16 is opt-in, bf16 is not offered by MPS autocast


# Images predicted together by default, per device type (the CLI's --batch-size default and the
# app's queue). On the CPU the convolutions are compute-bound: benchmarks/bench_memory.py measured
# a folder of 8 street images at 1024 x 768 in the same time at batch 1 and batch 4, with batch 4
# holding about three times the memory, so the CPU counts one image at a time. A GPU is filled
# better by several images at once; how many the GPU's free memory holds is still bounded by the
# Predictor's budget, and the gain over batch 1 is measured by bench_inference.py --device cuda.
DEFAULT_BATCH_SIZE = {"cpu": 1, "cuda": 4, "mps": 1}


def default_batch_size(device: torch.device | str) -> int:
    """How many images of one size a forward pass takes by default on ``device``."""
    kind = device.type if hasattr(device, "type") else torch.device(device).type
    return DEFAULT_BATCH_SIZE.get(kind, 1)


def batch_size_help() -> str:
    """The default batch, by device, as ``--help`` says it."""
    return ", ".join(f"{n} on {'the CPU' if kind == 'cpu' else kind.upper()}"
                     for kind, n in DEFAULT_BATCH_SIZE.items())


@dataclass(frozen=True)
class EngineChoice:
    backend: Backend
    precision: Precision
    note: str | None = None  # one line for the user when their request could not be met as asked

    def describe(self) -> str:
        """'OpenVINO bf16' / 'torch fp32': what the status bar and the CLI's first line say."""
        name = "OpenVINO" if self.backend == Backend.OPENVINO else "torch"
        return f"{name} {self.precision}"


def choose_engine(device: torch.device, precision: str = "auto", backend: str = "auto") -> EngineChoice:
    """Resolve ``auto`` and check that the pair can run; raises EngineUnavailableError for a pair
    that cannot (int8 without OpenVINO, fp16 with OpenVINO)."""
    from sasnet_core.engine.openvino_backend import unavailable_reason

    precision = Precision(precision)
    backend = Backend(backend)
    if precision == Precision.AUTO:
        precision = native_precision(device)
    note = None
    if backend == Backend.AUTO:
        if device.type != "cpu":
            backend = Backend.TORCH
        else:
            reason = unavailable_reason()
            if reason is None and precision != Precision.FP16:
                backend = Backend.OPENVINO
            else:
                backend = Backend.TORCH
                if reason is not None:
                    note = f"{reason}; counting with torch on the CPU, which is several times slower"
                else:  # fp16 asked for on the CPU: say why it is slow, and what is fast here
                    note = (f"OpenVINO does not run fp16 on the CPU: counting with torch fp16, which is "
                            f"several times slower; {native_precision(device)} (the default, auto) is "
                            "the fast choice here")
    if backend == Backend.OPENVINO:
        if device.type != "cpu":
            raise EngineUnavailableError(f"the OpenVINO backend runs on the CPU, not on {device.type}")
        reason = unavailable_reason()
        if reason is not None:
            raise EngineUnavailableError(f"the openvino backend was asked for, but {reason}")
        if precision == Precision.FP16:
            raise EngineUnavailableError("OpenVINO on the CPU does not run fp16; use bf16 or fp32")
    if precision == Precision.INT8 and backend != Backend.OPENVINO:
        reason = unavailable_reason() if device.type == "cpu" else f"int8 runs on the CPU, not on {device.type}"
        raise EngineUnavailableError(f"int8 counting needs the OpenVINO backend: {reason or 'choose the openvino backend'}")
    return EngineChoice(backend, precision, note)
