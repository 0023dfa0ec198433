"""The video panel: scrub and play a video, count every Nth frame, store a frame for annotation.

    clip.mp4 — 640×480, 40 frames, …                                            [Open…]
    [frame view (pyqtgraph ImageItem, model heads of a stored frame on top)          ]
    [> play] [==========slider==========] frame 12 / 240 · 0:01.20 · count 34.5
    [every 5 frames] [Count] [Cancel]
    [progress                                                         ] [Export CSV…]
    [count over time (click to seek)                                                  ]
    [Annotate this frame]  into …/<video>_frames (elided)                     [folder]

Decoding runs in ``FrameReader``'s thread, counting in a superqt generator worker (cancel takes
effect between batches), storing a frame in a function worker: the GUI thread only draws.
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QStyle,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from sasnet_core.annotations.annotation import load_annotation
from sasnet_core.annotations.display import marker_size_for
from sasnet_core.engine.choice import default_batch_size
from sasnet_core.engine.counting import CountResult
from sasnet_core.io.imageio import VIDEO_SUFFIXES
from sasnet_core.io.video import VideoInfo, open_video
from sasnet_core.io.video_frames import default_frames_folder, write_counts_csv
from sasnet_core.util.cancel import CancelToken
from sasnet_core.util.errors import SASNetError
from sasnet_gui import errors
from sasnet_gui.video.counting import count_video, store_frame
from sasnet_gui.video.frames import FrameReader
from sasnet_gui.widgets import HOW_TO_GET_A_MODEL, ElidedLabel, themed_plot_init


def _fmt_time(seconds: float) -> str:
    m, s = divmod(max(seconds, 0.0), 60)
    return f"{int(m)}:{s:05.2f}"


def _breakable_path(path) -> str:
    """A path as rich text that may wrap after each folder: unbroken, a long path would be cut off
    at the dock's edge."""
    return html.escape(str(path)).replace("/", "/\u200b").replace("\\", "\\\u200b")


def _breakable_name(name: str) -> str:
    """A file name as rich text that may wrap after "_", "-" and ".": a narrow dock cannot show a
    long name on one line."""
    out = html.escape(name)
    for c in "_-.":
        out = out.replace(c, c + "\u200b")
    return out


NOT_COUNTED = "not counted yet"
HEAD_COLOUR = "#00e5ff"
HEAD_MARKER_PX = 7  # on screen, for one head (no spacing to scale by)
NOT_COUNTED_PLOT = "Press Count to plot the count over time"


def _nice_step(rough: float) -> float:
    """The smallest of 1, 2, 5 x 10^k that is at least ``rough``."""
    power = 10.0 ** np.floor(np.log10(rough))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= rough))


class CountPlot(pg.PlotWidget):
    """Count over time; a click anywhere in the plot area asks to seek to that time."""

    timeClicked = Signal(float)

    def __init__(self, parent=None):
        themed_plot_init(self, parent, "count", "time", bottom_units="s", min_height=90)
        item = self.getPlotItem()
        self.curve = self.plot([], [], pen=pg.mkPen("#3a9ad9", width=2), symbol="o", symbolSize=4,
                               symbolBrush="#3a9ad9", symbolPen=None, connect="finite")
        self.skipped = pg.ScatterPlotItem(symbol="x", size=9, pen=pg.mkPen("#c0392b", width=2),
                                          brush=None)
        item.addItem(self.skipped)
        self.cursor = pg.InfiniteLine(pos=0, angle=90, movable=False, pen=pg.mkPen("#e67e22", width=1))
        item.addItem(self.cursor)
        # Before counting, the plot says what it will show instead of an empty grid.
        self.empty_text = pg.TextItem(NOT_COUNTED_PLOT, anchor=(0.5, 0.5), color="#8a8a8a")
        item.addItem(self.empty_text, ignoreBounds=True)
        self.scene().sigMouseClicked.connect(self._clicked)

    def set_records(self, records: list[CountResult], x_of, span: float = 1.0) -> None:
        """Show ``records``; the time axis always spans the whole video (0 to ``span``)."""
        ok = [r for r in records if r.count is not None]
        bad = [r for r in records if r.count is None]
        self.curve.setData([x_of(r) for r in records],
                           [np.nan if r.count is None else r.count for r in records])
        self.skipped.setData([x_of(r) for r in bad], [0.0] * len(bad))
        # Counts from zero: an auto-ranged axis would blow a drift of 0.01 people up to a trend.
        top = max((r.count for r in ok), default=1.0)
        vb = self.getPlotItem().vb
        vb.setYRange(0.0, max(top * 1.1, 1.0), padding=0)
        # About three labelled ticks: the plot is short, and pyqtgraph's own choice overlaps them.
        step = _nice_step(max(top * 1.1, 1.0) / 3)
        self.getPlotItem().getAxis("left").setTickSpacing(step, step / 2)
        vb.setXRange(0.0, max(span, 1e-3), padding=0.02)
        self.empty_text.setVisible(not records)
        self.empty_text.setPos(max(span, 1e-3) / 2, 0.5)

    def _clicked(self, ev) -> None:
        vb = self.getPlotItem().vb
        if ev.button() == Qt.MouseButton.LeftButton and vb.sceneBoundingRect().contains(ev.scenePos()):
            self.timeClicked.emit(float(vb.mapSceneToView(ev.scenePos()).x()))


