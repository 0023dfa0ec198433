"""Small widgets of the main window: the large count display, the "no model yet" banner, a
scroll area for docks and a label that elides a long path."""
from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)


class _BigNumber(QFrame):
    def __init__(self, title: str, colour: str, parent=None):
        super().__init__(parent)
        self.setObjectName("bigNumber")
        self.title = QLabel(title)
        self.title.setStyleSheet("color:#9a9a9a; font-size:11px; text-transform:uppercase;")
        self.value = QLabel("\u2013")
        self.value.setStyleSheet(f"color:{colour}; font-size:30px; font-weight:600;")
        self.value.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.note = QLabel("")
        self.note.setStyleSheet("color:#9a9a9a; font-size:11px;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        lay.setSpacing(0)
        for w in (self.title, self.value, self.note):
            lay.addWidget(w)

    def set(self, text: str, note: str = "") -> None:
        self.value.setText(text)
        self.note.setText(note)


class CountPanel(QWidget):
    """Model count, annotated count, and both counts inside the region of interest."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = _BigNumber("Model count", "#f5a623")
        self.annotated = _BigNumber("Annotated", "#4fc3f7")
        self.roi = _BigNumber("In region of interest", "#00e5ff")
        grid = QGridLayout(self)
        grid.setContentsMargins(2, 2, 2, 2)
        grid.addWidget(self.model, 0, 0)
        grid.addWidget(self.annotated, 0, 1)
        grid.addWidget(self.roi, 1, 0, 1, 2)
        self.review = QLabel("")
        self.review.setToolTip("Review cells (128\u00d7128 px) a person confirmed in review mode (N or M)")
        self.review.setStyleSheet("color:#9ccc65;")
        grid.addWidget(self.review, 2, 0, 1, 2)
        self.review.hide()
        # Why an image whose status is "error" has no count: said here, where the count would be.
        self.problem = QLabel("")
        self.problem.setObjectName("countProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color:#e0605f;")
        self.problem.setTextInteractionFlags(Qt.TextSelectableByMouse)
        grid.addWidget(self.problem, 3, 0, 1, 2)
        self.problem.hide()
        # Where the annotated points come from: a data set's ground truth (which file) or the
        # person's own annotation; a long file name shortens in the middle, whole in the tooltip.
        self.source = ElidedLabel("")
        self.source.setObjectName("annotationSource")
        self.source.setStyleSheet("color:#4fc3f7; font-size:11px;")
        grid.addWidget(self.source, 4, 0, 1, 2)
        # What the review keys do, beside the progress they move (the window fills it in from its
        # actions, so it names the keys they really have).
        self.review_keys = QLabel("")
        self.review_keys.setObjectName("reviewKeys")
        self.review_keys.setWordWrap(True)
        self.review_keys.setStyleSheet("color:#9a9a9a; font-size:11px;")
        grid.addWidget(self.review_keys, 5, 0, 1, 2)
        self.review_keys.hide()
        self.set_counts(None, None)

    def set_counts(self, model: float | None, annotated: int | None, roi_model: float | None = None,
                   roi_annotated: int | None = None, state: str = "", reviewed: bool = False) -> None:
        self.model.set("\u2013" if model is None else f"{model:.1f}", state)
        self.annotated.set("\u2013" if annotated is None else str(annotated), "reviewed \u2713" if reviewed else "")
        has_roi = roi_model is not None or roi_annotated is not None
        self.roi.setVisible(has_roi)
        if has_roi:
            a = "\u2013" if roi_annotated is None else str(roi_annotated)
            m = "\u2013" if roi_model is None else f"{roi_model:.1f}"
            self.roi.set(a, f"annotated  \u00b7  model {m}")

    def set_source(self, text: str) -> None:
        """``text``: where the open image's points come from ("ground truth: 3_ann.mat")."""
        self.source.setText(f"Points: {text}" if text else "")

    def set_problem(self, text: str | None) -> None:
        """``text``: why this image is in error (None: it is not)."""
        self.problem.setText(f"Error: {text}" if text else "")
        self.problem.setVisible(bool(text))

    def set_review_progress(self, done: int, total: int) -> None:
        self.review.setText(f"cells reviewed {done} / {total}")
        self.review.setVisible(total > 0)
        self.review_keys.setVisible(total > 0 and bool(self.review_keys.text()))

    def set_review_keys(self, text: str) -> None:
        """Rich text: what the review keys do."""
        self.review_keys.setText(text)

    def texts(self) -> dict:
        """What is on screen, for tests."""
        return {"model": self.model.value.text(), "annotated": self.annotated.value.text(),
                "roi": self.roi.value.text() if self.roi.isVisible() or not self.roi.isHidden() else "",
                "roi_note": self.roi.note.text(), "review": self.review.text(),
                "model_note": self.model.note.text(), "problem": self.problem.text(),
                "source": self.source.full_text(), "review_keys": self.review_keys.text()}


# What to do without a model, said by the banner, the Models dialog and the Video and Fine-tune panels.
HOW_TO_GET_A_MODEL = ("Use Model \u25b8 Get the Released Model\u2026 to download SHHA (dense crowds) or "
                      "SHHB (sparse street scenes) from the SASNet authors, drag a checkpoint (.pth) "
                      "onto the window, or add one with Add file in Model \u25b8 Models.")


class NoModelBanner(QFrame):
    """Says plainly that no model is loaded and how to get one; the app still opens and annotates."""

    openModels = Signal()
    getReleased = Signal()

    def __init__(self, how_to: str, parent=None):
        super().__init__(parent)
        self.setObjectName("noModelBanner")
        self.setStyleSheet("#noModelBanner { background:#3a3220; border-bottom:1px solid #6b5a2a; }"
                           "QLabel { color:#f0e0b0; }")
        # Short enough for a few lines beside the buttons in a 1280 x 800 window (the canvas
        # keeps its height); every way to get a model (``how_to``) is in the tooltips.
        self.label = QLabel("<b>No model loaded.</b> You can open and annotate images; to count, "
                            "get the released model or add a checkpoint (.pth) in Models.")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.label.setToolTip(how_to)
        self.get_button = QPushButton("Get the Released Model\u2026")
        self.get_button.setToolTip("Download SHHA (dense crowds) or SHHB (sparse street scenes) "
                                   "from the SASNet authors")
        self.get_button.clicked.connect(self.getReleased)
        button = QPushButton("Models\u2026")
        button.setToolTip("Add a checkpoint (.pth) with Add file, or drag one onto the window")
        button.clicked.connect(self.openModels)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.get_button, 0, Qt.AlignVCenter)
        lay.addWidget(button, 0, Qt.AlignVCenter)


