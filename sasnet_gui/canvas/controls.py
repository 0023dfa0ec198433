"""The overlay panel: which layers are shown, colour map, opacities, and the P1..P5 legend."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from sasnet_gui.canvas.colors import COLORMAPS, LEVEL_COLOURS, LEVELS


def _slider(value: int) -> QSlider:
    s = QSlider(Qt.Horizontal)
    s.setRange(0, 100)
    s.setValue(value)
    return s


class OverlayControls(QWidget):
    changed = Signal()

    def __init__(self, canvas, parent=None):
        super().__init__(parent)
        self.canvas = canvas
        self.density = QCheckBox("Density map", checked=True)
        self.levels = QCheckBox("Selected level per patch", checked=False)
        self.unsure = QCheckBox("Where the model is unsure", checked=False)
        self.unsure.setToolTip("Unsure people per 32\u00d732 patch: the count where the five levels' weights are flat")
        self.points = QCheckBox("Head points", checked=True)
        self.colormap = QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.density_opacity = _slider(60)
        self.level_opacity = _slider(45)
        self.unsure_opacity = _slider(60)

        form = QFormLayout()
        form.addRow(self.density)
        form.addRow("Colour map", self.colormap)
        form.addRow("Opacity", self.density_opacity)
        form.addRow(self.levels)
        form.addRow("Opacity", self.level_opacity)
        form.addRow(self.unsure)
        form.addRow("Opacity", self.unsure_opacity)
        form.addRow(self.points)

        legend = QGroupBox("Levels (as in the paper's Fig. 1)")
        grid = QGridLayout(legend)
        notes = ("finest, small far heads", "", "", "", "coarsest, big near heads")
        for k, (name, colour, note) in enumerate(zip(LEVELS, LEVEL_COLOURS, notes)):
            swatch = QLabel()
            swatch.setFixedSize(14, 14)
            swatch.setStyleSheet(f"background:{colour}; border:1px solid #444;")
            grid.addWidget(swatch, k, 0)
            grid.addWidget(QLabel(f"<b>{name}</b> {note}"), k, 1)

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(legend)
        lay.addStretch(1)

        self.density.toggled.connect(canvas.show_density)
        self.levels.toggled.connect(canvas.show_levels)
        self.points.toggled.connect(canvas.show_points)
        self.unsure.toggled.connect(canvas.show_uncertainty)
        self.unsure_opacity.valueChanged.connect(lambda v: canvas.set_uncertainty_opacity(v / 100))
        self.colormap.currentTextChanged.connect(canvas.set_colormap)
        self.density_opacity.valueChanged.connect(lambda v: canvas.set_density_opacity(v / 100))
        self.level_opacity.valueChanged.connect(lambda v: canvas.set_level_opacity(v / 100))
        for w in (self.density, self.levels, self.points, self.unsure):
            w.toggled.connect(self.changed)
        for s in (self.density_opacity, self.level_opacity, self.unsure_opacity):
            s.valueChanged.connect(self.changed)
        self.colormap.currentTextChanged.connect(self.changed)

    def state(self) -> dict:
        return {
            "density": self.density.isChecked(), "levels": self.levels.isChecked(),
            "points": self.points.isChecked(), "colormap": self.colormap.currentText(),
            "density_opacity": self.density_opacity.value(), "level_opacity": self.level_opacity.value(),
            "unsure": self.unsure.isChecked(), "unsure_opacity": self.unsure_opacity.value(),
        }

    def restore(self, state: dict) -> None:
        def as_bool(v, default):
            return default if v is None else (v if isinstance(v, bool) else str(v).lower() == "true")

        self.density.setChecked(as_bool(state.get("density"), True))
        self.levels.setChecked(as_bool(state.get("levels"), False))
        self.points.setChecked(as_bool(state.get("points"), True))
        self.unsure.setChecked(as_bool(state.get("unsure"), False))
        if state.get("colormap") in COLORMAPS:
            self.colormap.setCurrentText(state["colormap"])
        for key, slider in (("density_opacity", self.density_opacity), ("level_opacity", self.level_opacity),
                            ("unsure_opacity", self.unsure_opacity)):
            try:
                slider.setValue(int(state[key]))
            except (KeyError, TypeError, ValueError):
                pass
