"""Which device, backend and number format count (and train) on this machine: one answer for the
CLI, the app, the Python API and training.

``device="auto"`` means the CUDA GPU of this process (``cuda:LOCAL_RANK`` under torchrun), then an
Apple GPU (MPS), then the CPU; counting and training choose alike, so a Mac trains where it counts.

``--precision auto`` (the default) means bf16 where the hardware computes it natively (CPUs with
AMX or AVX512-BF16, CUDA GPUs with bf16), else fp32: on those CPUs bf16 is several times faster
and changes a count by about 0.3 %; elsewhere bf16 is emulated and slower than fp32.
``--backend auto`` means OpenVINO on the CPU when it is installed, else torch (one line says so);
torch on CUDA and Apple GPUs.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sasnet_core.util.errors import DeviceUnavailableError, EngineUnavailableError
from sasnet_core.util.vocab import Backend, Device, Precision

if TYPE_CHECKING:
    import torch
# torch is imported where a device is resolved, not here: the app's window reads the defaults
# below at start, and torch takes seconds to import (its model worker imports it later).

# What every entry counts with when nothing is asked for: ``Predictor(...)``,
# ``Predictor.from_weights(...)``, ``sasnet count``/``eval``/``rank`` and the app's Models dialog.
DEFAULT_DEVICE = Device.AUTO
DEFAULT_BACKEND = Backend.AUTO
DEFAULT_PRECISION = Precision.AUTO


def mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def choose_device(preference: str | torch.device = DEFAULT_DEVICE, local_rank: int = 0, *,
                  asked_as: str = "device") -> torch.device:
    """The torch device for ``preference``: "auto" (the CUDA GPU of ``local_rank``, then MPS, then
    the CPU), "cpu", "cuda" (GPU ``local_rank``), "cuda:N" or "mps". Raises DeviceUnavailableError,
    in one line that names the device (as ``asked_as`` calls the option) and what this machine
    has, for a device that is not here."""
    import torch

    name = str(preference).strip().lower()
    if name == Device.AUTO:
        if torch.cuda.is_available():
            return _cuda(torch.device("cuda", local_rank), asked_as)
        return torch.device("mps") if mps_available() else torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DeviceUnavailableError(
            f"{asked_as} {preference}: not a device (auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(f"{asked_as} {name} was asked for but no CUDA GPU is available")
        return _cuda(dev if dev.index is not None else torch.device("cuda", local_rank), asked_as)
    if dev.type == "mps" and not mps_available():
        raise DeviceUnavailableError(f"{asked_as} mps was asked for but no Apple GPU (MPS) is available")
    if dev.type not in ("cpu", "mps"):
        raise DeviceUnavailableError(f"{asked_as} {name}: not a device (auto, cpu, cuda, cuda:N or mps)")
    return dev


def _cuda(dev: torch.device, asked_as: str) -> torch.device:
    import torch

    n = torch.cuda.device_count()
    if dev.index >= n:
        raise DeviceUnavailableError(f"{asked_as} {dev} was asked for but this machine has {n} CUDA GPU(s), "
                                     f"cuda:0 to cuda:{n - 1}" if n else
                                     f"{asked_as} {dev} was asked for but this machine has no CUDA GPU")
    return dev


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
    import torch

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
    import torch

    if device.type == "cuda":
        return Precision.BF16 if torch.cuda.is_bf16_supported() else Precision.FP32
    if device.type == "cpu":
        return Precision.BF16 if cpu_has_native_bf16() else Precision.FP32
    return Precision.FP32  # Apple GPUs: fp16 is opt-in, bf16 is not offered by MPS autocast


def counting_precision(device: torch.device, precision: str) -> Precision:
    """The precision asked for, as ``device`` can count in it: MPS autocast has no bf16 on most
    macOS versions, so bf16 counts in fp16 there."""
    precision = Precision(precision)
    if device.type == "mps" and precision == Precision.BF16:
        return Precision.FP16
    return precision


def training_precision(device: torch.device, precision: str = "auto") -> Precision:
    """fp32 or bf16 (autocast), the number format training runs in on ``device``. ``auto`` is bf16
    on CUDA GPUs only: bf16 autocast on a CPU is slower than fp32 on most CPUs, and MPS has no
    bf16 autocast, so training on an Apple GPU is fp32 whatever is asked."""
    precision = Precision(precision)
    if device.type == "mps" or precision == Precision.FP32:
        return Precision.FP32
    if precision == Precision.AUTO and device.type != "cuda":
        return Precision.FP32
    return Precision.BF16


# Images predicted together by default, per device type (the CLI's --batch-size default and the
# app's queue). On the CPU the convolutions are compute-bound: benchmarks/bench_memory.py measured
# a folder of 8 street images at 1024 x 768 in the same time at batch 1 and batch 4, with batch 4
# holding about three times the memory, so the CPU counts one image at a time. A GPU is filled
# better by several images at once; how many the GPU's free memory holds is still bounded by the
# Predictor's budget, and the gain over batch 1 is measured by bench_inference.py --device cuda.
DEFAULT_BATCH_SIZE = {"cpu": 1, "cuda": 4, "mps": 1}


def default_batch_size(device: torch.device | str) -> int:
    """How many images of one size a forward pass takes by default on ``device``."""
    import torch

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


def choose_engine(device: torch.device, precision: str = DEFAULT_PRECISION,
                  backend: str = DEFAULT_BACKEND) -> EngineChoice:
    """Resolve ``auto`` and check that the pair can run; raises EngineUnavailableError for a pair
    that cannot (int8 without OpenVINO, fp16 with OpenVINO)."""
    # deferred: the OpenVINO runner module loads torch, which this module (read by the app's
    # window before any model) must not
    from sasnet_core.engine.openvino_backend import unavailable_reason

    precision = counting_precision(device, precision)
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
