"""One-click fine-tuning: the panel runs the real `sasnet finetune` subprocess on a tiny model."""
from __future__ import annotations

import os
import textwrap

import pytest  # noqa: E402
from _gui_helpers import make_annotated_images, make_controller, register_tiny_model
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from sasnet_core.training.finetuning import SUGGESTED_MINUTES  # noqa: E402
from sasnet_core.util import paths  # noqa: E402
from sasnet_core.weights.registry import ModelRegistry  # noqa: E402
from sasnet_gui.widgets import HOW_TO_GET_A_MODEL  # noqa: E402

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


def _no_staging_left():
    from sasnet_core.training.staging import staging_root

    return not staging_root().exists() or not list(staging_root().iterdir())


def _window_with_finetune_panel(qtbot, controller, folder, steps: int):
    """The main window on ``folder`` with Fine-tune opened through its action: fast settings, no hold-out."""
    from sasnet_gui.finetune.panel import FineTunePanel
    from sasnet_gui.main_window import MainWindow

    window = MainWindow(controller=controller)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.session.imageShown, timeout=10_000):
        window.open_paths([folder])
    window.act_finetune.trigger()
    panel = window.findChild(FineTunePanel)
    panel.extra_args = list(FAST)
    panel.steps_spin.setValue(steps)
    panel.holdout_spin.setValue(0)
    return window, panel


