"""One-click fine-tuning: train the current model on the images a person has reviewed.

    Model: shhb (released) · Data: 12 reviewed images (480 head points)
    Budget (•) 300 steps ( ) 10 minutes   [ ] freeze encoder   hold out [20 %]
    [Start] [Cancel]  [=======progress=======]  step 120 / 300 · 3.2 img/s · ETA 2 min 10 s
    [loss over steps plot                                                               ]
    Held-out MAE (3 images): 14.20 → 9.85          [Use new model] [x] make it the default

The run is ``sasnet finetune`` in a child process (``process.FineTuneProcess``); this widget turns
its JSON lines into the progress bar, ETA and plot. The new model is written to the app's model
folder and registered (with the provenance stored in the checkpoint) only when the person asks
for it; the model it started from stays registered.
"""
from __future__ import annotations

import datetime as _dt
import html
import re
import shutil
import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sasnet_core import paths
from sasnet_gui import errors
from sasnet_gui.models.controller import HOW_TO_GET_A_MODEL
from sasnet_gui.finetune.dataset import TrainingSet, collect_training_set, write_training_folder
from sasnet_gui.finetune.process import FineTuneJob, FineTuneProcess
from sasnet_gui.widgets import themed_plot_init


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _slug(text: str, limit: int = 32) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:limit] or "model"
    return slug if slug[0].isalnum() else "m" + slug


class LossPlot(pg.PlotWidget):
    def __init__(self, parent=None):
        themed_plot_init(self, parent, "training loss", "step", min_height=140)
        # Per-step losses of a few crops are noisy: the raw values thin, a running mean on top.
        self.curve = self.plot([], [], pen=pg.mkPen(232, 76, 60, 110, width=1), name="loss")
        self.smooth = self.plot([], [], pen=pg.mkPen("#e74c3c", width=2.5), name="running mean")
        self.steps: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []

    def clear_points(self) -> None:
        self.steps, self.losses, self.smoothed = [], [], []
        self.curve.setData([], [])
        self.smooth.setData([], [])

    def add(self, step: float, loss: float | None) -> None:
        if loss is None:
            return
        self.steps.append(step)
        self.losses.append(loss)
        # exponential moving average, bias-corrected so the first points are not pulled to 0
        beta, n = 0.8, len(self.losses)
        ema = self.smoothed[-1] * (1 - beta ** (n - 1)) if self.smoothed else 0.0
        ema = beta * ema + (1 - beta) * loss
        self.smoothed.append(ema / (1 - beta ** n))
        self.curve.setData(self.steps, self.losses)
        self.smooth.setData(self.steps, self.smoothed)


