"""One-click fine-tuning: the panel runs the real `sasnet finetune` subprocess on a tiny model."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

from _gui_helpers import (  # noqa: F401
    make_annotated_images,
    make_controller,
    register_tiny_model,
    studio_home,
)

import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from sasnet_core import paths  # noqa: E402
from sasnet_core.registry import ModelRegistry  # noqa: E402
from sasnet_gui.models.controller import HOW_TO_GET_A_MODEL  # noqa: E402

# A fast schedule for a tiny model on 64 x 64 images (the options reach `sasnet finetune` as is).
FAST = ["--images-per-step", "2", "--crops", "1", "--crop-size", "32", "--workers", "0"]
RUN_TIMEOUT_MS = 150_000


def _panel(qtbot, controller):
    from sasnet_gui.finetune.panel import FineTunePanel

    panel = FineTunePanel(controller)
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show()
    panel.extra_args = list(FAST)
    return panel


def _no_partial_files():
    folder = paths.models_dir()
    return not folder.exists() or not list(folder.glob(".*.tmp"))


def test_finetune_runs_reports_mae_and_switches_model(qtbot, studio_home, tmp_path):
    register_tiny_model(tmp_path, "tiny")
    controller = make_controller(qtbot)
    images = make_annotated_images(tmp_path / "reviewed", n=3)
    unreviewed = make_annotated_images(tmp_path / "todo", n=1, reviewed=False, seed=5)
    panel = _panel(qtbot, controller)
    ts = panel.set_training_images(images + unreviewed + [tmp_path / "nothing.png"])
    assert len(ts) == 3 and len(ts.not_reviewed) == 1 and len(ts.missing) == 1
    assert "3 reviewed images" in panel.data_label.text() and "1 not reviewed" in panel.data_label.text()
    assert "tiny" in panel.model_label.text()
    panel.steps_spin.setValue(3)
    panel.holdout_spin.setValue(34)  # one of the three images is held out
    steps, vals = [], []
    panel.process.stepped.connect(steps.append)
    panel.process.validated.connect(vals.append)

    with qtbot.waitSignal(panel.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert panel.is_running() and panel.cancel_button.isEnabled()
        assert not panel.start_button.isEnabled() and not panel.steps_spin.isEnabled()
        qtbot.waitUntil(lambda: len(steps) >= 1, timeout=RUN_TIMEOUT_MS)
        assert "ETA" in panel.eta_label.text() and panel.progress.value() > 0
    assert finished.args == ["completed"], panel.last_error
    assert [s["step"] for s in steps] == [1, 2, 3]
    assert panel.plot.steps == [1, 2, 3] and len(panel.plot.losses) == 3
    assert [v["phase"] for v in vals] == ["before", "final"]
    assert panel.progress.value() == 1000
    assert "→" in panel.summary_label.text() and "(1 image)" in panel.summary_label.text()
    new = panel.new_model_path()
    assert new is not None and new.parent == paths.models_dir() and _no_partial_files()
    assert panel._data_dir is None and not (paths.data_dir() / "finetune-data" / new.stem / "STOP").exists()
    assert panel.use_button.isVisible() and panel.use_button.isEnabled()

    with qtbot.waitSignals([panel.modelRegistered, controller.predictorChanged], timeout=60000):
        qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    name = new.stem
    assert controller.current_name() == name and controller.current_weights_path() == new
    entry = ModelRegistry().get(name)
    assert entry.is_default and entry.metadata["kind"] == "finetuned"
    assert entry.metadata["parent_name"] == "tiny" and entry.metadata["status"] == "completed"
    assert entry.metadata["val_mae_before"] == pytest.approx(panel.result["mae_before"])
    assert entry.metadata["val_mae"] == pytest.approx(panel.result["mae"])
    assert (entry.metadata["finetune_images"], entry.metadata["holdout_images"]) == (2, 1)
    assert entry.metadata["holdout_files"][0] in {p.name for p in images}
    data_folder = Path(entry.metadata["data_folder"])  # the annotations it learnt from, kept
    assert data_folder.parent == paths.data_dir() / "finetune-data"
    assert len(list(data_folder.glob("*.sasnet.json"))) == 3
    assert ModelRegistry().get("tiny") is not None  # the previous model stays available
    assert not panel.use_button.isEnabled()


def test_cancel_midway_leaves_no_half_written_model(qtbot, studio_home, tmp_path):
    from sasnet_core.checkpoint import read_metadata

    register_tiny_model(tmp_path, "tiny")
    controller = make_controller(qtbot)
    panel = _panel(qtbot, controller)
    panel.set_training_images(make_annotated_images(tmp_path / "reviewed", n=2))
    panel.steps_spin.setValue(10_000)
    panel.holdout_spin.setValue(0)
    with qtbot.waitSignal(panel.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        assert panel.start()
        qtbot.waitUntil(lambda: len(panel.plot.steps) >= 2, timeout=RUN_TIMEOUT_MS)
        if hasattr(os, "getpriority"):  # the trainer runs at background priority
            assert os.getpriority(os.PRIO_PROCESS, panel.process._proc.processId()) >= 10
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
        assert not panel.cancel_button.isEnabled()
    assert finished.args[0] in ("stopped", "cancelled")
    assert not panel.is_running() and panel.start_button.isEnabled()
    assert _no_partial_files()
    new = panel.new_model_path()
    if finished.args[0] == "stopped":  # SIGTERM: the trainer saved the model after its last step
        kind, meta = read_metadata(new)
        assert meta["status"] == "stopped" and 2 <= meta["steps"] < 10_000
        assert "Stopped early" in panel.summary_label.text()
    else:
        assert new is None
    assert len(ModelRegistry().entries()) == 1  # nothing registered unless asked for


def test_failed_run_shows_stderr_and_the_panel_survives(qtbot, studio_home, tmp_path):
    register_tiny_model(tmp_path, "tiny")
    controller = make_controller(qtbot)
    panel = _panel(qtbot, controller)
    panel.set_training_images(make_annotated_images(tmp_path / "reviewed", n=2))
    panel.extra_args = ["--crop-size", "33"]  # not a multiple of k = 32: the trainer refuses
    with qtbot.waitSignal(panel.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        assert panel.start()
    assert finished.args == ["failed"]
    assert "crop_size" in panel.last_error and "33" in panel.last_error
    box = panel.findChild(QMessageBox)
    assert box is not None and "crop_size" in box.informativeText()
    assert panel.start_button.isEnabled() and not panel.is_running()
    assert controller.current_name() == "tiny" and _no_partial_files()
    assert not list(paths.models_dir().glob("*.pth")) if paths.models_dir().exists() else True


def test_no_model_or_no_reviewed_images(qtbot, studio_home, tmp_path):
    controller = make_controller(qtbot)
    panel = _panel(qtbot, controller)
    assert HOW_TO_GET_A_MODEL in panel.model_label.text()
    panel.set_training_images(make_annotated_images(tmp_path / "reviewed", n=2))
    assert not panel.start_button.isEnabled() and panel.start() is False

    register_tiny_model(tmp_path, "tiny")
    with qtbot.waitSignal(controller.predictorChanged, timeout=60000):
        controller.load("tiny")
    assert panel.start_button.isEnabled()
    panel.set_training_images(make_annotated_images(tmp_path / "todo", n=2, reviewed=False))
    assert not panel.start_button.isEnabled()
    assert "no reviewed images yet" in panel.data_label.text()
    assert "2 not reviewed" in panel.data_label.text()

    qtbot.mouseClick(panel.minutes_radio, Qt.MouseButton.LeftButton)  # a time budget instead
    assert panel.minutes_spin.isEnabled() and not panel.steps_spin.isEnabled()
    assert panel._budget() == (1_000_000, 10.0)


def test_kill_after_grace_period_removes_partial_save(qtbot, tmp_path):
    """A trainer that ignores SIGTERM is killed after the grace period; its temp file goes."""
    from sasnet_gui.finetune.process import FineTuneJob, FineTuneProcess

    out = tmp_path / "new.pth"
    script = textwrap.dedent(f"""
        import json, signal, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(json.dumps({{"event": "start", "config": {{}}}}), flush=True)
        open({str(tmp_path / ".new.pth.abc123.tmp")!r}, "wb").write(b"half a model")
        print(json.dumps({{"event": "step", "step": 1, "loss": 2.0, "eta_s": 9}}), flush=True)
        time.sleep(60)
    """)

    class StubbornJob(FineTuneJob):
        def arguments(self):
            return ["-c", script]

    proc = FineTuneProcess(grace_ms=300)
    ended = []
    proc.ended.connect(ended.append)
    with qtbot.waitSignal(proc.stepped, timeout=30000):
        proc.start(StubbornJob(weights="w", data="d", out=str(out)))
    assert (tmp_path / ".new.pth.abc123.tmp").exists()
    with qtbot.waitSignal(proc.ended, timeout=30000):
        proc.cancel()
    assert ended[0]["status"] == "cancelled" and ended[0]["step"] == 1
    assert not list(tmp_path.glob(".*.tmp")) and not out.exists()
