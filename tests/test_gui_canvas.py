"""The canvas, driven with the mouse: overlays, hover, points by level, add/move/delete, ROI."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from sasnet_core.engine.counting import summarize
from sasnet_gui.canvas.colors import LEVEL_RGBA
from sasnet_gui.canvas.view import CanvasView
from sasnet_gui.editing.document import AnnotationDocument


@pytest.fixture(scope="module")
def result(tiny_predictor, gui):
    image = gui.image()
    return image, summarize(tiny_predictor.predict(image), "x.png")


@pytest.fixture
def canvas(qtbot, tmp_path, gui):
    (path,) = gui.write_images(tmp_path, n=1)
    doc = AnnotationDocument(autosave_ms=10_000)
    view = CanvasView(doc)
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    view.set_image(gui.image())
    doc.open(path, (256, 192))
    view.vb.setRange(xRange=(0, 256), yRange=(0, 192), padding=0)
    qtbot.wait(10)
    yield view
    doc.flush()


def test_click_adds_a_point_and_undo_removes_it(qtbot, canvas, gui):
    gui.click(qtbot, canvas, 100, 80)
    doc = canvas.document
    assert doc.count == 1
    np.testing.assert_allclose(doc.points[0], [100, 80], atol=1.0)
    assert len(canvas.points_item.points) == 1
    doc.undo_stack.undo()
    assert doc.count == 0 and len(canvas.points_item.points) == 0


def test_drag_a_point_moves_it_in_one_undo_step(qtbot, canvas, gui):
    doc = canvas.document
    doc.add_point(60, 60)
    gui.drag(canvas, (60, 60), (120, 100))
    np.testing.assert_allclose(doc.points[0], [120, 100], atol=1.5)
    assert doc.undo_stack.count() == 2
    doc.undo_stack.undo()
    np.testing.assert_allclose(doc.points[0], [60, 60])


def test_drag_on_empty_space_pans_and_adds_nothing(qtbot, canvas, gui):
    before = canvas.vb.viewRange()
    gui.drag(canvas, (200, 150), (150, 120))
    assert canvas.document.count == 0
    assert canvas.vb.viewRange() != before


def test_click_selects_right_click_deletes_shift_drag_box_selects(qtbot, canvas, gui):
    doc = canvas.document
    for x in (40, 60, 80, 200):
        doc.add_point(x, 50)
    gui.click(qtbot, canvas, 60, 50)
    assert doc.selection.tolist() == [1] and doc.count == 4  # a click on a head selects it
    gui.click(qtbot, canvas, 80, 50, modifiers=Qt.ControlModifier)
    assert doc.selection.tolist() == [1, 2]
    gui.click(qtbot, canvas, 200, 50, button=Qt.RightButton)
    assert doc.count == 3
    gui.drag(canvas, (30, 30), (90, 70), modifiers=Qt.ShiftModifier)
    assert doc.selection.tolist() == [0, 1, 2]
    doc.delete_selection()
    assert doc.count == 0
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert doc.count == 4


def test_pan_tool_does_not_edit(qtbot, canvas, gui):
    canvas.set_tool("pan")
    gui.click(qtbot, canvas, 100, 80)
    assert canvas.document.count == 0


def test_roi_polygon_tool(qtbot, canvas, gui):
    canvas.document.add_point(50, 50)
    canvas.document.add_point(200, 150)
    canvas.set_tool("roi")
    for x, y in [(10, 10), (120, 10), (120, 120)]:
        gui.click(qtbot, canvas, x, y)
    assert len(canvas.roi_layer.draft) == 3 and canvas.document.count == 2
    gui.double_click(qtbot, canvas, 10, 120)
    doc = canvas.document
    assert len(doc.rois) == 1 and len(doc.rois[0]) >= 4
    assert doc.count_in_roi() == 1
    doc.undo_stack.undo()
    assert doc.rois == []


def test_overlays_follow_the_result_and_the_controls(qtbot, canvas, result):
    from sasnet_gui.canvas.controls import OverlayControls

    image, r = result
    canvas.set_result(r)
    assert canvas.density_item.image.shape == r.density.shape
    rect = canvas.density_item.mapRectToParent(canvas.density_item.boundingRect())
    assert (round(rect.width()), round(rect.height())) == (256, 192)
    # Level overlay: one pixel per patch, the colour of the selected level.
    lv = canvas.level_item.image
    assert lv.shape[:2] == r.level_map.shape
    np.testing.assert_array_equal(lv, LEVEL_RGBA[r.level_map])
    lo, hi = canvas.colorbar.levels()
    assert lo == 0 and hi == pytest.approx(canvas.density_item.vmax)

    controls = OverlayControls(canvas)
    qtbot.addWidget(controls)
    controls.levels.setChecked(True)
    assert canvas.level_item.isVisible()
    controls.density.setChecked(False)
    assert not canvas.density_item.isVisible() and not canvas.colorbar.isVisible()
    controls.density_opacity.setValue(25)
    assert canvas.density_item.opacity() == pytest.approx(0.25)
    controls.colormap.setCurrentText("viridis")
    assert canvas.density_item.colormap == "viridis"


def test_points_are_coloured_by_the_level_of_their_patch(qtbot, canvas, result):
    _, r = result
    canvas.set_result(r)
    pts = np.array([[5.0, 5.0], [200.0, 150.0], [100.0, 40.0]])
    canvas.document.replace_points(pts)
    expected = [r.level_map[r.patch_at(x, y)] for x, y in pts]
    assert canvas.points_item.levels.tolist() == expected
    canvas.set_result(None)
    assert canvas.points_item.levels.tolist() == [0, 0, 0]  # unknown before the model ran


def test_hover_shows_patch_count_and_five_weights(qtbot, canvas, result):
    _, r = result
    canvas.set_result(r)
    canvas.show_levels(True)
    text = canvas.hover_at(40, 40)
    i, j = r.patch_at(40, 40)
    assert f"count {r.patch_count(i, j):.2f}" in text
    for name, w in zip(("P1", "P2", "P3", "P4", "P5"), r.confidence[:, i, j]):
        assert f"{name} {w:.2f}" in text
    assert canvas._hover_rect.isVisible()
    assert canvas.hover_at(-50, -50) == ""


def test_many_points_paint(qtbot, canvas, result):
    _, r = result
    canvas.set_result(r)
    rng = np.random.default_rng(1)
    canvas.document.replace_points(rng.uniform(0, 190, (5000, 2)))
    canvas.document.select_all()
    img = canvas.grab().toImage()
    assert img.width() > 0
    hits = canvas.points_item.pointsAt(QPointF(*canvas.document.points[7]))
    assert hits[0] == 7 or 7 in hits.tolist()


def test_colour_bar_label_sits_beside_the_gradient_not_on_it(qtbot, canvas, result):
    from sasnet_gui.canvas.view import COLORBAR_LABEL

    canvas.set_result(result[1])
    qtbot.wait(20)  # one layout pass
    bar = canvas.colorbar.bar.sceneBoundingRect()
    labels = [ax.label for ax in (canvas.colorbar.getAxis(k) for k in ("left", "right", "top", "bottom"))
              if ax.label.isVisible() and ax.label.toPlainText()]
    assert [lb.toPlainText().strip() for lb in labels] == [COLORBAR_LABEL]
    margin = labels[0].document().documentMargin()  # blank space around the text itself
    text = labels[0].sceneBoundingRect().adjusted(margin, margin, -margin, -margin)
    assert not text.intersects(bar) and text.left() >= bar.right()
    assert canvas.sceneRect().contains(text)  # and not cut off at the canvas' edge


def test_an_empty_canvas_says_what_it_is_for(qtbot, result, gui):
    from sasnet_gui.canvas.view import EMPTY_HINT

    view = CanvasView(AnnotationDocument(autosave_ms=10_000))
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    qtbot.waitExposed(view)
    assert view.empty_hint.isVisible() and view.empty_hint.text() == EMPTY_HINT
    assert not view.colorbar.isVisible()  # no density yet: no scale for it
    view.set_image(gui.image())
    assert not view.empty_hint.isVisible() and not view.colorbar.isVisible()
    view.set_result(result[1])
    assert view.colorbar.isVisible()
    view.set_image(None)
    assert view.empty_hint.isVisible() and not view.colorbar.isVisible()