class FineTunePanel(QWidget):
    runStarted = Signal()
    runFinished = Signal(str)  # completed, stopped, time_limit, cancelled or failed
    modelRegistered = Signal(str)  # registry name of the new model

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.process = FineTuneProcess(self)
        self.extra_args: list[str] = []  # more `sasnet finetune` options (tests, power users)
        self.training_set = TrainingSet()
        self._items: list[Path] = []
        self._project_dir: Path | None = None
        self._data_dir: Path | None = None
        self._job: FineTuneJob | None = None
        self._t0 = 0.0
        self._last_step: dict | None = None
        self._val_n: int | None = None
        self.result: dict | None = None
        self.last_error: str | None = None
        self._build()
        self.process.started.connect(self._on_start)
        self.process.stepped.connect(self._on_step)
        self.process.validated.connect(self._on_val)
        self.process.message.connect(lambda text: self.phase_label.setText(html.escape(text[:200])))
        self.process.ended.connect(self._on_end)
        self.process.failed.connect(self._on_failed)
        controller.predictorChanged.connect(lambda _p: self._update_state())
        controller.busyChanged.connect(lambda _b: self._update_state())
        app = QApplication.instance()
        if app is not None:  # quitting mid-run: the trainer still saves its last step
            app.aboutToQuit.connect(self.shutdown)
        self._update_state()

    # -- layout ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.data_label = QLabel()
        self.data_label.setWordWrap(True)

        self.steps_radio = QRadioButton("Steps")
        self.minutes_radio = QRadioButton("Minutes")
        self.steps_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.steps_radio)
        group.addButton(self.minutes_radio)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 1_000_000)
        self.steps_spin.setValue(300)
        self.steps_spin.setToolTip("Optimiser steps (8 images x 4 crops each, as in the paper)")
        self.minutes_spin = QDoubleSpinBox()
        self.minutes_spin.setRange(0.5, 24 * 60)
        self.minutes_spin.setDecimals(1)
        self.minutes_spin.setValue(10.0)
        self.minutes_spin.setSuffix(" min")
        self.freeze_check = QCheckBox("Freeze encoder")
        self.freeze_check.setToolTip("Train only the decoder and heads: faster, and safer with "
                                     "few images")
        self.holdout_spin = QSpinBox()
        self.holdout_spin.setRange(0, 50)
        self.holdout_spin.setValue(20)
        self.holdout_spin.setSuffix(" %")
        self.holdout_spin.setToolTip("Share of the images kept out of training and scored before "
                                     "and after (MAE)")
        for w in (self.steps_radio, self.minutes_radio):
            w.toggled.connect(self._update_state)
        options = QGridLayout()
        options.addWidget(QLabel("Budget:"), 0, 0)
        options.addWidget(self.steps_radio, 0, 1)
        options.addWidget(self.steps_spin, 0, 2)
        options.addWidget(self.minutes_radio, 0, 3)
        options.addWidget(self.minutes_spin, 0, 4)
        options.addWidget(self.freeze_check, 1, 1, 1, 2)
        options.addWidget(QLabel("Hold out:"), 1, 3)
        options.addWidget(self.holdout_spin, 1, 4)
        options.setColumnStretch(5, 1)

        self.start_button = QPushButton("Fine-tune")
        self.start_button.setToolTip("Train the current model on the reviewed images")
        self.start_button.clicked.connect(lambda: self.start())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.eta_label = QLabel("")
        self.progress.setMinimumWidth(160)
        run_row = QHBoxLayout()
        run_row.addWidget(self.start_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress, 1)
        self.phase_label = QLabel("")
        self.phase_label.setEnabled(False)  # the palette's dimmed text: a status line
        status_row = QHBoxLayout()
        status_row.addWidget(self.eta_label)
        status_row.addStretch(1)
        status_row.addWidget(self.phase_label)

        self.plot = LossPlot()

        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_button = QPushButton("Use new model")
        self.use_button.clicked.connect(lambda: self.use_new_model())
        self.default_check = QCheckBox("make it the default")
        self.default_check.setChecked(True)
        result_row = QHBoxLayout()
        result_row.addWidget(self.summary_label, 1)
        result_row.addWidget(self.use_button)
        result_row.addWidget(self.default_check)

        layout = QVBoxLayout(self)
        layout.addWidget(self.model_label)
        layout.addWidget(self.data_label)
        layout.addLayout(options)
        layout.addLayout(run_row)
        layout.addLayout(status_row)
        layout.addWidget(self.plot, 1)
        layout.addLayout(result_row)

        self._tick = QTimer(self)  # elapsed time and progress under a minutes budget
        self._tick.setInterval(500)
        self._tick.timeout.connect(self._update_progress)

    # -- inputs ----------------------------------------------------------------------------
    def set_training_images(self, items, project_dir=None) -> TrainingSet:
        """Images (or their ``*.sasnet.json`` files) to learn from; only reviewed ones are used.

        ``project_dir``: where annotations live when not beside the images
        (``project_dir/annotations/NAME.sasnet.json``).
        """
        self._project_dir = Path(project_dir) if project_dir else None
        self._items = [Path(p) for p in items]
        self.training_set = collect_training_set(self._items, self._project_dir)
        self._update_state()
        return self.training_set

    def is_running(self) -> bool:
        return self.process.is_running()

    def _budget(self) -> tuple[int, float | None]:
        if self.minutes_radio.isChecked():
            return 1_000_000, float(self.minutes_spin.value())  # the clock stops it
        return int(self.steps_spin.value()), None

    # -- run -------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start a run on the reviewed images; False (with the reason on screen) when it cannot."""
        weights = self.controller.current_weights_path()
        if self.is_running():
            return False
        # Read the annotations again: points corrected or reviewed since the list was given count.
        self.training_set = collect_training_set(self._items, self._project_dir)
        n = len(self.training_set)
        if weights is None or n == 0:
            self._update_state()  # says what is missing
            return False
        holdout = self.holdout_spin.value() / 100.0 if n >= 2 else 0.0
        parent = self.controller.current_name() or Path(weights).stem
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        name, i = f"{_slug(parent)}-ft-{stamp}", 2
        while (paths.models_dir() / f"{name}.pth").exists():  # two runs in one second
            name, i = f"{_slug(parent)}-ft-{stamp}-{i}", i + 1
        out = paths.models_dir() / f"{name}.pth"
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            # Kept with the model when it is used: its provenance ("data_folder") stays true.
            self._data_dir = paths.data_dir() / "finetune-data" / name
            write_training_folder(self.training_set, self._data_dir)
        except OSError as exc:
            self._cleanup_data()
            self._error("Cannot prepare the fine-tuning data", f"{exc.filename or ''}: "
                        f"{exc.strerror or exc}")
            return False
        steps, minutes = self._budget()
        device = self.controller.device if self.controller.device in ("cpu", "cuda") else "auto"
        self._job = FineTuneJob(
            weights=str(weights), data=str(self._data_dir), out=str(out), steps=steps,
            max_minutes=minutes, freeze_encoder=self.freeze_check.isChecked(), holdout=holdout,
            name=name, device=device, stop_file=str(self._data_dir / "STOP"),
            extra_args=list(self.extra_args))
        self._parent = (parent, Path(weights))
        self.result, self._last_step, self._val_n = None, None, None
        self.plot.clear_points()
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.eta_label.setText("")
        self.summary_label.setText("")
        self.phase_label.setText("Starting the trainer (loading the model)…")
        self._t0 = time.monotonic()
        self.process.start(self._job, working_dir=self._data_dir)
        self._tick.start()
        self._update_state()
        self.runStarted.emit()
        return True

    def cancel(self) -> None:
        if self.is_running():
            self.process.cancel()
            self.phase_label.setText("Stopping after the current step…")
            self.cancel_button.setEnabled(False)

    def _on_start(self, record: dict) -> None:
        n_train, n_val = record.get("train_images"), record.get("val_images")
        text = f"Training on {n_train} images"
        if n_val:
            text += f", {n_val} held out: measuring MAE before training…"
        self.phase_label.setText(text + f" ({record.get('device', '?')})")

    def _on_step(self, record: dict) -> None:
        self._last_step = record
        self.plot.add(record.get("step", 0), record.get("loss"))
        self.phase_label.setText("Training…")
        self._update_progress()

    def _on_val(self, record: dict) -> None:
        self._val_n = record.get("n", self._val_n)
        phase = record.get("phase")
        if phase == "final":
            self.phase_label.setText("Measured MAE after training; saving the model…")
        elif phase == "before":
            self.phase_label.setText(f"Held-out MAE before: {record.get('mae', float('nan')):.2f}")

    def _update_progress(self) -> None:
        if not self.is_running() or self._job is None:
            return
        elapsed = time.monotonic() - self._t0
        rec = self._last_step or {}
        step, steps = rec.get("step", 0), self._job.steps
        if self._job.max_minutes is not None:
            frac = min(elapsed / (self._job.max_minutes * 60), 1.0)
            self.progress.setFormat(f"step {step} · {fmt_duration(elapsed)} of "
                                    f"{fmt_duration(self._job.max_minutes * 60)}")
        else:
            frac = step / max(steps, 1)
            self.progress.setFormat(f"step {step} / {steps}")
        self.progress.setValue(int(round(1000 * frac)))
        if rec:
            self.eta_label.setText(f"loss {rec.get('loss', 0):.4g} · "
                                   f"{rec.get('images_per_s', 0):.1f} img/s · "
                                   f"ETA {fmt_duration(rec.get('eta_s'))}")
        else:
            self.eta_label.setText(f"elapsed {fmt_duration(elapsed)}")

    def _on_end(self, end: dict) -> None:
        self._tick.stop()
        status = end.get("status", "completed")
        self.result = dict(end)
        checkpoint = end.get("checkpoint")
        step = int(end.get("step") or 0)
        if status == "stopped" and step == 0 and checkpoint:
            Path(checkpoint).unlink(missing_ok=True)  # stopped before the first step: the parent
            checkpoint = self.result["checkpoint"] = None
        if checkpoint and not Path(checkpoint).is_absolute() and self._data_dir is not None:
            checkpoint = self.result["checkpoint"] = str(self._data_dir / checkpoint)
        if checkpoint:  # the model's "data_folder" names this folder: keep it, minus the stop file
            (self._data_dir / "STOP").unlink(missing_ok=True) if self._data_dir else None
            self._data_dir = None
        else:
            self._cleanup_data()
        before, after = end.get("mae_before"), end.get("mae")
        parts = []
        if status == "cancelled" or not checkpoint:
            parts.append("Cancelled; no new model was written.")
            self.progress.setFormat("cancelled")
        else:
            what = {"completed": "Finished", "time_limit": "Time budget reached",
                    "stopped": "Stopped early"}.get(status, status)
            parts.append(f"<b>{what}</b> after {step} steps.")
            self.progress.setValue(1000 if status != "stopped" else self.progress.value())
            self.progress.setFormat(f"{what.lower()} · step {step}")
            if isinstance(before, (int, float)) and isinstance(after, (int, float)):
                n = f" ({self._val_n} image{'s' if self._val_n != 1 else ''})" if self._val_n else ""
                arrow = "better" if after < before else "not better"
                parts.append(f"Held-out MAE{n}: <b>{before:.2f} → {after:.2f}</b> ({arrow}).")
            else:
                parts.append("No held-out images, so no MAE before/after.")
        self.summary_label.setText(" ".join(parts))
        self.eta_label.setText(f"took {fmt_duration(time.monotonic() - self._t0)}")
        self.phase_label.setText("")
        self._update_state()
        self.runFinished.emit(status if checkpoint or status == "cancelled" else "cancelled")

    def _on_failed(self, message: str) -> None:
        self._tick.stop()
        self._cleanup_data()
        self.result = {"status": "failed", "message": message}
        self.progress.setFormat("failed")
        self.phase_label.setText("")
        self.summary_label.setText("<span style='color:#c0392b'>Fine-tuning failed (details in "
                                   "the dialog). Your model and annotations are unchanged.</span>")
        self._update_state()
        self._error("Fine-tuning failed", message)
        self.runFinished.emit("failed")

    def _cleanup_data(self) -> None:
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    def new_model_path(self) -> Path | None:
        ck = (self.result or {}).get("checkpoint")
        return Path(ck) if ck and Path(ck).is_file() else None

    # -- the new model ---------------------------------------------------------------------
    def use_new_model(self) -> str | None:
        """Register the new model (its file carries parent, data and MAE) and switch to it."""
        path = self.new_model_path()
        if path is None or self._job is None:
            return None
        registry = self.controller.registry
        try:
            self._keep_parent_registered(registry)
            entry = registry.get(self._job.name) or registry.add(
                self._job.name, path, make_default=self.default_check.isChecked())
        except Exception as exc:  # noqa: BLE001 - registry/file problems: tell, keep running
            self._error("Cannot register the new model", str(exc))
            return None
        self.controller.registryChanged.emit()
        self.controller.load(entry.name)
        self.summary_label.setText(self.summary_label.text() + f" Now using <b>{entry.name}</b>.")
        self.use_button.setEnabled(False)
        self.modelRegistered.emit(entry.name)
        return entry.name

    def _keep_parent_registered(self, registry) -> None:
        """A model loaded straight from a file gets a registry entry too, so the person can go
        back to it from the Models dialog."""
        parent_name, parent_path = self._parent
        entries = registry.entries()
        if any(e.path.resolve() == parent_path.resolve() for e in entries):
            return
        taken = {e.name for e in entries}
        name, i = _slug(parent_name, 56), 2
        base = name
        while name in taken:
            name, i = f"{base}-{i}", i + 1
        registry.add(name, parent_path)

    # -- state -----------------------------------------------------------------------------
    def _update_state(self) -> None:
        running = self.is_running()
        c = self.controller
        if c.has_model():
            info = c.current_info()
            kind = getattr(info, "kind", "") if info is not None else ""
            self.model_label.setText(f"Start from: <b>{html.escape(str(c.current_name()))}</b>"
                                     + (f" ({kind})" if kind else ""))
        elif c.is_busy():
            self.model_label.setText("Start from: loading the model…")
        else:
            self.model_label.setText("<b>No model loaded.</b> Fine-tuning starts from a model. "
                                     + html.escape(HOW_TO_GET_A_MODEL, quote=False))
        ts = self.training_set
        if len(ts):
            text = "Learn from: " + html.escape(ts.describe())
            if len(ts) < 2:
                text += " — with one image nothing can be held out to measure MAE."
        else:
            text = ("Learn from: <b>no reviewed images yet</b>. Annotate images (correct the "
                    "points), mark them reviewed, then come back."
                    + (f" ({html.escape(ts.describe().split('; ', 1)[-1])})"
                       if ts.not_reviewed or ts.missing or ts.broken else ""))
        self.data_label.setText(text)
        can_start = c.current_weights_path() is not None and len(ts) > 0 and not c.is_busy()
        self.start_button.setEnabled(can_start and not running)
        self.cancel_button.setEnabled(running and not self.process.cancel_requested())
        for w in (self.steps_radio, self.minutes_radio, self.freeze_check, self.holdout_spin):
            w.setEnabled(not running)
        self.steps_spin.setEnabled(not running and self.steps_radio.isChecked())
        self.minutes_spin.setEnabled(not running and self.minutes_radio.isChecked())
        has_new = self.new_model_path() is not None and not running
        self.use_button.setEnabled(has_new and self._job is not None
                                   and self.controller.registry.get(self._job.name) is None)
        self.use_button.setVisible(has_new)
        self.default_check.setVisible(has_new)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Stop a run before the app quits (the trainer still saves its last step)."""
        if self.is_running():
            self.process.cancel()
            self.process.wait(timeout_ms)
        self._cleanup_data()

    def _error(self, title: str, message: str) -> None:
        self.last_error = message
        errors.show_error(self, message, what=title)
