"""One-click fine-tuning: train the current model on the images a person has reviewed.

    Model: shhb (released, verified) · Data: 12 reviewed images (480 head points)
    Budget (•) 300 steps ( ) 10 minutes (at least 2.5 min here)  [ ] freeze encoder  hold out [20 %]
    [Start] [Cancel]  [=======progress=======]  step 120 / 300 · 3.2 img/s · ETA 2 min 10 s
    [loss over steps plot                                                               ]
    Finished after 300 steps. Held-out MAE (3 images): 14.20 → 9.85 (better).
    [Use new model] [x] make it the default                    [Keep anyway] [Discard]

This widget only displays and asks. The fine-tune service (``sasnet_core.training.service``)
reads the reviewed set when Fine-tune is clicked, names and stages the run, cleans up after it and
registers the new model, each step in a worker thread; the training itself is ``sasnet finetune``
in a child process (``process.FineTuneProcess``), whose JSON lines become the progress bar, ETA and
plot. The new model is registered only when the person asks for it; one nobody keeps (Use new
model, or Keep anyway for one that is not better on the held-out images) is removed when the next
run starts, when it is discarded and when the app quits. A minutes budget below the minimum for
this model on this machine (measured when the panel shows) is refused at the click.
"""
from __future__ import annotations

import html
import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
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
from superqt.utils import create_worker

from sasnet_core.training.budget import BudgetTooSmallError
from sasnet_core.training.finetuning import SUGGESTED_MINUTES, finetune_config
from sasnet_core.training.service import (
    FineTuneRequest,
    FineTuneRun,
    estimate_minimum,
    training_precision,
)
from sasnet_core.training.staging import ReviewedSet, read_reviewed_set
from sasnet_core.util.errors import DatasetLayoutError
from sasnet_core.util.progress import human_duration as fmt_duration
from sasnet_gui import errors
from sasnet_gui.finetune.process import FineTuneJob, FineTuneProcess
from sasnet_gui.widgets import HOW_TO_GET_A_MODEL, reveal, themed_plot_init

QUIT_GRACE_MS = 1000  # how long quitting lets the trainer stop by itself before it is killed


RAW_LOSS_NAME = "loss per step"
SMOOTH_LOSS_NAME = "running mean"


class LossAxis(pg.AxisItem):
    """Tick labels with as many digits as the tick spacing needs, scaled by one SI prefix for the
    whole axis: losses of 1,711,180 and 1,711,190 read "1.71118M" and "1.71119M", where
    pyqtgraph's own labels give "1.71118e+06" at every tick."""

    PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph's name
        if self.logMode or not len(values):
            return super().tickStrings(values, scale, spacing)
        return tick_labels([v * scale for v in values], spacing * scale)


def tick_labels(values, spacing: float) -> list[str]:
    """Distinct labels for ticks ``spacing`` apart (see ``LossAxis``)."""
    import math

    top = max(abs(v) for v in values)
    factor, prefix = next(((f, p) for f, p in LossAxis.PREFIXES if top >= f), (1.0, ""))
    step = spacing / factor if spacing > 0 else 1.0
    places = max(0, math.ceil(-math.log10(step) - 1e-9)) if step < 1 else 0
    return [f"{v / factor:.{places}f}{prefix}" for v in values]