class FitScrollArea(QScrollArea):
    """Shows its widget at the size of the visible area and scrolls (up and down only) when that
    is below the widget's minimum height, so a dock holding it never makes the window outgrow the
    screen. The widget always gets the visible width: sideways scrolling would hide the start of
    every row, so the widget must be built to fit a narrow dock instead.
    (``setWidgetResizable`` would size a widget with word-wrapped labels by its preferred height.)"""

    def __init__(self, widget: QWidget, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.NoFrame)
        self.setWidgetResizable(False)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setWidget(widget)

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt name
        super().resizeEvent(ev)
        self.fit_widget()

    def minimumSizeHint(self):  # noqa: N802 - Qt name
        # Never narrower than the widget can be laid out (its labels and fields would be cut
        # off), with room for the scroll bar; any height: that is what scrolls.
        hint = super().minimumSizeHint()
        w = self.widget()
        if w is not None:
            need = w.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
            hint.setWidth(max(hint.width(), need))
        return hint

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 - Qt name
        # A label that got longer text may need more height: refit when the widget asks.
        if obj is self.widget() and ev.type() == QEvent.LayoutRequest:
            self.fit_widget()
            self.updateGeometry()  # its least width may have changed too
        return super().eventFilter(obj, ev)

    def setWidget(self, widget: QWidget) -> None:  # noqa: N802 - Qt name
        super().setWidget(widget)
        widget.installEventFilter(self)

    def fit_widget(self, again: bool = False) -> None:
        w = self.widget()
        if w is None:
            return
        room = self.viewport().size()
        least = w.minimumSizeHint().height()
        lay = w.layout()
        if lay is not None and lay.hasHeightForWidth():
            # Word-wrapped labels need more lines in a narrow dock: the least height at this width.
            least = max(least, lay.minimumHeightForWidth(room.width()))
        w.resize(room.width(), max(room.height(), least))
        if self.viewport().width() != room.width() and not again:  # the vertical scroll bar came or went
            self.fit_widget(again=True)


def reveal(*widgets: QWidget) -> None:
    """Scroll the scroll area holding ``widgets`` so that they show, the first one kept in view
    when not all fit: a result that arrives below the fold of a short dock is otherwise unseen."""
    area = widgets[0].parentWidget()
    while area is not None and not isinstance(area, QScrollArea):
        area = area.parentWidget()
    if area is None or area.widget() is None:
        return
    if area.widget().layout() is not None:
        area.widget().layout().activate()  # the new text's height, before measuring where it is
    if isinstance(area, FitScrollArea):
        area.fit_widget()
    for w in reversed(widgets):
        if w.isVisibleTo(area):  # a hidden button has no place to scroll to
            area.ensureWidgetVisible(w, 0, 8)


class ElidedLabel(QLabel):
    """One line of plain text (a path) that shortens itself with "…" in the middle (or where
    ``elide`` says) to the room it has, rather than widening its row; the whole text is in the
    tooltip and can be copied."""

    def __init__(self, text: str = "", parent=None, elide: Qt.TextElideMode = Qt.ElideMiddle):
        super().__init__(parent)
        self._full = ""
        self._mode = elide
        self.setMinimumWidth(40)
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt name
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt name
        super().resizeEvent(ev)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, self._mode, max(self.width(), self.minimumWidth()))
        if shown != super().text():
            super().setText(shown)


def bullet_list(sentences) -> str:
    """Plain-text lines for a message box: each lower-case phrase (as the core words them, to be
    joined into other messages too) as a bulleted sentence."""
    return "\n".join(f"\u2022 {t[0].upper()}{t[1:]}." for t in sentences)


def icon(name: str):
    """An icon from resources/ (installed as the package ``sasnet_gui.resources``)."""
    from importlib.resources import files

    from PySide6.QtGui import QIcon

    res = files("sasnet_gui.resources").joinpath(f"{name}.svg")
    return QIcon(str(res)) if res.is_file() else QIcon()


def themed_plot_init(plot, parent, left: str, bottom: str, bottom_units: str | None = None,
                     min_height: int = 120) -> None:
    """Set up a ``pg.PlotWidget`` subclass in the app's colours (the app may run light or dark)."""
    import pyqtgraph as pg
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    pal = QApplication.palette()
    pg.PlotWidget.__init__(plot, parent, background=pal.color(QPalette.ColorRole.Base))
    fg = pal.color(QPalette.ColorRole.Text)
    item = plot.getPlotItem()
    for axis in ("left", "bottom"):
        item.getAxis(axis).setPen(fg)
        item.getAxis(axis).setTextPen(fg)
    plot.setMinimumHeight(min_height)
    item.showGrid(x=True, y=True, alpha=0.3)
    item.setLabel("left", left)
    item.setLabel("bottom", bottom, units=bottom_units)
    item.setMenuEnabled(False)