def test_finetune_runs_reports_mae_and_switches_model(qtbot, studio_home, tmp_path):
    register_tiny_model(tmp_path, "tiny")
    controller = make_controller(qtbot)
    images = make_annotated_images(tmp_path / "reviewed", n=3)
    unreviewed = make_annotated_images(tmp_path / "todo", n=1, reviewed=False, seed=5)
    panel = _panel(qtbot, controller)
    ts = panel.set_training_images(images + unreviewed + [tmp_path / "nothing.png"])
    assert len(ts) == 3 and len(ts.not_reviewed) == 1 and len(ts.broken) == 1
    assert "3 reviewed images" in panel.data_label.text() and "1 not reviewed" in panel.data_label.text()
    assert "tiny" in panel.model_label.text()
    panel.steps_spin.setValue(3)
    panel.holdout_spin.setValue(34)  # one of the three images is held out
    steps, vals = [], []
    panel.process.stepped.connect(steps.append)
    panel.process.validated.connect(vals.append)

    with qtbot.waitSignal(panel.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert panel.is_running() and not panel.start_button.isEnabled()
        assert not panel.steps_spin.isEnabled()
        qtbot.waitUntil(lambda: len(steps) >= 1, timeout=RUN_TIMEOUT_MS)
        assert panel.cancel_button.isEnabled()
        assert "ETA" in panel.eta_label.text() and panel.progress.value() > 0
    assert finished.args == ["completed"], panel.last_error
    assert [s["step"] for s in steps] == [1, 2, 3]
    assert panel.plot.steps == [1, 2, 3] and len(panel.plot.losses) == 3
    assert [v["phase"] for v in vals] == ["before", "final"]
    assert panel.progress.value() == 1000
    assert "→" in panel.summary_label.text() and "(1 image)" in panel.summary_label.text()
    new = panel.new_model_path()
    assert new is not None and new.parent == paths.models_dir() and _no_partial_files()
    assert _no_staging_left()  # the annotations it learnt from were staged, and that is gone
    assert panel.use_button.isVisible() and panel.use_button.isEnabled()
    assert len(ModelRegistry().entries()) == 1  # nothing registered before the person asks
    # proposed as the default only when it counts the held-out image better
    better = panel.result["mae"] < panel.result["mae_before"]
    assert panel.default_check.isChecked() == better
    # one that is not better is removed unless kept; a better one unless used
    assert ("removed unless you keep it" in panel.summary_label.text()) == (not better)
    assert panel.keep_button.isVisible() == (not better) and panel.discard_button.isVisible()

    with qtbot.waitSignals([panel.modelRegistered, controller.predictorChanged], timeout=60000):
        qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    name = new.stem
    assert controller.current_name() == name and controller.current_weights_path() == new
    entry = ModelRegistry().get(name)
    assert entry.is_default == better and entry.metadata["kind"] == "finetuned"
    assert entry.metadata["parent_name"] == "tiny" and entry.metadata["status"] == "completed"
    assert entry.metadata["val_mae_before"] == pytest.approx(panel.result["mae_before"])
    assert entry.metadata["val_mae"] == pytest.approx(panel.result["mae"])
    assert (entry.metadata["finetune_images"], entry.metadata["holdout_images"]) == (2, 1)
    assert entry.metadata["holdout_files"][0] in {p.name for p in images}
    # provenance names the real data folder and the parent by name and file
    assert entry.metadata["data_folder"] == entry.metadata["data"] == str(images[0].parent)
    assert entry.metadata["parent"] == str(ModelRegistry().get("tiny").path)
    from sasnet_gui.models.dialog import describe

    # the images as they are: where they are, and the one held out to measure the MAE
    assert describe(entry)["Trained on"] == "2 images (reviewed; 1 more held out)"
    assert ModelRegistry().get("tiny") is not None  # the previous model stays available
    assert not panel.use_button.isEnabled() and not panel.discard_button.isVisible()
    panel.shutdown()  # the app quits: a model in use is never removed
    assert new.is_file()


def test_cancel_midway_leaves_no_half_written_model(qtbot, studio_home, tmp_path):
    from sasnet_core.weights.checkpoint import read_metadata

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
    assert _no_partial_files() and _no_staging_left()
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
    assert "--crop-size 33" in panel.last_error and "k = 32" in panel.last_error
    box = panel.findChild(QMessageBox)
    assert box is not None and "--crop-size 33" in box.informativeText()
    assert panel.start_button.isEnabled() and not panel.is_running()
    assert controller.current_name() == "tiny" and _no_partial_files() and _no_staging_left()
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
    assert "no reviewed images yet" in panel.data_label.text()
    assert "2 not reviewed" in panel.data_label.text()
    # Still clickable (an image may be reviewed after the panel was opened); the click reads the
    # set, finds nothing and says so, without a dialog and without leaving anything behind.
    with qtbot.waitSignal(panel.runFinished, timeout=60000) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["failed"] and "no reviewed images" in panel.data_label.text()
    assert "Not started" in panel.summary_label.text() and panel.summary_label.isVisible()
    assert panel.findChild(QMessageBox) is None and _no_staging_left()
    assert panel.start_button.isEnabled() and not panel.is_running()

    qtbot.mouseClick(panel.minutes_radio, Qt.MouseButton.LeftButton)  # a time budget instead
    assert panel.minutes_spin.isEnabled() and not panel.steps_spin.isEnabled()
    assert panel._budget() == (1_000_000, SUGGESTED_MINUTES)


def test_kill_after_grace_period(qtbot, tmp_path):
    """A trainer that ignores SIGTERM is killed after the grace period and the run ends as
    cancelled (what it left is the service's to remove: see test_finetune_service)."""
    from sasnet_gui.finetune.process import FineTuneJob, FineTuneProcess

    script = textwrap.dedent("""
        import json, signal, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(json.dumps({"event": "start", "config": {}}), flush=True)
        print(json.dumps({"event": "step", "step": 1, "loss": 2.0, "eta_s": 9}), flush=True)
        time.sleep(60)
    """)
    proc = FineTuneProcess(grace_ms=300)
    ended = []
    proc.ended.connect(ended.append)
    with qtbot.waitSignal(proc.stepped, timeout=30000):
        proc.start(FineTuneJob(["-c", script], stop_file=str(tmp_path / "STOP")))
    with qtbot.waitSignal(proc.ended, timeout=30000):
        proc.cancel()
    assert ended[0]["status"] == "cancelled" and ended[0]["step"] == 1
    assert (tmp_path / "STOP").exists() and not proc.is_running()


def test_an_image_reviewed_after_the_panel_opened_is_learnt_from(qtbot, studio_home, tmp_path):
    register_tiny_model(tmp_path, "tiny")
    controller = make_controller(qtbot)
    with qtbot.waitSignal(controller.predictorChanged, timeout=60000):
        controller.device = "cpu"  # as chosen in the Models dialog (the model reloads)
    with qtbot.waitSignal(controller.predictorChanged, timeout=60000):
        controller.precision = "bf16"
    images = make_annotated_images(tmp_path / "street", n=3, reviewed=[True, True, False])
    window, panel = _window_with_finetune_panel(qtbot, controller, tmp_path / "street", steps=1)
    assert "2 reviewed images" in panel.data_label.text()

    for _ in range(2):  # to the third image, as a person would (Page Down)
        with qtbot.waitSignal(window.session.imageShown, timeout=10_000):
            window.act_next.trigger()
    assert window.session.current == str(images[2])
    window.act_reviewed.trigger()  # Ctrl+R: mark it reviewed
    assert window.act_reviewed.isChecked()
    # the panel's data line follows once the mark is saved (while the panel is open)
    qtbot.waitUntil(lambda: "3 reviewed images" in panel.data_label.text(), timeout=10_000)
    with qtbot.waitSignal(panel.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["completed"], panel.last_error
    start = next(r for r in panel.process.records if r["event"] == "start")
    assert start["train_images"] == 3
    # the device and precision chosen in the app reach the trainer
    assert (start["config"]["device"], start["config"]["precision"]) == ("cpu", "bf16")
    assert "3 reviewed images" in panel.data_label.text()
    from sasnet_core.weights.checkpoint import read_metadata

    _kind, meta = read_metadata(panel.new_model_path())
    assert meta["finetune_images"] == 3 and meta["data_folder"] == str(images[0].parent)
    window.counter.cancel()
    window.counter.wait_idle()
    window.document.flush()


def test_the_result_of_a_run_is_in_view_in_a_window_of_1280_by_800(qtbot, studio_home, tmp_path):
    """The Fine-tune dock shares the right side with the counts panel; at 1280 x 800 the run's
    summary and the Use / Keep buttons were below the fold of its scroll area, unseen."""
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtWidgets import QScrollArea

    register_tiny_model(tmp_path, "tiny")
    controller = make_controller(qtbot)
    make_annotated_images(tmp_path / "street", n=2)
    window, panel = _window_with_finetune_panel(qtbot, controller, tmp_path / "street", steps=1)
    window.resize(1280, 800)
    area = panel.parentWidget()
    while not isinstance(area, QScrollArea):
        area = area.parentWidget()
    qtbot.waitUntil(lambda: area.viewport().height() < panel.height(), timeout=5_000)  # it scrolls

    def in_view(w) -> bool:
        top_left = w.mapTo(area.viewport(), QPoint(0, 0))
        return area.viewport().rect().contains(QRect(top_left, w.size()))

    assert not in_view(panel.use_button)  # before the run: the settings are what shows
    with qtbot.waitSignal(panel.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["completed"], panel.last_error
    assert "after 1 steps" in panel.summary_label.text()
    shown = [w for w in (panel.summary_label, panel.use_button, panel.keep_button) if w.isVisible()]
    assert panel.summary_label in shown and len(shown) >= 2  # the summary and at least one choice
    assert all(in_view(w) for w in shown)
    window.counter.cancel()
    window.counter.wait_idle()


def _answer_next_question(qtbot, button_text: str, seen: list):
    """Click ``button_text`` in the next modal question, as a person would, noting its text."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    def answer():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer)
            return
        seen.append(box.text())
        button = next(b for b in box.buttons() if b.text().replace("&", "") == button_text)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, answer)


def test_quitting_during_a_run_asks_first(qtbot, studio_home, tmp_path):
    register_tiny_model(tmp_path, "tiny")
    controller = make_controller(qtbot)
    make_annotated_images(tmp_path / "street", n=2)
    window, panel = _window_with_finetune_panel(qtbot, controller, tmp_path / "street", steps=10_000)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(panel.plot.steps) >= 1, timeout=RUN_TIMEOUT_MS)

    asked: list[str] = []
    _answer_next_question(qtbot, "Cancel", asked)
    window.act_quit.trigger()  # Ctrl+Q
    assert len(asked) == 1 and "A fine-tuning run is in progress (step " in asked[0]
    assert "of 10000). Stop it and quit?" in asked[0]
    assert window.isVisible() and panel.process.is_running()  # the app and the run go on
    step = len(panel.plot.steps)
    qtbot.waitUntil(lambda: len(panel.plot.steps) > step, timeout=RUN_TIMEOUT_MS)

    _answer_next_question(qtbot, "Stop and Quit", asked)
    window.close()  # the window's close button
    assert len(asked) == 2 and not window.isVisible()
    assert not panel.process.is_running() and _no_partial_files() and _no_staging_left()
    assert len(ModelRegistry().entries()) == 1  # nothing registered
    window.counter.wait_idle()


def test_loss_plot_tells_its_two_curves_apart(qtbot):
    from sasnet_gui.finetune.panel import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    for step, loss in enumerate([5.0, 3.0, 4.0, 2.0], start=1):
        plot.add(step, loss)
    item = plot.getPlotItem()
    names = [label.text for _sample, label in item.legend.items]
    assert names == ["loss per step", "running mean"]
    raw, mean = (curve.opts["pen"].color() for curve in (plot.curve, plot.smooth))
    # distinct colours, not two shades of one colour
    assert sum(abs(a - b) for a, b in zip(raw.getRgb()[:3], mean.getRgb()[:3])) > 120
    assert item.getAxis("left").labelText == "training loss" and item.getAxis("bottom").labelText == "step"


def test_the_minimum_budget_is_shown_and_a_lower_one_is_refused_at_the_click(qtbot, studio_home, tmp_path):
    register_tiny_model(tmp_path, "tiny")
    controller = make_controller(qtbot)
    panel = _panel(qtbot, controller)
    panel.set_training_images(make_annotated_images(tmp_path / "reviewed", n=3))
    qtbot.mouseClick(panel.minutes_radio, Qt.MouseButton.LeftButton)  # a time budget
    # measured for this model on this machine before anything starts, and said beside the field
    qtbot.waitUntil(lambda: panel.minimum is not None, timeout=60_000)
    minimum = panel.minimum
    assert panel.minimum_label.isVisible() and panel.minimum_label.text() == f"at least {minimum.minutes:g} min here"
    assert minimum.minutes > 0.1 and "one step" in panel.minutes_spin.toolTip()

    panel.minutes_spin.lineEdit().selectAll()
    qtbot.keyClicks(panel.minutes_spin, "0.1")  # below the minimum, typed as a person does
    qtbot.keyClick(panel.minutes_spin, Qt.Key.Key_Enter)
    assert panel.minutes_spin.value() == pytest.approx(0.1)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert not panel.is_running() and panel.run is None  # refused, not run into
    text = panel.summary_label.text()
    assert "Not started" in text and "too short" in text and f"at least {minimum.minutes:g} minutes" in text
    assert panel.minutes_spin.value() == pytest.approx(minimum.minutes)  # the next click starts
    assert panel.findChild(QMessageBox) is None and _no_staging_left()
    assert not paths.models_dir().exists() or not list(paths.models_dir().glob("*.pth"))


def _fake_trainer(monkeypatch, parent, mae_before: float, mae_after: float) -> None:
    """The trainer replaced by a script that writes a model (a copy of the parent) and reports the
    given held-out MAE, so what the panel does with a rejected model is tested without the luck
    of a real three-step run."""
    from sasnet_core.training.service import FineTuneRun

    script = textwrap.dedent(f"""
        import json, shutil, sys
        out, parent = sys.argv[1], sys.argv[2]
        def say(**record):
            print(json.dumps(record), flush=True)
        say(event="start", config={{}}, train_images=2, val_images=1, device="cpu", precision="fp32")
        say(event="val", phase="before", step=0, mae={mae_before}, n=1)
        for i in (1, 2):
            say(event="step", step=i, loss=3.0 - i, eta_s=1, images_per_s=9.0)
        shutil.copyfile(parent, out)
        say(event="val", phase="final", step=2, mae={mae_after}, n=1)
        say(event="end", status="completed", step=2, checkpoint=out, mae={mae_after}, mae_before={mae_before})
    """)
    monkeypatch.setattr(FineTuneRun, "command", lambda self: ["-c", script, str(self.out), str(parent)])


def _run_to_end(qtbot, panel) -> None:
    with qtbot.waitSignal(panel.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["completed"], panel.last_error


def test_a_rejected_model_is_removed_unless_the_person_keeps_it(qtbot, studio_home, tmp_path, monkeypatch):
    parent = register_tiny_model(tmp_path, "tiny")
    _fake_trainer(monkeypatch, parent, mae_before=2.0, mae_after=3.5)  # worse on the held-out image
    controller = make_controller(qtbot)
    panel = _panel(qtbot, controller)
    panel.set_training_images(make_annotated_images(tmp_path / "reviewed", n=3))

    _run_to_end(qtbot, panel)  # 1: the person discards it
    first = panel.new_model_path()
    assert first is not None and first.is_file()
    assert "not better" in panel.summary_label.text() and "removed unless you keep it" in panel.summary_label.text()
    assert panel.keep_button.isVisible() and panel.discard_button.isVisible()
    assert not panel.default_check.isChecked()
    qtbot.mouseClick(panel.discard_button, Qt.MouseButton.LeftButton)
    assert not first.exists() and panel.new_model_path() is None
    assert "removed" in panel.summary_label.text() and not panel.keep_button.isVisible()

    _run_to_end(qtbot, panel)  # 2: kept anyway, knowingly: registered, not used, not the default
    kept = panel.new_model_path()
    with qtbot.waitSignal(panel.modelRegistered, timeout=60_000):
        qtbot.mouseClick(panel.keep_button, Qt.MouseButton.LeftButton)
    entry = ModelRegistry().get(kept.stem)
    assert entry is not None and entry.path == kept and not entry.is_default and kept.is_file()
    assert controller.current_name() == "tiny" and "Kept as" in panel.summary_label.text()
    assert not panel.keep_button.isVisible() and not panel.discard_button.isVisible()

    _run_to_end(qtbot, panel)  # 3: not decided: the next run removes it
    undecided = panel.new_model_path()
    qtbot.wait(1100)  # a new model is named by the second: the next one gets another name
    _run_to_end(qtbot, panel)
    last = panel.new_model_path()
    assert last != undecided and not undecided.exists() and kept.is_file()  # a kept one stays
    panel.shutdown()  # 4: not decided when the app quits
    assert not last.exists() and kept.is_file()
    models = sorted(p.name for p in paths.models_dir().glob("*.pth"))
    assert models == [kept.name]  # nothing unregistered is left in the models folder


def test_loss_plot_ticks_read_apart_for_a_large_nearly_flat_loss(qtbot):
    from PySide6.QtGui import QImage, QPainter

    from sasnet_gui.finetune.panel import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(500, 300)
    plot.show()
    qtbot.waitExposed(plot)
    for step, loss in enumerate([1711180.0, 1711190.0, 1711185.0, 1711200.0, 1711195.0], start=1):
        plot.add(step, loss)
    qtbot.wait(50)
    axis = plot.getPlotItem().getAxis("left")
    image = QImage(500, 300, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _axis, _ticks, texts = axis.generateDrawSpecs(painter)  # what the axis draws
    finally:
        painter.end()
    labels = [text for _rect, _flags, text in texts]
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    assert all(label.startswith("1.7111") or label.startswith("1.7112") for label in labels), labels
    assert all(label.endswith("M") for label in labels)