class LossPlot(pg.PlotWidget):
    def __init__(self, parent=None):
        themed_plot_init(self, parent, "training loss", "step", min_height=140)
        item = self.getPlotItem()
        old = item.getAxis("left")
        axis = LossAxis("left")
        axis.setPen(old.pen())
        axis.setTextPen(old.textPen())
        item.setAxisItems({"left": axis})
        item.setLabel("left", "training loss")
        item.showGrid(x=True, y=True, alpha=0.3)
        # Per-step losses of a few crops are noisy: the raw values thin in the text colour, the
        # running mean thick in the theme's accent, so the two read apart in a light or dark theme.
        pal = QApplication.palette()
        text, accent = pal.color(QPalette.ColorRole.Text), pal.color(QPalette.ColorRole.Highlight)
        raw = QColor(text)
        raw.setAlpha(140)
        legend = self.addLegend(offset=(-10, 10), labelTextColor=text)
        backdrop = QColor(pal.color(QPalette.ColorRole.Base))
        backdrop.setAlpha(200)  # the curves stay visible under the legend
        legend.setBrush(pg.mkBrush(backdrop))
        self.curve = self.plot([], [], pen=pg.mkPen(raw, width=1), name=RAW_LOSS_NAME)
        self.smooth = self.plot([], [], pen=pg.mkPen(accent, width=2.5), name=SMOOTH_LOSS_NAME)
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
        self.training_set = ReviewedSet()  # as last read; a run reads it again when it starts
        self._source = list  # () -> the images a run may learn from (the reviewed ones of them)
        self.run: FineTuneRun | None = None
        self._chore: str | None = None  # the service's work in a thread: preparing, finishing, ...
        self._workers: set = set()
        self._t0 = 0.0
        self._last_step: dict | None = None
        self._val_n: int | None = None
        self._end: dict | None = None
        self.result: dict | None = None
        self.rejected = False  # the last run's model is not better on the held-out images
        self._summary_base = ""  # the last run's summary, before what became of its model
        self.last_error: str | None = None
        self._quitting = False
        self._build()
        self.process.started.connect(self._on_start)
        self.process.stepped.connect(self._on_step)
        self.process.validated.connect(self._on_val)
        self.process.message.connect(lambda text: self.phase_label.setText(html.escape(text[:200])))
        self.process.ended.connect(self._on_end)
        self.process.failed.connect(self._on_failed)
        controller.predictorChanged.connect(lambda _p: (self._update_state(), self._estimate_minimum()))
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
        options = self._build_budget_options()
        run_row = self._build_run_row()
        self.plot = LossPlot()
        result_row, decide_row = self._build_decision_rows()

        layout = QVBoxLayout(self)
        layout.addWidget(self.model_label)
        layout.addWidget(self.data_label)
        layout.addLayout(options)
        layout.addLayout(run_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.eta_label)
        layout.addWidget(self.phase_label)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.summary_label)
        layout.addLayout(result_row)
        layout.addLayout(decide_row)

        self._tick = QTimer(self)  # elapsed time and progress under a minutes budget
        self._tick.setInterval(500)
        self._tick.timeout.connect(self._update_progress)

    def _build_budget_options(self) -> QGridLayout:
        """Steps or minutes, the minimum note, hold-out share and freeze: the run's choices."""
        defaults = finetune_config()  # the same defaults as `sasnet finetune`
        self.steps_radio = QRadioButton("Steps")
        self.minutes_radio = QRadioButton("Minutes")
        self.steps_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.steps_radio)
        group.addButton(self.minutes_radio)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 1_000_000)
        self.steps_spin.setValue(defaults.steps)
        self.steps_spin.setToolTip("Optimiser steps (8 images x 4 crops each, as in the paper)")
        self.minutes_spin = QDoubleSpinBox()
        self.minutes_spin.setRange(0.1, 24 * 60)
        self.minutes_spin.setDecimals(1)
        self.minutes_spin.setValue(SUGGESTED_MINUTES)
        self.minutes_spin.setSuffix(" min")
        # The least a minutes budget may be for this model here, said before the start.
        self.minimum_label = QLabel("")
        self.minimum_label.setEnabled(False)  # dimmed: a note beside the field
        self.minimum = None  # training.budget.MinimumBudget, once measured
        self._minimum_key = None
        self._minimum_worker = None
        self.freeze_check = QCheckBox("Freeze encoder")
        self.freeze_check.setToolTip("Train only the decoder and heads: faster, and safer with "
                                     "few images")
        self.holdout_spin = QSpinBox()
        self.holdout_spin.setRange(0, 50)
        self.holdout_spin.setValue(int(round(defaults.holdout * 100)))
        self.holdout_spin.setSuffix(" %")
        self.holdout_spin.setToolTip("Share of the images kept out of training and scored before "
                                     "and after (MAE)")
        for w in (self.steps_radio, self.minutes_radio):
            w.toggled.connect(self._update_state)
        self.minutes_radio.toggled.connect(lambda on: self._estimate_minimum() if on else None)
        self.holdout_spin.valueChanged.connect(lambda _v: self._estimate_minimum())
        # One choice per row: the panel often sits in a narrow side dock, where a row of five
        # fields was cut off ("Minu", "Freeze encode").
        self.minimum_label.setWordWrap(True)
        options = QGridLayout()
        options.addWidget(QLabel("Budget:"), 0, 0)
        options.addWidget(self.steps_radio, 0, 1)
        options.addWidget(self.steps_spin, 0, 2)
        options.addWidget(self.minutes_radio, 1, 1)
        options.addWidget(self.minutes_spin, 1, 2)
        options.addWidget(self.minimum_label, 2, 1, 1, 3)
        options.addWidget(QLabel("Hold out:"), 3, 0)
        options.addWidget(self.holdout_spin, 3, 2)
        options.addWidget(self.freeze_check, 4, 1, 1, 3)
        options.setColumnStretch(3, 1)
        return options

    def _build_run_row(self) -> QHBoxLayout:
        """Fine-tune and Cancel; also makes the progress bar and the ETA and phase lines."""
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
        run_row.addStretch(1)
        self.phase_label = QLabel("")
        self.phase_label.setEnabled(False)  # the palette's dimmed text: a status line
        self.phase_label.setWordWrap(True)
        self.eta_label.setWordWrap(True)
        return run_row

    def _build_decision_rows(self) -> tuple[QHBoxLayout, QHBoxLayout]:
        """What became of the run (the summary) and the person's choice for its model."""
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_button = QPushButton("Use new model")
        self.use_button.clicked.connect(lambda: self.use_new_model())
        self.default_check = QCheckBox("make it the default")
        self.default_check.setChecked(True)
        self.keep_button = QPushButton("Keep anyway")
        self.keep_button.setToolTip("Register the new model although it is not better on the held-out "
                                    "images (it is not used or made the default)")
        self.keep_button.clicked.connect(lambda: self.keep_new_model())
        self.discard_button = QPushButton("Discard")
        self.discard_button.setToolTip("Delete the new model's file now")
        self.discard_button.clicked.connect(lambda: self.discard_new_model())
        # The summary wraps on a row of its own, the buttons below it: beside the buttons a long
        # summary needed more height than the row had and was drawn over the plot and buttons.
        result_row = QHBoxLayout()
        result_row.addWidget(self.use_button)
        result_row.addWidget(self.default_check)
        result_row.addStretch(1)
        decide_row = QHBoxLayout()
        decide_row.addWidget(self.keep_button)
        decide_row.addWidget(self.discard_button)
        decide_row.addStretch(1)
        return result_row, decide_row

    # -- inputs ----------------------------------------------------------------------------
    def set_image_source(self, source) -> ReviewedSet:
        """``source()``: the images a run may learn from, asked again at every start (the app
        gives its open images, their edits saved); only those marked reviewed then are used."""
        self._source = source
        return self.refresh()

    def set_training_images(self, items) -> ReviewedSet:
        """A fixed list of images (or folders) to learn from; their reviewed marks are read again
        when a run starts."""
        fixed = [Path(p) for p in items]
        return self.set_image_source(lambda: list(fixed))

    def refresh(self) -> ReviewedSet:
        """Read the reviewed set for display (a run reads it again when it starts)."""
        self.training_set = read_reviewed_set(self._source())
        self._update_state()
        self._estimate_minimum()
        return self.training_set

    def is_running(self) -> bool:
        return self.process.is_running() or self._chore in ("preparing", "finishing")

    def _minimum_inputs(self):
        """What the minimum budget depends on: the model file, the reviewed set's size, the
        hold-out and the device (None without a model)."""
        weights = self.controller.current_weights_path()
        if weights is None:
            return None
        cfg = finetune_config(holdout=self.holdout_spin.value() / 100.0, device=str(self.controller.device),
                              precision=training_precision(str(self.controller.precision)))
        key = (str(weights), len(self.training_set), cfg.holdout, cfg.device, cfg.precision)
        return key, weights, cfg

    def _estimate_minimum(self) -> None:
        """Measure the minimum budget in a worker thread (loading the model and timing one forward
        pass the first time, free after) and show it beside the minutes field; only once a time
        budget is chosen, so a budget in steps costs the app nothing."""
        if not self.minutes_radio.isChecked():
            return
        inputs = self._minimum_inputs()
        if inputs is None or not len(self.training_set):
            self.minimum, self._minimum_key = None, None
            self._update_state()
            return
        key, weights, cfg = inputs
        if key == self._minimum_key and (self.minimum is not None or self._minimum_worker is not None):
            return
        self._minimum_key, self.minimum = key, None
        reviewed = self.training_set
        worker = create_worker(lambda: (key, estimate_minimum(weights, reviewed, cfg)), _start_thread=False,
                               _ignore_errors=True)
        # Bound methods: a panel closed before the measure ends is not called back.
        worker.returned.connect(self._minimum_known)
        worker.errored.connect(self._minimum_failed)
        worker.finished.connect(lambda: self._workers.discard(worker))
        self._workers.add(worker)
        self._minimum_worker = worker
        self._update_state()
        worker.start()

    def _minimum_known(self, measured) -> None:
        key, minimum = measured
        self._minimum_worker = None
        if key != self._minimum_key:  # the model or the set changed meanwhile: measure again
            self._estimate_minimum()
            return
        self.minimum = minimum
        self._update_state()

    def _minimum_failed(self, exc: BaseException) -> None:
        """Not measured (the model file went, say): the run measures again when it starts, and
        refuses a budget below the minimum then."""
        self._minimum_worker = None
        self._update_state()

    def _budget(self) -> tuple[int, float | None]:
        if self.minutes_radio.isChecked():
            return 1_000_000, float(self.minutes_spin.value())  # the clock stops it
        return int(self.steps_spin.value()), None

    def _in_thread(self, chore: str, fn, done, failed) -> None:
        """Run one piece of the service's work off the GUI thread; ``done``/``failed`` (bound
        methods, so they run on the GUI thread) get its result or exception."""
        self._chore = chore
        worker = create_worker(fn, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(done)
        worker.errored.connect(failed)
        worker.finished.connect(lambda: self._workers.discard(worker))  # alive until then
        self._workers.add(worker)
        worker.start()

    # -- run -------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start a run; False (with the reason on screen) when it cannot start at all."""
        weights = self.controller.current_weights_path()
        if self.is_running() or self._chore is not None or weights is None:
            self._update_state()
            return False
        steps, minutes = self._budget()
        if minutes is not None and self.minimum is not None and not self.minimum.allows(minutes):
            self._refuse_budget(BudgetTooSmallError(minutes, self.minimum))
            return False
        if self.run is not None and self.run.discard():  # the last run's model, never kept
            self.summary_label.setText("")
        n_hint = len(self.training_set)
        cfg = finetune_config(
            steps=steps, max_minutes=minutes, freeze_encoder=self.freeze_check.isChecked(),
            holdout=self.holdout_spin.value() / 100.0, device=str(self.controller.device),
            precision=training_precision(str(self.controller.precision)))
        inputs = self._minimum_inputs()
        known = self.minimum if inputs is not None and inputs[0] == self._minimum_key else None
        request = FineTuneRequest(weights=str(weights), images=list(self._source()), cfg=cfg,
                                  started_at=time.time(), extra_args=list(self.extra_args), minimum=known)
        self.run = FineTuneRun(request, registry=self.controller.registry)
        self.result, self._last_step, self._val_n, self._end = None, None, None, None
        self.rejected = False
        self._t0 = time.monotonic()
        self.plot.clear_points()
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.eta_label.setText("")
        self.summary_label.setText("")
        self.phase_label.setText(f"Reading the reviewed images{' (' + str(n_hint) + ' so far)' if n_hint else ''}…")
        self._in_thread("preparing", self.run.prepare, self._prepared, self._prepare_failed)
        self._update_state()
        self.runStarted.emit()
        return True

    def _prepared(self, reviewed: ReviewedSet) -> None:
        self._chore = None
        self.training_set = reviewed
        run = self.run
        if self._quitting:  # the app closed while the data was being staged
            run.finish(None)
            return
        self.phase_label.setText("Starting the trainer (loading the model)…")
        self.process.start(FineTuneJob(run.command(), str(run.stop_file)), working_dir=run.staging)
        self._tick.start()
        self._update_state()

    def _prepare_failed(self, exc: BaseException) -> None:
        self._chore = None
        self.training_set = self.run.reviewed if self.run is not None else ReviewedSet()
        self.run = None  # the service removed whatever it had staged
        self.result = {"status": "failed", "message": str(exc)}
        self.last_error = str(exc)
        self.progress.setFormat("")
        self.phase_label.setText("")
        self._update_state()
        if isinstance(exc, BudgetTooSmallError):  # measured only now: refused as at the click
            self.minimum = exc.minimum
            self._refuse_budget(exc)
        elif len(self.training_set) or not isinstance(exc, DatasetLayoutError):
            self._error("Cannot start fine-tuning", exc)
        else:  # nothing is reviewed: the data line says how to change that; the click is answered
            self.summary_label.setText("<b>Not started:</b> no image is marked reviewed yet "
                                       "(Edit \u25b8 Mark as Reviewed, Ctrl+R).")
        self.runFinished.emit("failed")

    def _refuse_budget(self, exc: BudgetTooSmallError) -> None:
        """A minutes budget below the minimum: said in the panel, with the minimum, and the field
        raised to it, so the next click starts."""
        self.summary_label.setText(f"<b>Not started:</b> {html.escape(exc.detail)}.")
        self.minutes_spin.setValue(max(self.minutes_spin.value(), exc.minimum.minutes))
        self.last_error = exc.detail
        self._update_state()

    def cancel(self) -> None:
        if self.process.is_running():
            self.process.cancel()
            self.phase_label.setText("Stopping after the current step…")
            self.cancel_button.setEnabled(False)

    def _on_start(self, record: dict) -> None:
        n_train, n_val = record.get("train_images"), record.get("val_images")
        text = f"Training on {n_train} images"
        if n_val:
            text += f", {n_val} held out: measuring MAE before training…"
        self.phase_label.setText(text + f" ({record.get('device', '?')}, {record.get('precision', '?')})")

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
        if not self.process.is_running() or self.run is None:
            return
        elapsed = time.monotonic() - self._t0
        rec = self._last_step or {}
        cfg = self.run.cfg
        step = rec.get("step", 0)
        if cfg.max_minutes is not None:  # the budget covers the whole run: the clock is the truth
            budget = cfg.max_minutes * 60
            frac, eta = min(elapsed / budget, 1.0), max(budget - elapsed, 0.0)
            self.progress.setFormat(f"step {step} · {fmt_duration(elapsed)} of {fmt_duration(budget)}")
        else:
            frac, eta = step / max(cfg.steps, 1), rec.get("eta_s")
            self.progress.setFormat(f"step {step} / {cfg.steps}")
        self.progress.setValue(int(round(1000 * frac)))
        if rec:
            self.eta_label.setText(f"loss {rec.get('loss', 0):.4g} · "
                                   f"{rec.get('images_per_s', 0):.1f} img/s · ETA {fmt_duration(eta)}")
        else:
            self.eta_label.setText(f"elapsed {fmt_duration(elapsed)}")

    def _on_end(self, end: dict) -> None:
        self._tick.stop()
        self._end = dict(end)
        self.phase_label.setText("Cleaning up…")
        self._in_thread("finishing", lambda: self.run.finish(self._end), self._finished, self._finish_failed)

    def _on_failed(self, message: str) -> None:
        self._tick.stop()
        self._end = None
        self.last_error = message
        self._in_thread("finishing", lambda: self.run.finish(None), self._failed_cleaned,
                        self._finish_failed)

    def _finish_failed(self, exc: BaseException) -> None:
        self._chore = None
        self._error("Cannot clean up after fine-tuning", exc)
        self._show_end(None)

    def _finished(self, path) -> None:
        self._chore = None
        self._show_end(path)

    def _show_end(self, path) -> None:
        end = self._end or {}
        status = end.get("status", "cancelled")
        step = int(end.get("step") or 0)
        self.result = {**end, "checkpoint": str(path) if path else None}
        parts = []
        if path is None:
            if status == "time_limit":  # set-up and the first evaluation took the whole budget
                parts.append("The time budget ran out before the first step; no new model was "
                             "written. Give it more minutes.")
            else:
                parts.append("Cancelled; no new model was written.")
            status = "cancelled"
            self.progress.setFormat("cancelled")
        else:
            what = {"completed": "Finished", "time_limit": "Time budget reached",
                    "stopped": "Stopped early"}.get(status, status)
            parts.append(f"<b>{what}</b> after {step} steps.")
            self.progress.setValue(1000 if status != "stopped" else self.progress.value())
            self.progress.setFormat(f"{what.lower()} · step {step}")
            before, after = end.get("mae_before"), end.get("mae")
            measured = isinstance(before, (int, float)) and isinstance(after, (int, float))
            better = measured and after < before
            self.rejected = measured and not better
            if measured:
                n = f" ({self._val_n} image{'s' if self._val_n != 1 else ''})" if self._val_n else ""
                arrow = "better" if better else "not better"
                places = 2 if f"{before:.2f}" != f"{after:.2f}" else 4  # "5.84 → 5.84 (better)" read as a typo
                parts.append(f"Held-out MAE{n}: <b>{before:.{places}f} → {after:.{places}f}</b> ({arrow}).")
            else:
                parts.append("No held-out images, so no MAE before/after.")
            # Offered as the default only when it measurably counts better; one that is not is
            # removed unless the person keeps it, knowingly.
            self.default_check.setChecked(better)
        self._summary_base = " ".join(parts)
        if path is None:
            self._show_decision("")
        elif self.rejected:
            self._show_decision("It will be removed unless you keep it.")
        else:
            self._show_decision("Use it, or it is removed when the next run starts or the app closes.")
        self.eta_label.setText(f"took {fmt_duration(time.monotonic() - self._t0)}")
        self.phase_label.setText("")
        self._update_state()
        reveal(self.summary_label, self.use_button, self.keep_button)  # what came of it, and the choice
        self.runFinished.emit(status)

    def _failed_cleaned(self, _path) -> None:
        self._chore = None
        message = self.last_error or "unknown error"
        self.result = {"status": "failed", "message": message}
        self.progress.setFormat("failed")
        self.phase_label.setText("")
        self.summary_label.setText("<span style='color:#c0392b'>Fine-tuning failed (details in "
                                   "the dialog). Your model and annotations are unchanged.</span>")
        self._update_state()
        reveal(self.summary_label)
        self._error("Fine-tuning failed", message)
        self.runFinished.emit("failed")

    def new_model_path(self) -> Path | None:
        path = self.run.model_path if self.run is not None else None
        return path if path is not None and path.is_file() else None

    def _show_decision(self, note: str) -> None:
        """The run's summary and what becomes (or became) of its new model."""
        self.summary_label.setText(f"{self._summary_base} {note}".strip())

    def keep_new_model(self) -> bool:
        """Register a rejected new model after all (not used, not the default)."""
        if self.new_model_path() is None or self._chore is not None:
            return False
        self._in_thread("registering", lambda: self.run.register(make_default=False),
                        self._kept, self._register_failed)
        self._update_state()
        return True

    def _kept(self, entry) -> None:
        self._chore = None
        self.controller.registryChanged.emit()
        self._show_decision(f"Kept as <b>{html.escape(entry.name)}</b> (choose it in Model \u25b8 Models\u2026).")
        self._update_state()
        self.modelRegistered.emit(entry.name)

    def discard_new_model(self) -> bool:
        """Delete the new model's file now (nothing of it was registered)."""
        if self.run is None or self._chore is not None or not self.run.discard():
            return False
        self._show_decision("The new model was removed.")
        self._update_state()
        return True

    # -- the new model ---------------------------------------------------------------------
    def use_new_model(self) -> bool:
        """Register the new model (its file carries parent, data and MAE) in a worker thread,
        then switch to it; False when there is nothing to register."""
        if self.new_model_path() is None or self._chore is not None:
            return False
        make_default = self.default_check.isChecked()
        self.use_button.setEnabled(False)
        self._in_thread("registering", lambda: self.run.register(make_default),
                        self._registered, self._register_failed)
        return True

    def _registered(self, entry) -> None:
        self._chore = None
        self.controller.registryChanged.emit()
        self.controller.load(entry.name)
        self._show_decision(f"Now using <b>{html.escape(entry.name)}</b>.")
        self._update_state()
        self.modelRegistered.emit(entry.name)

    def _register_failed(self, exc: BaseException) -> None:
        self._chore = None
        self._update_state()
        self._error("Cannot register the new model", exc)

    # -- state -----------------------------------------------------------------------------
    def _update_state(self) -> None:
        running = self.is_running()
        c = self.controller
        if c.has_model():
            kind = c.current_kind() or ""  # "released" only for the verified released files
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
                    "points), mark them reviewed, then click Fine-tune."
                    + (f" ({html.escape(ts.describe().split('; ', 1)[-1])})"
                       if ts.not_reviewed or ts.missing or ts.broken else ""))
        self.data_label.setText(text)
        # Enabled with no reviewed image too: the set is read again when the button is clicked.
        can_start = c.current_weights_path() is not None and not c.is_busy()
        self.start_button.setEnabled(can_start and not running and self._chore is None)
        self.cancel_button.setEnabled(self.process.is_running() and not self.process.cancel_requested())
        for w in (self.steps_radio, self.minutes_radio, self.freeze_check, self.holdout_spin):
            w.setEnabled(not running)
        self.steps_spin.setEnabled(not running and self.steps_radio.isChecked())
        self.minutes_spin.setEnabled(not running and self.minutes_radio.isChecked())
        has_new = self.new_model_path() is not None and not running
        registered = has_new and self.controller.registry.get(self.run.name) is not None
        self.use_button.setEnabled(has_new and not registered and self._chore is None)
        self.use_button.setVisible(has_new)
        self.default_check.setVisible(has_new and not registered)
        undecided = has_new and not registered
        self.keep_button.setVisible(undecided and self.rejected)
        self.discard_button.setVisible(undecided)
        for b in (self.keep_button, self.discard_button):
            b.setEnabled(self._chore is None)
        self.minutes_spin.setToolTip("The whole run, from the click to the new model"
                                     + (f"; at least {self.minimum.describe()} for this model here"
                                        if self.minimum is not None else ""))
        if self.minimum is not None:
            self.minimum_label.setText(f"at least {self.minimum.minutes:g} min here")
        elif self._minimum_worker is not None:
            self.minimum_label.setText("measuring the minimum\u2026")
        else:
            self.minimum_label.setText("")

    def progress_text(self) -> str:
        """Where the run is, in words: "step 12 of 300" (or the time under a minutes budget)."""
        step = int((self._last_step or {}).get("step", 0))
        cfg = self.run.cfg if self.run is not None else None
        if cfg is not None and cfg.max_minutes is not None:
            return (f"step {step}, {fmt_duration(time.monotonic() - self._t0)} of "
                    f"{fmt_duration(cfg.max_minutes * 60)}")
        total = cfg.steps if cfg is not None else int(self.steps_spin.value())
        return f"step {step} of {total}"

    def shutdown(self, timeout_ms: int = QUIT_GRACE_MS) -> None:
        """Stop a run because the app quits: the trainer is asked to stop (stop file, SIGTERM)
        and killed after ``timeout_ms``, so quitting never waits for a whole step and its save.
        What it left (staging, a half-written save) is removed here, on the GUI thread: the app is
        closing, so there is no thread to hand this to."""
        self._quitting = True  # a run still being prepared does not start its trainer
        if self.process.is_running():
            # Signals blocked: the end is handled here, not by a finishing thread racing this one.
            self.process.blockSignals(True)
            self.process.cancel()
            if not self.process.wait(timeout_ms):
                self.process.kill()
                self.process.wait(5000)
            self.process.blockSignals(False)
            self._tick.stop()
            self._end = self.process.end_record()
        if self.run is not None and self.run.staging is not None and self._chore != "preparing":
            self.run.finish(self._end)
        if self.run is not None and self._chore is None:
            self.run.discard()  # a new model nobody chose to keep

    def _error(self, title: str, message) -> None:
        self.last_error = str(message)
        errors.show_error(self, message, what=title)