class VideoPanel(QWidget):
    frameStored = Signal(str)  # the stored frame's image path
    frameShown = Signal(int)  # index of the frame now on screen
    countProgress = Signal(int, int)  # frames counted, frames to count
    countFinished = Signal(str)  # "completed", "cancelled" or "failed"
    videoOpened = Signal(str)

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.info: VideoInfo | None = None
        self._reader: FrameReader | None = None
        self._records: dict[int, CountResult] = {}
        self._shown: tuple[int, np.ndarray] | None = None  # (index, rgb) on screen
        self._wanted = 0  # frame the slider asks for
        self._in_flight = False
        self._count_worker = None
        self._store_worker = None
        self._folder: Path | None = None
        self._overlay_index: int | None = None
        self._need_fit = True
        self.last_error: str | None = None
        self._build()
        self._redraw_plot()  # the empty plot's axes span 0 to 1, its hint in the middle
        controller.predictorChanged.connect(lambda _p: self._update_enabled())
        controller.busyChanged.connect(lambda _b: self._update_enabled())
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)  # stop the decoder thread and the count
        self._update_enabled()

    # -- layout ----------------------------------------------------------------------------
    def _build(self) -> None:
        # The dock under the canvas can be narrow (a 1024-pixel window leaves it ~400 px): every row
        # fits that width, long texts wrap or elide, and the dock never scrolls sideways.
        top = self._build_title_row()
        self._build_view()
        scrub = self._build_scrub_row()
        # Two rows: what to count and the buttons, then how far it got and the result's export.
        counting, progress_row = self._build_count_rows()
        self.model_hint = QLabel()
        self.model_hint.setWordWrap(True)
        self.model_hint.setStyleSheet("color: #8a6d3b")
        self.plot = CountPlot()
        self.plot.timeClicked.connect(self._seek_time)
        store = self._build_store_row()

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.view, 3)
        layout.addLayout(scrub)
        layout.addLayout(counting)
        layout.addLayout(progress_row)
        layout.addWidget(self.model_hint)
        layout.addWidget(self.plot, 1)
        layout.addLayout(store)
        layout.addWidget(self.status)

    def _build_title_row(self) -> QHBoxLayout:
        """The open video's name and facts, and the Open button."""
        style = self.style()
        self.title = QLabel("No video open.")
        self.title.setWordWrap(True)
        self.open_button = QPushButton("Open…")
        self.open_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton))
        self.open_button.setToolTip("Open a video…")
        self.open_button.clicked.connect(self._choose_video)
        row = QHBoxLayout()
        row.addWidget(self.title, 1)
        row.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignTop)
        return row

    def _build_view(self) -> None:
        """The frame on screen, with the model's heads on it."""
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("#202020")
        self.viewbox = self.view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image)
        self.heads = pg.ScatterPlotItem(size=HEAD_MARKER_PX, pen=pg.mkPen(HEAD_COLOUR, width=1.5), brush=None)
        self.viewbox.addItem(self.heads)
        self.view.setMinimumHeight(120)  # small enough that the dock fits under the canvas

    def _build_scrub_row(self) -> QHBoxLayout:
        """Play, the position slider and where it stands; the timer that plays."""
        style = self.style()
        self.play_button = QPushButton()
        self.play_button.setCheckable(True)
        self.play_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.toggled.connect(self._play_toggled)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimumWidth(60)
        self.slider.valueChanged.connect(self.seek)
        self.position_label = QLabel("–")
        row = QHBoxLayout()
        row.addWidget(self.play_button)
        row.addWidget(self.slider, 1)
        row.addWidget(self.position_label)
        self._play_timer = QTimer(self)
        self._play_timer.timeout.connect(self._next_frame)
        return row

    def _build_count_rows(self) -> tuple[QHBoxLayout, QHBoxLayout]:
        """(what to count and its buttons, how far it got and the export of the counts)."""
        self.every_spin = QSpinBox()
        self.every_spin.setRange(1, 10000)
        self.every_spin.setValue(10)
        self.every_spin.setPrefix("every ")
        self.every_spin.setSuffix(" frames")
        self.every_spin.setToolTip("Count every Nth frame (1 = all frames)")
        self.count_button = QPushButton("Count")
        self.count_button.clicked.connect(lambda: self.count_frames())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_count)
        self.progress = QProgressBar()
        self.progress.setFormat(NOT_COUNTED)
        self.progress.setMinimumWidth(self.progress.fontMetrics().horizontalAdvance(NOT_COUNTED) + 24)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Write the counts (frame, time, count) to a CSV file")
        self.export_button.clicked.connect(self._choose_csv)
        counting = QHBoxLayout()
        for w in (self.every_spin, self.count_button, self.cancel_button):
            counting.addWidget(w)
        counting.addStretch(1)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.export_button)
        return counting, progress_row

    def _build_store_row(self) -> QHBoxLayout:
        """Annotate this frame into a folder; the status line of the last store."""
        style = self.style()
        self.annotate_button = QPushButton("Annotate this frame")
        self.annotate_button.setToolTip("Store this frame as an image with the model's heads as "
                                        "points to correct; reviewed frames train the model")
        self.annotate_button.clicked.connect(lambda: self.annotate_current_frame())
        self.folder_label = ElidedLabel()
        self.folder_button = QPushButton()
        self.folder_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon))
        self.folder_button.setToolTip("Choose the folder for annotated frames…")
        self.folder_button.clicked.connect(self._choose_folder)
        self.status = QLabel()
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.annotate_button)
        row.addWidget(QLabel("into"))
        row.addWidget(self.folder_label, 1)
        row.addWidget(self.folder_button)
        return row

    # -- opening ---------------------------------------------------------------------------
    def _choose_video(self) -> None:
        patterns = " ".join(f"*{s}" for s in VIDEO_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", "",
                                              f"Videos ({patterns});;All files (*)")
        if path:
            self.open_video(path)

    def open_video(self, path: str | Path) -> bool:
        """Open ``path``; shows an error dialog and returns False when it cannot be read."""
        try:
            info = open_video(path)
        except SASNetError as exc:
            self._error("Cannot open video", str(exc))
            return False
        self.close_video()
        self.info = info
        self._reader = FrameReader(info.path, self)
        self._reader.frameReady.connect(self._frame_ready)
        self._reader.frameFailed.connect(self._frame_failed)
        self._folder = None
        self._need_fit = True
        self.title.setText(f"<b>{_breakable_name(info.path.name)}</b> — {info.width}×{info.height}, "
                           f"{info.frame_count} frames, {info.fps:.2f} fps, {_fmt_time(info.duration_s)}")
        self.title.setToolTip(str(info.path))
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(info.frame_count - 1, 0))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.every_spin.setValue(max(1, round(info.fps)) if info.fps > 0 else 10)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat(NOT_COUNTED)
        self._show_folder()
        self._redraw_plot()
        self.seek(0)
        self._update_enabled()
        self.videoOpened.emit(str(info.path))
        return True

    def close_video(self) -> None:
        if self._count_worker is not None:
            self._stop_count_worker()
            self._count_worker = None
            self.countFinished.emit("cancelled")
        self.play_button.setChecked(False)
        if self._reader is not None:
            self._reader.close()
            self._reader.deleteLater()
            self._reader = None
        self.info, self._shown, self._records = None, None, {}
        self._in_flight = False
        self.image.clear()
        self.heads.setData([], [])

    def shutdown(self, timeout_s: float = 1.0) -> None:
        """Stop threads (call before the app quits). A stopped count ends within a second; it is
        waited for, so its last signals never reach objects the quitting app has deleted."""
        counting = self._count_worker is not None
        self.close_video()
        if counting:
            QThreadPool.globalInstance().waitForDone(int(timeout_s * 1000))

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        self.shutdown()
        super().closeEvent(event)

    # -- frames ----------------------------------------------------------------------------
    def current_index(self) -> int:
        return self.slider.value()

    def shown_index(self) -> int | None:
        return self._shown[0] if self._shown else None

    def current_frame(self) -> np.ndarray | None:
        return self._shown[1] if self._shown else None

    def seek(self, index: int) -> None:
        if self.info is None or self._reader is None:
            return
        index = int(np.clip(index, 0, max(self.info.frame_count - 1, 0)))
        if self.slider.value() != index:
            self.slider.setValue(index)  # calls seek again through valueChanged
            return
        self._wanted = index
        self._in_flight = True
        self._reader.request(index)
        self._update_position()

    def _frame_ready(self, index: int, rgb: np.ndarray) -> None:
        if self.info is None:
            return
        self._in_flight = index != self._wanted  # an older request: the newest is on its way
        self._shown = (index, rgb)
        self.image.setImage(rgb, autoLevels=False, levels=(0, 255))
        if self._need_fit:
            self.viewbox.autoRange(padding=0)
            self._need_fit = False
        if self._overlay_index != index:
            self.heads.setData([], [])
            self._overlay_index = None
        self._update_position()
        self.frameShown.emit(index)

    def _frame_failed(self, index: int, message: str) -> None:
        self._in_flight = False
        self.status.setText(html.escape(message))
        if self.play_button.isChecked():
            self.play_button.setChecked(False)

    def _update_position(self) -> None:
        if self.info is None:
            self.position_label.setText("–")
            return
        i = self.slider.value()
        t = i / self.info.fps if self.info.fps > 0 else 0.0
        text = f"frame {i} / {self.info.frame_count - 1} · {_fmt_time(t)}"
        rec = self._records.get(i)
        if rec is not None:
            text += f" · count {rec.count:.1f}" if rec.count is not None else " · skipped"
        self.position_label.setText(text)
        self.plot.cursor.setPos(self._x(i))

    # -- playback --------------------------------------------------------------------------
    def _play_toggled(self, playing: bool) -> None:
        icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
        if playing and self.info is not None:
            if self.slider.value() >= self.info.frame_count - 1:
                self.seek(0)
            fps = self.info.fps if self.info.fps > 0 else 25.0
            self._play_timer.start(int(max(1000 / min(fps, 60.0), 16)))
        else:
            self._play_timer.stop()

    def is_playing(self) -> bool:
        return self._play_timer.isActive()

    def _next_frame(self) -> None:
        if self.info is None or self._in_flight:
            return  # decoding is slower than the frame rate: skip a tick rather than queue
        nxt = self.slider.value() + 1
        if nxt >= self.info.frame_count:
            self.play_button.setChecked(False)
            return
        self.seek(nxt)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt name
        if event.key() == Qt.Key.Key_Space:
            self.play_button.toggle()
        elif event.key() in (Qt.Key.Key_Right, Qt.Key.Key_Left):
            self.seek(self.slider.value() + (1 if event.key() == Qt.Key.Key_Right else -1))
        else:
            super().keyPressEvent(event)

    # -- counting --------------------------------------------------------------------------
    def is_counting(self) -> bool:
        return self._count_worker is not None

    def count_frames(self, every_n: int | None = None) -> bool:
        """Count every Nth frame in the background; False when it cannot start."""
        predictor = self.controller.predictor()
        if self.info is None or predictor is None or self.is_counting():
            return False
        if every_n is not None:
            self.every_spin.setValue(every_n)
        n = self.every_spin.value()
        self._records = {}
        self._redraw_plot()
        batch = default_batch_size(predictor.device)  # the CLI's default: 1 on the CPU, frame by frame
        token = CancelToken()  # a stop takes effect inside a frame, not only between batches
        worker = create_worker(count_video, predictor, self.info.path, n, batch, cancel=token,
                               _start_thread=False, _ignore_errors=True)
        worker.cancel_token = token
        # Every handler checks the worker is still ours: a closed video's late results are dropped.
        worker.yielded.connect(lambda item: self._counted(worker, item))
        worker.returned.connect(lambda _r: self._count_done(worker, "completed"))
        worker.aborted.connect(lambda: self._count_done(worker, "cancelled"))
        worker.errored.connect(lambda exc: self._count_failed(worker, exc))
        self._count_worker = worker
        self.status.setText(f"Counting every {n}th frame with {self.controller.current_name()}…")
        self._update_enabled()
        worker.start()
        return True

    def cancel_count(self) -> None:
        if self._count_worker is not None:
            self._stop_count_worker()
            self.cancel_button.setEnabled(False)
            self.status.setText("Stopping…")

    def _stop_count_worker(self) -> None:
        self._count_worker.cancel_token.cancel()
        self._count_worker.quit()

    def _counted(self, worker, item) -> None:
        if worker is not self._count_worker:
            return
        done, total, records = item
        for r in records:
            self._records[r.frame] = r
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat("%v / %m frames")
        if records:
            self._redraw_plot()
            self._update_position()
        self.countProgress.emit(done, total)

    def _count_done(self, worker, status: str) -> None:
        if worker is not self._count_worker:
            return
        self._count_worker = None
        ok = [r.count for r in self._records.values() if r.count is not None]
        skipped = len(self._records) - len(ok)
        summary = f"{status.capitalize()}: {len(self._records)} frames"
        if ok:
            summary += f", count {min(ok):.1f} to {max(ok):.1f} (mean {np.mean(ok):.1f})"
        if skipped:
            summary += f", {skipped} skipped (unreadable)"
        self.status.setText(summary + ".")
        self._update_enabled()
        self.countFinished.emit(status)

    def _count_failed(self, worker, exc: BaseException) -> None:
        if worker is not self._count_worker:
            return
        self._count_worker = None
        self._update_enabled()
        self._error("Counting failed", str(exc))
        self.countFinished.emit("failed")

    def counts(self) -> list[CountResult]:
        return [self._records[i] for i in sorted(self._records)]

    def _x(self, index_or_record) -> float:
        index = index_or_record.frame if isinstance(index_or_record, CountResult) else index_or_record
        if self.info is not None and self.info.fps > 0:
            return index / self.info.fps
        return float(index)

    def _redraw_plot(self) -> None:
        span = self._x(max(self.info.frame_count - 1, 1)) if self.info is not None else 1.0
        self.plot.set_records(self.counts(), self._x, span=span)
        self.plot.getPlotItem().setLabel("bottom", "time" if self.info and self.info.fps > 0 else "frame",
                                         units="s" if self.info and self.info.fps > 0 else None)

    def _seek_time(self, x: float) -> None:
        if self.info is None:
            return
        if self._records:  # the nearest counted frame: that is what the person clicked on
            index = min(self._records, key=lambda i: abs(self._x(i) - x))
        else:
            index = round(x * self.info.fps) if self.info.fps > 0 else round(x)
        self.seek(index)

    # -- CSV -------------------------------------------------------------------------------
    def _choose_csv(self) -> None:
        if not self._records or self.info is None:
            return
        start = str(self.info.path.with_name(self.info.path.stem + "_counts.csv"))
        path, _ = QFileDialog.getSaveFileName(self, "Export counts", start, "CSV (*.csv)")
        if path:
            self.export_counts_csv(path)

    def export_counts_csv(self, path: str | Path) -> Path | None:
        """Columns frame, time_s, count, error (count empty and error set for skipped frames)."""
        try:
            out = write_counts_csv(path, self.counts())
        except OSError as exc:
            self._error("Cannot export counts", f"{path}: {exc.strerror or exc}")
            return None
        self.status.setText(f"Counts written to {_breakable_path(out)}.")
        return out

    # -- storing a frame -------------------------------------------------------------------
    def project_folder(self) -> Path | None:
        if self._folder is not None:
            return self._folder
        return default_frames_folder(self.info.path) if self.info else None

    def set_project_folder(self, folder: str | Path | None) -> None:
        self._folder = Path(folder) if folder else None
        self._show_folder()

    def _show_folder(self) -> None:
        folder = self.project_folder()
        self.folder_label.setText(str(folder) if folder else "–")

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for annotated frames",
                                                  str(self.project_folder() or ""))
        if folder:
            self.set_project_folder(folder)

    def annotate_current_frame(self) -> bool:
        """Store the frame on screen (PNG + annotation with the model's heads); emits frameStored."""
        if self.info is None or self._shown is None or self._store_worker is not None:
            return False
        index, rgb = self._shown
        t = index / self.info.fps if self.info.fps > 0 else 0.0
        worker = create_worker(store_frame, rgb, self.info.path, index, t, self.project_folder(),
                               self.controller.predictor(), self.controller.current_name(),
                               _start_thread=False, _ignore_errors=True)
        # Ready for the next frame as soon as this one has an answer (``finished`` comes later).
        worker.returned.connect(lambda stored: (self._store_finished(), self._stored(index, stored)))
        worker.errored.connect(lambda exc: (self._store_finished(),
                                            self._error("Cannot store the frame", str(exc))))
        self._store_worker = worker
        finding = " and finding heads…" if self.controller.has_model() else "…"
        self.status.setText(f"Storing frame {index}{finding}")
        self._update_enabled()
        worker.start()
        return True

    def _store_finished(self) -> None:
        self._store_worker = None
        self._update_enabled()

    def _stored(self, index: int, stored) -> None:
        if stored.created:
            self.status.setText(f"Stored frame {index} with {stored.points} model points: "
                                f"{_breakable_path(stored.image)}")
        else:
            self.status.setText(f"Frame {index} was stored before; its annotation is kept as it is: "
                                f"{_breakable_path(stored.image)}")
        if self._shown and self._shown[0] == index:
            self._show_heads(stored.annotation)
            self._overlay_index = index
        self.frameStored.emit(str(stored.image))

    def _show_heads(self, annotation_file) -> None:
        """The stored frame's points over the preview (the kept ones when it was stored before).

        Sized in image pixels by the heads' spacing (``display.marker_size_for``), so they shrink
        with the preview: at a fixed screen size, the thousands of heads of a dense frame on a
        small preview merged into one block. One head keeps a fixed screen size."""
        try:
            pts = load_annotation(annotation_file).points
        except SASNetError as exc:  # the kept annotation is damaged: the canvas says so when opened
            self.status.setText(html.escape(str(exc)))
            pts = np.zeros((0, 2))
        size = marker_size_for(pts)
        if size is None:
            self.heads.setPxMode(True)
            self.heads.setPen(pg.mkPen(HEAD_COLOUR, width=1.5))
            size = HEAD_MARKER_PX
        else:
            self.heads.setPxMode(False)
            # The ring scales with the marker (a screen-pixel pen would fill a small one).
            self.heads.setPen(pg.mkPen(HEAD_COLOUR, width=size / 5, cosmetic=False))
        # annotation points and ImageItem share one frame: pixel (0, 0) spans [0, 1]
        self.heads.setData(pts[:, 0], pts[:, 1], size=size)

    # -- state -----------------------------------------------------------------------------
    def _update_enabled(self) -> None:
        has_video = self.info is not None
        has_model = self.controller.predictor() is not None
        counting = self.is_counting()
        for w in (self.play_button, self.slider, self.folder_button):
            w.setEnabled(has_video)
        self.count_button.setEnabled(has_video and has_model and not counting)
        self.every_spin.setEnabled(has_video and not counting)
        self.cancel_button.setEnabled(counting)
        self.export_button.setEnabled(bool(self._records) and not counting)
        self.annotate_button.setEnabled(has_video and self._store_worker is None)
        if has_model:
            self.model_hint.hide()
        else:
            busy = getattr(self.controller, "is_busy", lambda: False)()
            self.model_hint.setText("Loading the model…" if busy else
                                    "No model loaded: counting needs one (frames can still be "
                                    "stored and annotated by hand). " + HOW_TO_GET_A_MODEL)
            self.model_hint.show()

    def _error(self, title: str, message: str) -> None:
        self.last_error = message
        self.status.setText(f"<span style='color:#c0392b'>{html.escape(message)}</span>")
        errors.show_error(self, message, what=title)
