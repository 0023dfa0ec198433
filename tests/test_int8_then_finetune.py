"""The app's own sequence in one process: int8 chosen (NNCF quantizes the model in this process, its
thread pools and OpenVINO's stay alive), then a fine-tune started as a child process the way the
app starts it (``FineTuneProcess``: QProcess running ``sasnet finetune``) and waited on.

The test suite used to run the OpenVINO and NNCF tests last because the pytest process was once
seen to receive SIGSEGV while waiting for such a child after them; this keeps that sequence under
test in whatever order the suite runs.
"""
from __future__ import annotations

import faulthandler

import numpy as np
import pytest

pytest.importorskip("nncf")


def test_a_finetune_child_after_int8_ends_normally_and_this_process_lives_on(qtbot, tiny_weights, tmp_path):
    from sasnet_core.engine import quantize
    from sasnet_core.engine.openvino_backend import convert
    from sasnet_core.model.fast_forward import fold_batchnorm
    from sasnet_core.training.synthetic import make_blob_dataset
    from sasnet_core.weights.checkpoint import load_model
    from sasnet_gui.finetune.process import FineTuneJob, FineTuneProcess

    faulthandler.enable()  # a native crash here prints every thread's stack
    model, _ = load_model(tiny_weights)
    folded = fold_batchnorm(model.eval(), inplace=False)
    ov_model = convert(folded, tmp_path / "ov", lean=False)[0]  # what int8 quantizes, as the app does
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(2)]
    runner = quantize.int8_runner(folded, ov_model, images, tmp_path / "ov")
    assert runner.int8_report is not None  # int8 really ran through NNCF here

    data, out = tmp_path / "mine", tmp_path / "ft.pth"
    make_blob_dataset(data, 3, layout="annotations")
    job = FineTuneJob(["-m", "sasnet_core", "finetune", str(tiny_weights), str(data),
                       "--out", str(out), "--steps", "2", "--crop-size", "64", "--images-per-step", "2",
                       "--workers", "0", "--holdout", "0", "--log-json", "-", "--no-progress"])
    process = FineTuneProcess(nice=0)
    failures = []
    process.failed.connect(failures.append)
    with qtbot.waitSignal(process.ended, timeout=180_000) as ended:
        process.start(job)
    assert not failures
    assert ended.args[0]["status"] == "completed" and ended.args[0]["step"] == 2
    load_model(out)
    # and counting with int8 still works in this process afterwards
    from sasnet_core.model.preprocess import model_input

    x = model_input(images[0][None], 32).numpy()
    assert np.isfinite(runner.forward(x)[0]).all()
