"""The counting engine's defaults by device: how many images one forward pass takes and how much
memory one image may use, as benchmarks/bench_memory.py chose them, and shared by the CLI's
commands and the app."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sasnet_core.cli import main
from sasnet_core.engine import choice as engine_choice
from sasnet_core.engine import inference
from sasnet_core.engine.inference import Predictor


@pytest.fixture
def folder(tmp_path):
    from sasnet_core.io.imageio import write_image

    rng = np.random.default_rng(0)
    for i in range(5):  # one size: a batch of any size could take them all
        write_image(tmp_path / f"img_{i}.png", rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    return tmp_path


@pytest.fixture
def forward_batches(monkeypatch):
    """The number of images in each forward pass of every Predictor made from now on."""
    sizes: list[int] = []
    real = Predictor.predict_batch

    def recording(self, images):
        sizes.append(len(images))
        return real(self, images)

    monkeypatch.setattr(Predictor, "predict_batch", recording)
    return sizes


def test_the_cpu_counts_one_image_at_a_time_and_gpus_batch():
    # bench_memory.py: 8 images of 1024 x 768 took as long at batch 1 as at batch 4 on the CPU,
    # and batch 4 held about three times the memory.
    assert engine_choice.default_batch_size("cpu") == 1
    assert engine_choice.default_batch_size(torch.device("cuda", 1)) == 4
    assert engine_choice.default_batch_size("mps") == 1


@pytest.mark.parametrize("command", ["count", "rank"])
def test_cli_commands_count_a_folder_with_the_cpu_default(command, folder, tiny_weights, forward_batches, capsys):
    rc = main([command, str(folder), "--weights", str(tiny_weights), "--device", "cpu", "--no-progress"])
    assert rc == 0
    assert forward_batches == [1] * 5, "each image alone: the default batch on the CPU"


def test_an_asked_batch_size_is_kept(folder, tiny_weights, forward_batches, capsys):
    assert main(["count", str(folder), "--weights", str(tiny_weights), "--device", "cpu",
                 "--batch-size", "3", "--no-progress"]) == 0
    assert forward_batches == [3, 2]


@pytest.mark.parametrize("command", ["count", "rank"])
def test_help_says_the_default_batch_by_device(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--batch-size" in text
    assert "1 on the CPU" in text and "4 on CUDA" in text


def test_the_budget_is_a_ceiling_for_one_image_not_a_target_to_fill(tiny_weights, monkeypatch):
    """60 % of the free memory, at most MAX_BUDGET_MB, decides whether ONE image is tiled; on the
    CPU a folder still goes through one image at a time however much memory is free."""
    monkeypatch.setattr(inference, "_available_memory_mb", lambda device: 100_000.0)
    p = Predictor.from_weights(tiny_weights, device="cpu", backend="torch")
    assert p.memory_budget_mb == inference.MAX_BUDGET_MB
    monkeypatch.setattr(inference, "_available_memory_mb", lambda device: 1000.0)
    p = Predictor.from_weights(tiny_weights, device="cpu", backend="torch")
    assert p.memory_budget_mb == pytest.approx(inference.FREE_MEMORY_SHARE * 1000.0)
    assert engine_choice.default_batch_size(p.device) == 1
