"""The image canvas: a pyqtgraph view with the photo, the model's overlays, the points and ROIs.

Layers, bottom to top: ``CanvasImageItem`` (the photo; a click on it adds a point), the density
overlay, the level overlay with its patch grid, ROI polygons, the points, the hovered patch's
outline. Mouse, in the edit tool: click = add a head, drag a head = move it (with the selection),
click a head = select it (Ctrl/Shift toggles), right-click a head = delete it, Shift+drag = box
selection, drag on empty space = pan, wheel = zoom. In the ROI tool clicks add polygon vertices.
The canvas only turns gestures into document calls; the document owns the data and the undo.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QCursor, QFontMetrics, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QLabel

from sasnet_core.annotations.display import apply_lut
from sasnet_core.engine import uncertainty
from sasnet_gui.canvas.colors import DEFAULT_COLORMAP, LEVELS
from sasnet_gui.canvas.overlays import (
    PATCH_SIDE,
    DensityOverlay,
    LevelOverlay,
    UncertaintyOverlay,
)
from sasnet_gui.canvas.points import PointsItem
from sasnet_gui.canvas.review import ReviewLayer
from sasnet_gui.canvas.roi import RoiLayer

TOOLS = ("edit", "roi", "pan")
COLORBAR_LABEL = f"people per {PATCH_SIDE}\u00d7{PATCH_SIDE} px"
UNSURE_COLORBAR_LABEL = "unsure people per patch"
EMPTY_HINT = "Drop images, folders or videos here, or use File \u25b8 Open\u2026 (Ctrl+O)"


class CanvasImageItem(pg.ImageItem):
    """The photo. Clicks and drags that no item above took land here."""

    def __init__(self, on_click, on_drag):
        super().__init__(axisOrder="row-major")
        self._on_click, self._on_drag = on_click, on_drag  # the canvas's handlers

    def mouseClickEvent(self, ev):
        self._on_click(ev)

    def mouseDragEvent(self, ev):
        self._on_drag(ev)


class CanvasView(pg.GraphicsLayoutWidget):
    cursorMoved = Signal(float, float, object)  # image x, y and the pixel value (or None)
    cursorLeft = Signal()  # no image point under the cursor any more (e.g. the image changed)
    hoverChanged = Signal(str)  # text about the patch under the cursor ("" when none)
    toolChanged = Signal(str)
    zoomChanged = Signal(float)  # screen pixels per image pixel (1.0 = 1:1)

    def __init__(self, document, parent=None):
        super().__init__(parent)
        self.document = document
        self.tool = "edit"
        self.result = None  # CountResult of the shown image, or None
        self._rgb: np.ndarray | None = None  # the image as read: counted, saved and shown in the readout
        self._lut: np.ndarray | None = None  # brightness / contrast / gamma, for the screen only
        self._shown: np.ndarray | None = None  # the adjusted copy on screen, rewritten at each step
        self.keep_zoom = False  # True: another image of the same size keeps the zoom and pan
        self.setBackground("#1e1e1e")
        self.ci.layout.setContentsMargins(0, 0, 0, 0)

        self.vb = self.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.vb.setDefaultPadding(0.01)
        self.image_item = CanvasImageItem(self._click_on_image, self._drag_on_image)
        self.density_item = DensityOverlay()
        self._unsure_on = False
        self.level_item = LevelOverlay()
        self.unsure_item = UncertaintyOverlay()
        self.roi_layer = RoiLayer()
        self.points_item = PointsItem(self)
        self.points_item.setZValue(30)
        for item in (self.image_item, self.density_item, self.level_item, self.unsure_item, self.roi_layer,
                     self.points_item):
            self.vb.addItem(item)
        self.review_layer = ReviewLayer()
        self.vb.addItem(self.review_layer, ignoreBounds=True)
        self._hover_rect = QGraphicsRectItem()
        pen = QPen(QColor("#ffffff"), 1.5)
        pen.setCosmetic(True)
        self._hover_rect.setPen(pen)
        self._hover_rect.setZValue(40)
        self._hover_rect.hide()
        self.vb.addItem(self._hover_rect, ignoreBounds=True)
        self._band = QGraphicsRectItem()
        bpen = QPen(QColor("#ffffff"), 1, Qt.DashLine)
        bpen.setCosmetic(True)
        self._band.setPen(bpen)
        self._band.setBrush(QColor(255, 255, 255, 30))
        self._band.setZValue(50)
        self._band.hide()
        self.vb.addItem(self._band, ignoreBounds=True)

        self.colorbar = self._colorbar(COLORBAR_LABEL, DEFAULT_COLORMAP)
        self.addItem(self.colorbar, row=0, col=1)
        self.unsure_colorbar = self._colorbar(UNSURE_COLORBAR_LABEL, UncertaintyOverlay.COLORMAP)
        self.addItem(self.unsure_colorbar, row=0, col=2)
        self.unsure_colorbar.hide()
        # The P1..P5 legend lives in the overlay panel only (with what each level means): a second
        # one on the image covered the photo and said less.
        self.hover_text = pg.TextItem(anchor=(0, 0), color="w", fill=pg.mkBrush(20, 20, 20, 200))
        self.hover_text.setParentItem(self.vb)
        self.hover_text.setPos(8, 8)
        self.hover_text.setZValue(100)
        self.hover_text.hide()

        # What an empty canvas is for, instead of a blank area and a colour bar for nothing.
        self.empty_hint = QLabel(EMPTY_HINT, self)
        self.empty_hint.setAlignment(Qt.AlignCenter)
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setStyleSheet("color:#8a8a8a; font-size:15px;")
        self.empty_hint.setAttribute(Qt.WA_TransparentForMouseEvents)
        self._density_on = True

        self._hover_patch = None
        self._zoom = 0.0
        self.vb.sigRangeChanged.connect(self._emit_zoom)  # at once, not at the next paint
        self.vb.sigTransformChanged.connect(self._emit_zoom)
        self.vb.sigResized.connect(self._emit_zoom)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        document.pointsChanged.connect(self.refresh_points)
        document.selectionChanged.connect(lambda: self.points_item.set_selection(document.selection))
        document.roisChanged.connect(lambda: self.roi_layer.set_rois(document.rois))
        self.show_density(True)
        self.show_levels(False)

    @staticmethod
    def _colorbar(label: str, colormap: str) -> pg.ColorBarItem:
        bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get(colormap), interactive=False, width=14)
        # The unit goes on the value axis, outside the tick labels: ColorBarItem's own label sits on
        # the narrow frame axis beside the gradient and is drawn over it.
        axis = bar.getAxis("right")
        axis.setLabel(label)
        axis.enableAutoSIPrefix(False)  # plain values, no "(x0.001)" in the label
        axis.setWidth(64)  # tick values such as 0.0125, then the label
        # The end values ("0", "0.035") are centred on the bar's ends: half a line of room above and
        # below keeps them inside the view instead of cut off at its edges.
        pad = QFontMetrics(axis.font()).height()
        left, _top, right, _bottom = bar.layout.getContentsMargins()
        bar.layout.setContentsMargins(left, pad, right, pad)
        return bar

    # -- content ----------------------------------------------------------------------------------
    @property
    def image(self) -> np.ndarray | None:
        """The shown image as read (RGB, before the display's brightness and contrast), or None:
        what was counted, and what an exported overlay is drawn on."""
        return self._rgb

    @property
    def image_shape(self):
        return None if self._rgb is None else self._rgb.shape

    def set_image(self, rgb: np.ndarray | None, message: str | None = None) -> None:
        """Show ``rgb``; None empties the canvas, which then shows ``message`` (why it is empty)
        or, without one, how to open images (and the welcome overlay covers it)."""
        old = self.image_shape
        self._rgb = rgb
        self.roi_layer.cancel()
        # Hidden and shown again, so whoever follows the hint's visibility (the welcome overlay)
        # sees the new text too.
        self.empty_hint.setVisible(False)
        self.empty_hint.setText(message or EMPTY_HINT)
        self.empty_hint.setVisible(rgb is None)
        if rgb is None:
            self.image_item.clear()
            self.set_result(None)
            return
        self._show_pixels()
        h, w = rgb.shape[:2]
        self.points_item.new_image()
        self.points_item.set_image_rect(QRectF(0, 0, w, h))
        if not self.keep_zoom or old is None or old[:2] != rgb.shape[:2]:
            self.fit()
        self._refresh_hover()

    def set_result(self, result) -> None:
        """Show a CountResult (or None) over the current image."""
        self.result = result
        if result is None:
            self.density_item.set_density(None, None)
            self.level_item.set_levels(None)
        else:
            self.density_item.set_density(result.density, result.image_size)
            self.level_item.set_levels(result.level_map, result.patch_rows, result.patch_cols)
            self.colorbar.setLevels((0.0, self.density_item.vmax))
        self.colorbar.setVisible(self._density_on and result is not None)
        self._refresh_unsure()
        self._refresh_hover()
        self.refresh_points()

    def refresh_points(self) -> None:
        doc = self.document
        levels = self.result.levels_of(doc.points) if self.result is not None else None
        self.points_item.set_points(doc.points, levels, doc.sources)
        self.points_item.set_selection(doc.selection)

    # -- overlay controls -------------------------------------------------------------------------
    def show_density(self, on: bool) -> None:
        self._density_on = on
        self.density_item.setVisible(on)
        self.colorbar.setVisible(on and self.result is not None)

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt name
        super().resizeEvent(ev)
        if hasattr(self, "empty_hint"):  # pyqtgraph resizes the view while it is being built
            self.empty_hint.setGeometry(self.rect().adjusted(40, 0, -40, 0))

    def _refresh_unsure(self) -> None:
        """The uncertainty overlay is computed only while it is shown (and once per result)."""
        r = self.result
        if not self._unsure_on or r is None:
            self.unsure_item.set_scores(None)
            self._unsure_for = None
        elif getattr(self, "_unsure_for", None) is not r:
            self._unsure_for = r
            self.unsure_item.set_scores(uncertainty.patch_scores(r), r.patch_rows, r.patch_cols)
            self.unsure_colorbar.setLevels((0.0, self.unsure_item.vmax))
        self.unsure_item.setVisible(self._unsure_on)
        self.unsure_colorbar.setVisible(self._unsure_on and r is not None)

    def show_uncertainty(self, on: bool) -> None:
        self._unsure_on = bool(on)
        self._refresh_unsure()

    def set_uncertainty_opacity(self, value: float) -> None:
        self.unsure_item.setOpacity(value)

    def show_levels(self, on: bool) -> None:
        self.level_item.setVisible(on)

    def show_points(self, on: bool) -> None:
        self.points_item.setVisible(on)

    def set_density_opacity(self, value: float) -> None:
        self.density_item.setOpacity(value)

    def set_level_opacity(self, value: float) -> None:
        self.level_item.setOpacity(value)

    def set_colormap(self, name: str) -> None:
        self.density_item.set_colormap(name)
        self.colorbar.setColorMap(pg.colormap.get(name))

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"tool must be one of {TOOLS}, got {tool!r}")
        if tool != "roi":
            self.roi_layer.cancel()
        self.tool = tool
        self.setCursor(Qt.CrossCursor if tool in ("edit", "roi") else Qt.OpenHandCursor)
        self.toolChanged.emit(tool)

    def fit(self) -> None:
        if self._rgb is not None:
            h, w = self._rgb.shape[:2]
            self.vb.setRange(QRectF(0, 0, w, h), padding=0.01)

    def zoom(self, factor: float) -> None:
        self.vb.scaleBy((1 / factor, 1 / factor))

    def zoom_scale(self) -> float:
        """Screen pixels per image pixel now (0 when no image is shown)."""
        if self._rgb is None:
            return 0.0
        # From the view's size and range, both current at once (the item transforms catch up
        # only at the next paint); the aspect is locked, so width and height agree.
        r = self.vb.viewRect()
        return self.vb.width() / r.width() if r.width() > 0 and self.vb.width() > 0 else 0.0

    def actual_size(self) -> None:
        """1:1: one image pixel per screen pixel, around the centre of what is shown now."""
        self.zoom_to(1.0)

    def zoom_to(self, scale: float, centre: QPointF | None = None) -> None:
        """Show ``scale`` screen pixels per image pixel around ``centre`` (image coordinates;
        the centre of the view when None)."""
        if self._rgb is None or not scale > 0:
            return
        c = self.vb.viewRect().center() if centre is None else centre
        w, h = self.vb.width() / scale, self.vb.height() / scale
        self.vb.setRange(QRectF(c.x() - w / 2, c.y() - h / 2, w, h), padding=0)

    def view_rect(self) -> QRectF:
        return self.vb.viewRect()

    def _emit_zoom(self, *_args) -> None:
        zoom = self.zoom_scale()
        if zoom != self._zoom:
            self._zoom = zoom
            self.zoomChanged.emit(zoom)

    # -- how the image and points look (never what is counted or saved) ---------------------------
    def set_display_lut(self, lut: np.ndarray | None) -> None:
        """Brightness / contrast / gamma as a lookup table, applied to a copy for the screen;
        None shows the pixels as they are."""
        self._lut = None if lut is None else np.asarray(lut, np.uint8)
        if self._rgb is not None:
            self._show_pixels()

    def displayed_image(self) -> np.ndarray | None:
        """The pixels on screen (after the display adjustments)."""
        return self.image_item.image

    def _show_pixels(self) -> None:
        # pyqtgraph's ImageItem applies a lookup table to one-channel images only, so colour
        # photos get an adjusted copy: one buffer per image size, rewritten in place at each
        # slider step (no new 144 MB array per step on an 8000 x 6000 photo).
        if self._lut is None:
            self._shown = None  # the pixels as read are shown; the copy's memory goes
            shown = self._rgb
        else:
            shown = self._shown = apply_lut(self._rgb, self._lut, out=self._shown)
        # 8-bit pixels go to the screen as they are (a QImage over the array); levels of (0, 255)
        # made pyqtgraph rescale a full copy at every repaint, a second per step on a large photo.
        levels = None if shown.dtype == np.uint8 else (0, 255)
        self.image_item.setImage(shown, autoLevels=False, levels=levels)

    def set_marker_style(self, style) -> None:
        self.points_item.set_style(style)

    # -- ROI tool ---------------------------------------------------------------------------------
    def finish_roi(self) -> bool:
        if len(self.roi_layer.draft) < 3:
            return False
        self.document.add_roi(self.roi_layer.take_draft())
        return True

    def cancel_roi(self) -> None:
        self.roi_layer.cancel()

    # -- gestures that fell through to the image ---------------------------------------------------
    def _click_on_image(self, ev) -> None:
        doc = self.document
        if not doc.is_open or ev.button() != Qt.LeftButton or self.tool == "pan":
            ev.ignore()
            return
        ev.accept()
        x, y = ev.pos().x(), ev.pos().y()
        if self.tool == "roi":
            px = self.points_item.pixelLength_xy()[0]
            if ev.double() or self.roi_layer.near_first(x, y, px):
                self.finish_roi()
            else:
                self.roi_layer.add_vertex(x, y)
            return
        if ev.double():
            return  # the first click of the double-click already added the point
        if ev.modifiers() & (Qt.ControlModifier | Qt.ShiftModifier):
            doc.set_selection([])
            return
        doc.add_point(x, y)

    def _drag_on_image(self, ev) -> None:
        if (self.tool != "edit" or not self.document.is_open or ev.button() != Qt.LeftButton
                or not (ev.modifiers() & Qt.ShiftModifier or self._band.isVisible())):
            ev.ignore()  # plain drag on empty space: the ViewBox pans
            return
        ev.accept()
        a, b = ev.buttonDownPos(), ev.pos()
        self._band.setRect(QRectF(a, b).normalized())
        self._band.show()
        if ev.isFinish():
            self._band.hide()
            self.document.select_in_rect(a.x(), a.y(), b.x(), b.y(),
                                         add=bool(ev.modifiers() & Qt.ControlModifier))

    # -- hover ------------------------------------------------------------------------------------
    def _on_mouse_moved(self, scene_pos) -> None:
        if self._rgb is None:
            return
        p = self.vb.mapSceneToView(scene_pos)
        x, y = p.x(), p.y()
        h, w = self._rgb.shape[:2]
        value = None
        if 0 <= x < w and 0 <= y < h:
            value = tuple(int(v) for v in self._rgb[int(y), int(x)])
        self.cursorMoved.emit(x, y, value)
        if self.tool == "roi":
            self.roi_layer.hover(x, y)
        self._update_hover(x, y)

    def _refresh_hover(self) -> None:
        """The image or result under a still mouse changed (e.g. PgDn): the patch readout and the
        cursor position must describe what is shown now, so they are redone or cleared."""
        was_shown = self._hover_patch is not None
        self._hover_patch = None
        self._hover_rect.hide()
        self.hover_text.hide()
        if was_shown:
            self.hoverChanged.emit("")
        pos = self.mapFromGlobal(QCursor.pos())
        if self._rgb is not None and self.underMouse() and self.rect().contains(pos):
            self._on_mouse_moved(self.mapToScene(pos))
        else:
            self.cursorLeft.emit()

    def _update_hover(self, x: float, y: float) -> None:
        r = self.result
        shown = self.level_item.isVisible() or self.density_item.isVisible() or self.unsure_item.isVisible()
        patch = r.patch_at(x, y) if r is not None and shown else None
        if patch == self._hover_patch:
            return
        self._hover_patch = patch
        if patch is None:
            self._hover_rect.hide()
            self.hover_text.hide()
            self.hoverChanged.emit("")
            return
        i, j = patch
        y0, y1 = r.patch_rows[i], r.patch_rows[i + 1]
        x0, x1 = r.patch_cols[j], r.patch_cols[j + 1]
        self._hover_rect.setRect(QRectF(float(x0), float(y0), float(x1 - x0), float(y1 - y0)))
        self._hover_rect.show()
        text = self.patch_text(i, j)
        self.hover_text.setText(text)
        self.hover_text.show()
        self.hoverChanged.emit(text)

    def patch_text(self, i: int, j: int) -> str:
        r = self.result
        weights = r.confidence[:, i, j]
        best = int(weights.argmax())
        lines = [f"patch ({i}, {j})  count {r.patch_count(i, j):.2f}  selected {LEVELS[best]}"]
        lines.append("  ".join(f"{name} {w:.2f}" for name, w in zip(LEVELS, weights)))
        scores = self.unsure_item.image
        if self.unsure_item.isVisible() and scores is not None and i < scores.shape[0] and j < scores.shape[1]:
            lines.append(f"unsure people {scores[i, j]:.2f}")
        return "\n".join(lines)

    def hover_at(self, x: float, y: float) -> str:
        """Hover as if the mouse were over image point (x, y) (tests and keyboard users)."""
        self._hover_patch = ()  # differs from any patch and from None: always redraw
        self._update_hover(x, y)
        return self.hover_text.toPlainText() if self.hover_text.isVisible() else ""
