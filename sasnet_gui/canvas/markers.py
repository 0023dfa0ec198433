"""How head markers look: shape (dot, circle, cross) and size, in screen or image pixels.

Sizes:
- ``auto`` (the default): image pixels, from the spacing of the heads (``sasnet_core.annotations.display.
  marker_size_for``), so a dense crowd zoomed out to fit shows separate small dots and a sparse
  street scene shows head-sized ones; with fewer than two heads it falls back to ``FALLBACK_PX``
  on screen.
- ``image``: a fixed diameter in image pixels (markers grow and shrink with the zoom, like heads).
- ``screen``: a fixed diameter in screen pixels, whatever the zoom.
Whatever the unit, the drawn diameter stays within ``SCREEN_PX_RANGE``: a marker never vanishes
when zoomed far out and never hides the head it marks when zoomed far in.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap

SHAPES = ("dot", "circle", "cross")
SHAPE_NAMES = {"dot": "Dot", "circle": "Circle", "cross": "Cross"}
UNITS = ("auto", "image", "screen")
UNIT_NAMES = {"auto": "Automatic", "image": "Image pixels", "screen": "Screen pixels"}
FALLBACK_PX = 9.0  # screen diameter when the spacing says nothing (fewer than two heads)
SCREEN_PX_RANGE = (3.0, 64.0)
SIZE_RANGE = (1.0, 200.0)  # what a person may type, in either unit
MODEL_SHARE = 0.8  # the model's estimated heads are drawn smaller than the ones a person placed


@dataclass(frozen=True)
class MarkerStyle:
    shape: str = "dot"
    unit: str = "auto"
    size: float = FALLBACK_PX  # diameter in ``unit`` (unused for auto)

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"marker shape must be one of {SHAPES}, got {self.shape!r}")
        if self.unit not in UNITS:
            raise ValueError(f"marker size unit must be one of {UNITS}, got {self.unit!r}")
        lo, hi = SIZE_RANGE
        if not lo <= float(self.size) <= hi:
            raise ValueError(f"marker size must be between {lo:g} and {hi:g}, got {self.size!r}")

    def with_(self, **changes) -> "MarkerStyle":
        return replace(self, **changes)

    def screen_diameter(self, auto_image_px: float | None, scale: float) -> float:
        """Diameter on screen at ``scale`` screen pixels per image pixel."""
        if self.unit == "screen":
            d = self.size
        elif self.unit == "image":
            d = self.size * scale
        else:
            d = FALLBACK_PX if auto_image_px is None else auto_image_px * scale
        lo, hi = SCREEN_PX_RANGE
        return min(max(d, lo), hi)

    def state(self) -> dict:
        return {"shape": self.shape, "unit": self.unit, "size": float(self.size)}

    @classmethod
    def from_state(cls, state: dict) -> "MarkerStyle":
        """The saved style; anything unreadable falls back to the default of that field."""
        base = cls()
        shape = state.get("shape") if state.get("shape") in SHAPES else base.shape
        unit = state.get("unit") if state.get("unit") in UNITS else base.unit
        try:
            size = float(state.get("size", base.size))
            return cls(shape, unit, size)
        except (TypeError, ValueError):
            return cls(shape, unit)


def _blank(side: int) -> tuple[QPixmap, QPainter]:
    """A transparent square pixmap and an antialiased painter on it (the caller ends the painter)."""
    pm = QPixmap(side, side)
    pm.fill(Qt.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.Antialiasing)
    return pm, p


def render_symbol(shape: str, fill: str, outline: str, diameter: float) -> QPixmap:
    """One marker, centred in a square pixmap with room for its outline."""
    pad = 3
    side = int(round(diameter)) + 2 * pad
    pm, p = _blank(side)
    c = side / 2.0
    r = diameter / 2.0
    rect = QRectF(c - r, c - r, 2 * r, 2 * r)
    small = diameter < 6  # an outline would swallow a marker this small
    if shape == "dot":
        p.setPen(Qt.NoPen if small or not outline else QPen(QColor(outline), 1.2))
        p.setBrush(QColor(fill))
        p.drawEllipse(rect)
    else:
        width = max(1.5, diameter / 8.0)
        strokes = [(QColor("#101010"), width + 2.0), (QColor(fill), width)]  # a dark edge reads on light and dark
        for colour, w in strokes:
            pen = QPen(colour, w)
            pen.setCapStyle(Qt.FlatCap)
            p.setPen(pen)
            p.setBrush(Qt.NoBrush)
            if shape == "circle":
                p.drawEllipse(rect.adjusted(w / 2, w / 2, -w / 2, -w / 2) if diameter > 2 * w else rect)
            else:
                p.drawLine(QPointF(c - r, c), QPointF(c + r, c))
                p.drawLine(QPointF(c, c - r), QPointF(c, c + r))
    p.end()
    return pm


def render_selection(colour: str, diameter: float) -> QPixmap:
    """The ring drawn around a selected marker, a little wider than the marker."""
    d = diameter + 6
    pad = 3
    pm, p = _blank(int(round(d)) + 2 * pad)
    p.setPen(QPen(QColor(colour), 2.5))
    p.setBrush(Qt.NoBrush)
    p.drawEllipse(QRectF(pad + 1.25, pad + 1.25, d - 2.5, d - 2.5))
    p.end()
    return pm
