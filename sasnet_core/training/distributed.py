"""torch.distributed glue: the same command runs alone or under ``torchrun``.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR/PORT); with WORLD_SIZE > 1 we join
the process group: NCCL when training on CUDA GPUs (one GPU per process, cuda:LOCAL_RANK), gloo on
CPUs. Only rank 0 writes checkpoints and logs. Nothing home-made: DDP does the gradient all-reduce,
DistributedSampler shards the data.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from sasnet_core.engine.choice import choose_device


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None when not distributed
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # we created the process group, so we destroy it

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> DistInfo:
    """Join the torchrun process group if there is one; choose the device of this process (the
    same choice as counting, with this process's GPU under torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():  # a caller (a test, a launcher) did it
        world, rank = dist.get_world_size(), dist.get_rank()
        dev = choose_device(device, local, asked_as="--device")
        return DistInfo(rank, world, local, dist.get_backend(), dev, owns_group=False)
    dev = choose_device(device, local, asked_as="--device")
    if world <= 1:
        return DistInfo(device=dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend=backend, timeout=_dt.timedelta(minutes=30))
    return DistInfo(rank, world, local, backend, dev, owns_group=True)


def cleanup(info: DistInfo, *, finished: bool = True) -> None:
    """Leave the process group. ``finished``: this rank ended normally, so its peers will reach
    the barrier too (after a failure a peer may be gone, and a barrier would wait forever)."""
    if info.owns_group and dist.is_initialized():
        # Every rank must be past its last collective before any rank tears the group down:
        # gloo aborts a peer (std::terminate) whose pending work loses its connection.
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Sum a few numbers over all processes (float64 on the process's device)."""
    if not info.enabled:
        return list(values)
    dev = info.device if info.backend == "nccl" else torch.device("cpu")
    t = torch.tensor(values, dtype=torch.float64, device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def any_process(flag: bool, info: DistInfo) -> bool:
    """True on every process when any one of them says True (so all stop at the same step)."""
    if not info.enabled:
        return flag
    return all_reduce_sum([1.0 if flag else 0.0], info)[0] > 0


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
