"""How the image and its head markers look on screen: marker shape and size, and brightness,
contrast and gamma. Display only: the image counted and saved and the annotation never change.

``AppearanceControls`` is the side-panel group; ``AppearanceActions`` are the same settings as
View-menu actions (so they have shortcuts and appear in the shortcut sheet). Both drive the
canvas through ``set_marker_style`` and ``set_display_lut``.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from sasnet_core.annotations.display import GAMMA_RANGE, display_lut, is_identity
from sasnet_gui.canvas.markers import (
    SHAPE_NAMES,
    SHAPES,
    SIZE_RANGE,
    UNIT_NAMES,
    UNITS,
    MarkerStyle,
)

SIZE_STEP = 1.25  # Larger / Smaller Markers multiply the size by this


def gamma_of(slider_value: int) -> float:
    """The gamma slider runs -100..100 on a log scale: 0 is 1.0, the ends are 0.2 and 5."""
    lo, hi = GAMMA_RANGE
    return float(min(max(hi ** (slider_value / 100.0), lo), hi))


class AppearanceControls(QWidget):
    changed = Signal()

    def __init__(self, canvas, parent=None):
        super().__init__(parent)
        self.canvas = canvas
        self._style = MarkerStyle()

        self.shape = QComboBox()
        for s in SHAPES:
            self.shape.addItem(SHAPE_NAMES[s], s)
        self.unit = QComboBox()
        for u in UNITS:
            self.unit.addItem(UNIT_NAMES[u], u)
        self.unit.setToolTip("Automatic: from the spacing of the heads, in image pixels; or a fixed size in image "
                             "pixels (markers grow with the zoom) or in screen pixels (they do not)")
        self.size = QDoubleSpinBox(decimals=1, singleStep=1.0)
        self.size.setRange(*SIZE_RANGE)
        self.size.setToolTip("Marker diameter in the unit chosen beside it")
        self.size_row = QWidget()
        row = QHBoxLayout(self.size_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.unit, 1)
        row.addWidget(self.size)

        self.brightness = self._slider()
        self.contrast = self._slider()
        self.gamma = self._slider()
        self.brightness_value, self.contrast_value, self.gamma_value = QLabel(), QLabel(), QLabel()
        self.reset = QPushButton("Reset")
        self.reset.setToolTip("Show the image as it is (brightness 0, contrast 0, gamma 1.0)")

        markers = QGroupBox("Head markers")
        form = QFormLayout(markers)
        form.addRow("Style", self.shape)
        form.addRow("Size", self.size_row)
        image = QGroupBox("Image display (the screen only)")
        image.setToolTip("Changes how the image is shown; the image counted and saved stays as it is")
        grid = QFormLayout(image)
        for name, slider, value in (("Brightness", self.brightness, self.brightness_value),
                                    ("Contrast", self.contrast, self.contrast_value),
                                    ("Gamma", self.gamma, self.gamma_value)):
            line = QHBoxLayout()
            line.addWidget(slider, 1)
            value.setMinimumWidth(value.fontMetrics().horizontalAdvance("-100") + 4)
            value.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
            line.addWidget(value)
            grid.addRow(name, line)
        grid.addRow("", self.reset)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(markers)
        lay.addWidget(image)

        self.shape.currentIndexChanged.connect(lambda _i: self._marker_from_widgets())
        self.unit.currentIndexChanged.connect(self._unit_chosen)
        self.size.valueChanged.connect(lambda _v: self._marker_from_widgets())
        for s in (self.brightness, self.contrast, self.gamma):
            s.valueChanged.connect(self._apply_display)
        self.reset.clicked.connect(self.reset_display)
        self.set_marker_style(self._style)
        self._apply_display()

    @staticmethod
    def _slider() -> QSlider:
        s = QSlider(Qt.Horizontal)
        s.setRange(-100, 100)
        s.setValue(0)
        s.setSingleStep(5)  # arrow keys: PageUp / PageDown are the window's previous / next image
        s.setPageStep(10)
        return s

    # -- markers ----------------------------------------------------------------------------------
    def marker_style(self) -> MarkerStyle:
        return self._style

    def set_marker_style(self, style: MarkerStyle) -> None:
        self._style = style
        for w in (self.shape, self.unit, self.size):
            w.blockSignals(True)
        self.shape.setCurrentIndex(SHAPES.index(style.shape))
        self.unit.setCurrentIndex(UNITS.index(style.unit))
        self.size.setValue(self._shown_size(style))
        self.size.setEnabled(style.unit != "auto")
        for w in (self.shape, self.unit, self.size):
            w.blockSignals(False)
        self.canvas.set_marker_style(style)
        self.changed.emit()

    def _shown_size(self, style: MarkerStyle) -> float:
        """The spin box shows what is drawn: for the automatic size, its size in image pixels."""
        if style.unit != "auto":
            return style.size
        auto = self.canvas.points_item.auto_image_px
        return auto if auto is not None else style.size

    def _marker_from_widgets(self) -> None:
        self.set_marker_style(MarkerStyle(self.shape.currentData(), self.unit.currentData(), self.size.value()))

    def _unit_chosen(self, _index: int) -> None:
        """A fixed unit starts from the size drawn now, so choosing it does not make markers jump."""
        unit = self.unit.currentData()
        if unit == self._style.unit:
            return
        self.set_marker_style(self._style.with_(unit=unit, size=self._size_now_in(unit)))

    def _size_now_in(self, unit: str) -> float:
        scale = self.canvas.zoom_scale() or 1.0
        d = self.canvas.points_item.screen_diameter(scale)
        size = d if unit == "screen" else d / scale
        lo, hi = SIZE_RANGE
        return round(min(max(size, lo), hi), 1)

    def set_shape(self, shape: str) -> None:
        self.set_marker_style(self._style.with_(shape=shape))

    def set_auto_size(self) -> None:
        self.set_marker_style(self._style.with_(unit="auto"))

    def scale_size(self, factor: float) -> None:
        """Larger / Smaller: from the automatic size, the drawn size becomes a fixed image size."""
        unit = "image" if self._style.unit == "auto" else self._style.unit
        size = self._size_now_in(unit) if self._style.unit == "auto" else self._style.size
        lo, hi = SIZE_RANGE
        self.set_marker_style(self._style.with_(unit=unit, size=round(min(max(size * factor, lo), hi), 1)))

    def refresh_auto_size(self) -> None:
        """The points changed (another image): the spin box shows the automatic size for them."""
        if self._style.unit == "auto":
            self.size.blockSignals(True)
            self.size.setValue(self._shown_size(self._style))
            self.size.blockSignals(False)

    # -- brightness, contrast, gamma --------------------------------------------------------------
    def display_values(self) -> tuple[float, float, float]:
        return float(self.brightness.value()), float(self.contrast.value()), gamma_of(self.gamma.value())

    def _apply_display(self) -> None:
        b, c, g = self.display_values()
        self.brightness_value.setText(f"{b:+.0f}" if b else "0")
        self.contrast_value.setText(f"{c:+.0f}" if c else "0")
        self.gamma_value.setText(f"{g:.2f}")
        self.canvas.set_display_lut(None if is_identity(b, c, g) else display_lut(b, c, g))
        self.reset.setEnabled(not is_identity(b, c, g))
        self.changed.emit()

    def reset_display(self) -> None:
        for s in (self.brightness, self.contrast, self.gamma):
            s.blockSignals(True)
            s.setValue(0)
            s.blockSignals(False)
        self._apply_display()

    # -- remembered between runs ------------------------------------------------------------------
    def state(self) -> dict:
        st = {f"marker_{k}": v for k, v in self._style.state().items()}
        st.update(brightness=self.brightness.value(), contrast=self.contrast.value(), gamma=self.gamma.value())
        return st

    def restore(self, state: dict) -> None:
        self.set_marker_style(MarkerStyle.from_state({k[len("marker_"):]: v for k, v in state.items()
                                                      if k.startswith("marker_")}))
        for key, slider in (("brightness", self.brightness), ("contrast", self.contrast), ("gamma", self.gamma)):
            try:
                value = int(float(state[key]))
            except (KeyError, TypeError, ValueError):
                continue
            slider.blockSignals(True)
            slider.setValue(value)  # QSlider clamps to -100..100
            slider.blockSignals(False)
        self._apply_display()


class AppearanceActions:
    """The View ▸ Head Markers and image display actions, made with the window's action factory
    ``act(text, slot, shortcut, icon, checkable, tip)`` so they carry shortcuts like the rest."""

    def __init__(self, act, controls: AppearanceControls, parent):
        self.controls = controls
        self.shapes = {}
        group = QActionGroup(parent)
        keys = {"dot": "Alt+1", "circle": "Alt+2", "cross": "Alt+3"}
        for s in SHAPES:
            a = act(f"{SHAPE_NAMES[s]} Markers", lambda on, s=s: on and controls.set_shape(s), keys[s], None, True)
            group.addAction(a)
            self.shapes[s] = a
        self.auto_size = act("&Automatic Marker Size", lambda: controls.set_auto_size(), "Alt+0",
                             tip="Size the markers from the spacing of the heads (image pixels)")
        self.larger = act("&Larger Markers", lambda: controls.scale_size(SIZE_STEP), "Alt+=")
        self.smaller = act("&Smaller Markers", lambda: controls.scale_size(1 / SIZE_STEP), "Alt+-")
        self.reset_display = act("&Reset Brightness, Contrast, Gamma", lambda: controls.reset_display(),
                                 "Ctrl+Alt+0", tip="Show the image as it is")
        controls.changed.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        style = self.controls.marker_style()
        a = self.shapes[style.shape]
        if not a.isChecked():
            a.blockSignals(True)
            a.setChecked(True)
            a.blockSignals(False)
        b, c, g = self.controls.display_values()
        self.reset_display.setEnabled(not is_identity(b, c, g))

    def add_to(self, menu) -> None:
        markers = menu.addMenu("Head &Markers")
        markers.addActions(list(self.shapes.values()))
        markers.addSeparator()
        markers.addActions([self.auto_size, self.larger, self.smaller])
        menu.addAction(self.reset_display)
