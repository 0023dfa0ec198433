"""A process that trained ends when its work is done, whatever the run left behind."""
from __future__ import annotations

import subprocess
import sys

import pytest

_RUN_THAT_RAISES = r"""
import sys, torch
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import sasnet
from sasnet_core.training import TrainConfig, train
from sasnet_core.training.synthetic import make_blob_dataset

make_blob_dataset(sys.argv[1], 6)
model = sasnet(config=SASNetConfig(width_mult=0.125))
with torch.no_grad():
    model.features1[0].weight.fill_(float("nan"))  # the first step's loss is NaN: the run raises
cfg = TrainConfig(data=sys.argv[1], out=sys.argv[2], steps=5, val_every=0, crop_size=64,
                  images_per_step=2, workers=2, progress=False, device="cpu")
try:
    train(cfg, model=model)
except FloatingPointError as exc:
    kept = exc  # a caller that keeps the error (and with it the run's frames) until it exits
    print("raised:", exc, flush=True)
"""


def test_a_process_whose_run_raised_with_loader_processes_exits(tmp_path):
    """Loader processes ignore SIGTERM (a signal to the process group must not kill them in the
    middle of a step), and Python ends daemonic children at exit with SIGTERM and waits: a run
    that raised, its error kept by the caller, left its loader processes alive and the process
    waiting for them forever after its work was done."""
    try:
        done = subprocess.run([sys.executable, "-c", _RUN_THAT_RAISES, str(tmp_path / "data"),
                               str(tmp_path / "run")], capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the process did not exit after its run raised: {exc.stdout!r}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "raised: loss is nan" in done.stdout
