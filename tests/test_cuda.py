"""The GPU path, proven on a CUDA device: skipped where torch sees none (this project's CI).

What a user on an NVIDIA workstation relies on: counting with ``--device cuda --precision fp32``
gives the CPU's fp32 numbers, the default bf16 stays within 0.5 % of them, images batched together
count as they do one by one, and training and fine-tuning run there, also inside an NCCL process
group (``torchrun`` with one process). The full-size network with random, realistic weights counts
a generated crowd of 300 heads: nothing here needs files outside the repository, so a GPU machine
with only the checkout runs every test instead of skipping it.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sasnet_core.engine.choice import default_batch_size
from sasnet_core.engine.inference import Predictor
from sasnet_core.model.sasnet import SASNet
from sasnet_core.model.stand_in import stand_in_sasnet
from sasnet_core.training.synthetic import blob_image, make_blob_dataset, random_points

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device (the GPU path is proven on a machine with one)")


@pytest.fixture(scope="module")
def released_model() -> SASNet:
    """The full-size network with weights that exercise folding and every layer's arithmetic as
    trained ones do (``stand_in_sasnet``)."""
    return stand_in_sasnet(3)


@pytest.fixture(scope="module")
def crowd() -> np.ndarray:
    rng = np.random.default_rng(3)
    size = (768, 1024)
    return blob_image(random_points(300, size, rng), size, rng)


@pytest.fixture
def cudnn_settings(monkeypatch):
    """Training's process-wide cuDNN settings are put back after the test that turns them on."""
    for name in ("benchmark", "allow_tf32"):
        monkeypatch.setattr(torch.backends.cudnn, name, getattr(torch.backends.cudnn, name))
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", torch.backends.cuda.matmul.allow_tf32)


def _predict(model, image, **kwargs):
    return Predictor(model, keep_levels=False, tile=0, **kwargs).predict(image)


def test_cuda_fp32_gives_the_cpus_fp32_numbers(released_model, crowd):
    cpu = _predict(released_model, crowd, device="cpu", backend="torch", precision="fp32")
    gpu = _predict(released_model, crowd, device="cuda", precision="fp32")
    assert gpu.count == pytest.approx(cpu.count, rel=1e-4)
    scale = float(np.abs(cpu.density).max())
    assert float(np.abs(gpu.density - cpu.density).max()) <= 1e-4 * scale


def test_cuda_fp32_is_not_tf32_even_after_training_enabled_it(released_model, crowd, cudnn_settings):
    """cuDNN runs fp32 convolutions in TF32 unless told not to, and training turns TF32 on for the
    whole process (``training.steps.configure_backends``): counting in fp32 afterwards must still
    give the CPU's fp32 numbers."""
    from sasnet_core.training.steps import configure_backends

    configure_backends(torch.device("cuda"))
    assert torch.backends.cudnn.allow_tf32
    cpu = _predict(released_model, crowd, device="cpu", backend="torch", precision="fp32")
    gpu = _predict(released_model, crowd, device="cuda", precision="fp32")
    assert gpu.count == pytest.approx(cpu.count, rel=1e-4)
    scale = float(np.abs(cpu.density).max())
    assert float(np.abs(gpu.density - cpu.density).max()) <= 1e-4 * scale


def test_cuda_default_is_bf16_within_half_a_percent_of_fp32(released_model, crowd):
    default = Predictor(released_model, device="cuda", keep_levels=False)
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU does not compute bf16: the default is fp32 there")
    assert default.precision == "bf16" and default.backend == "torch"
    fp32 = _predict(released_model, crowd, device="cuda", precision="fp32")
    assert abs(default.predict(crowd).count - fp32.count) <= 0.005 * abs(fp32.count)


def test_images_batched_on_the_gpu_count_as_they_do_one_by_one(released_model, crowd):
    batch = default_batch_size(torch.device("cuda"))
    assert batch > 1, "the GPU's default batch is the one batching is proven with"
    images = [np.ascontiguousarray(np.roll(crowd, 40 * i, axis=1)) for i in range(batch)]
    predictor = Predictor(released_model, device="cuda", precision="fp32", keep_levels=False, tile=0)
    together = [r.count for r in predictor.predict_batch(images)]
    alone = [predictor.predict(im).count for im in images]
    assert together == pytest.approx(alone, rel=1e-5)


def _cli(argv) -> int:
    from sasnet_core.cli import main

    return main([str(a) for a in argv])


def test_a_training_run_on_the_gpu_learns_and_leaves_a_checkpoint(tmp_path):
    from sasnet_core.weights.checkpoint import load_model

    data = tmp_path / "blobs"
    make_blob_dataset(data, 6)
    out = tmp_path / "run"
    assert _cli(["train", data, "--out", out, "--device", "cuda", "--steps", 4, "--crop-size", 64,
                 "--images-per-step", 2, "--workers", 0, "--width-mult", 0.125, "--no-progress",
                 "--encoder-weights", "none", "--val-every", 0]) == 0
    model, info = load_model(out / "last.pth")
    assert info.metadata["steps"] == 4
    assert all(torch.isfinite(p).all() for p in model.state_dict().values() if p.is_floating_point())


def test_a_finetune_on_the_gpu_writes_a_model_with_its_provenance(tiny_weights, tmp_path):
    from sasnet_core.weights.checkpoint import load_model

    data = tmp_path / "mine"
    make_blob_dataset(data, 4, layout="annotations", reviewed=[True] * 4)
    out = tmp_path / "ft.pth"
    assert _cli(["finetune", tiny_weights, data, "--out", out, "--device", "cuda", "--steps", 3,
                 "--crop-size", 64, "--images-per-step", 2, "--workers", 0, "--no-progress"]) == 0
    _, info = load_model(out)
    assert info.metadata["kind"] == "finetuned" and info.metadata["steps"] == 3


_NCCL_RUN = r"""
import json, os, sys
import torch
import torch.distributed as dist
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import sasnet
from sasnet_core.training import TrainConfig, train

dist.init_process_group("nccl", rank=0, world_size=1)
data, out = sys.argv[1], sys.argv[2]
model = sasnet(config=SASNetConfig(width_mult=0.125))
cfg = TrainConfig(data=data, out=out, steps=3, val_every=0, log_every=1, crop_size=64,
                  images_per_step=2, workers=0, lr=1e-3, progress=False, device="cuda")
result = train(cfg, model=model)
print(json.dumps({"status": result.status, "step": result.step,
                  "backend": dist.get_backend(), "device": str(next(model.parameters()).device)}))
dist.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_training_runs_inside_a_one_process_nccl_group(tmp_path):
    """What ``torchrun --nproc_per_node 1`` gives a run: a process group on NCCL already made.
    (One process needs no DDP wrapper; two ranks cannot share one GPU under NCCL.)"""
    if not torch.distributed.is_available() or not torch.distributed.is_nccl_available():
        pytest.skip("this torch build has no NCCL")
    data = tmp_path / "blobs"
    make_blob_dataset(data, 4)
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), RANK="0",
               WORLD_SIZE="1", LOCAL_RANK="0")
    done = subprocess.run([sys.executable, "-c", _NCCL_RUN, str(data), str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "nccl" and result["step"] == 3 and result["device"].startswith("cuda")
    assert Path(tmp_path / "run" / "last.pth").is_file()
