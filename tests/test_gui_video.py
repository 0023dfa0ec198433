"""The video panel with a real (tiny) model and a generated MJPG video, offscreen."""
from __future__ import annotations

import csv
import time
from types import SimpleNamespace

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _gui_helpers import make_controller, make_video, register_tiny_model
from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from sasnet_core.annotations.annotation import (  # noqa: E402
    SOURCE_MODEL,
    annotation_path_for,
    load_annotation,
    save_annotation,
)
from sasnet_gui.widgets import HOW_TO_GET_A_MODEL  # noqa: E402

FRAMES = 20


@pytest.fixture
def video(tmp_path):
    return make_video(tmp_path / "street.avi", frames=FRAMES, size=(160, 128), fps=10.0)


def _panel(qtbot, controller):
    from sasnet_gui.video.panel import VideoPanel

    panel = VideoPanel(controller)
    qtbot.addWidget(panel)
    panel.resize(800, 700)
    panel.show()
    return panel


def _open(qtbot, panel, path):
    with qtbot.waitSignal(panel.frameShown, timeout=10000, check_params_cb=lambda i: i == 0):
        assert panel.open_video(path)


def _bar_width(rgb: np.ndarray) -> int:
    """Frame i of the test video has a red bar 4 * i pixels wide in its top rows."""
    return int((rgb[1, :, 0] > 200).sum())


class FakePredictor:
    """Stands in for a Predictor: a fixed count and heads, optionally slow (to cancel mid-way)."""

    device = SimpleNamespace(type="cpu")

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.heads = np.array([[10.5, 20.5], [30.5, 40.5], [150.5, 120.5]])

    def predict(self, rgb):
        return self.predict_batch([rgb])[0]

    def predict_batch(self, images):
        time.sleep(self.delay_s * len(images))
        return [SimpleNamespace(count=float(_bar_width(im)) / 4, heads=self.heads) for im in images]


def test_open_scrub_and_play(qtbot, studio_home, video):
    controller = make_controller(qtbot)
    panel = _panel(qtbot, controller)
    _open(qtbot, panel, video)
    assert panel.slider.maximum() == FRAMES - 1 and "20 frames" in panel.title.text()
    assert _bar_width(panel.current_frame()) == 0
    assert panel.image.image.shape == (128, 160, 3)

    with qtbot.waitSignal(panel.frameShown, timeout=10000, check_params_cb=lambda i: i == 7):
        panel.slider.setValue(7)  # what dragging the slider does
    assert panel.shown_index() == 7 and _bar_width(panel.current_frame()) == 28
    assert panel.position_label.text().startswith("frame 7 / 19 · 0:00.70")

    for i in range(3, 15):  # a burst of slider moves: only the last one has to be shown
        panel.slider.setValue(i)
    qtbot.waitUntil(lambda: panel.shown_index() == 14, timeout=10000)
    assert _bar_width(panel.current_frame()) == 56

    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    assert panel.is_playing()
    qtbot.waitUntil(lambda: panel.shown_index() == FRAMES - 1, timeout=10000)
    qtbot.waitUntil(lambda: not panel.is_playing(), timeout=5000)  # stops at the end
    assert not panel.play_button.isChecked()


def test_count_every_nth_frame_plot_seek_and_csv(qtbot, studio_home, tmp_path, video):
    register_tiny_model(tmp_path, "tiny")
    controller = make_controller(qtbot)
    panel = _panel(qtbot, controller)
    _open(qtbot, panel, video)
    assert panel.count_button.isEnabled() and not panel.model_hint.isVisible()
    panel.every_spin.setValue(3)
    progress = []
    panel.countProgress.connect(lambda done, total: progress.append((done, total)))
    with qtbot.waitSignal(panel.countFinished, timeout=60000) as finished:
        qtbot.mouseClick(panel.count_button, Qt.MouseButton.LeftButton)
        assert panel.is_counting() and panel.cancel_button.isEnabled()
    assert finished.args == ["completed"]
    records = panel.counts()
    assert [r.frame for r in records] == list(range(0, FRAMES, 3))
    assert all(r.count is not None and r.count >= 0 and r.error is None for r in records)
    assert records[1].time_s == pytest.approx(0.3)
    assert progress[-1] == (7, 7)
    xs, ys = panel.plot.curve.getData()
    assert np.allclose(xs, [r.time_s for r in records]) and np.allclose(ys, [r.count for r in records])
    assert panel.export_button.isEnabled() and not panel.is_counting()

    # A click on the plot seeks to the nearest counted frame.
    vb = panel.plot.getPlotItem().vb
    scene_pt = vb.mapViewToScene(QPointF(records[4].time_s + 0.05, records[4].count))
    pos = panel.plot.mapFromScene(scene_pt)
    with qtbot.waitSignal(panel.frameShown, timeout=10000, check_params_cb=lambda i: i == 12):
        qtbot.mouseClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert panel.current_index() == 12 and "count" in panel.position_label.text()

    out = panel.export_counts_csv(tmp_path / "counts.csv")
    rows = list(csv.DictReader(open(out, newline="")))
    assert list(rows[0]) == ["frame", "time_s", "count", "error"]
    assert [int(r["frame"]) for r in rows] == [r.frame for r in records]
    assert float(rows[2]["count"]) == pytest.approx(records[2].count, abs=1e-3)
    assert float(rows[2]["time_s"]) == pytest.approx(0.6)
    assert all(r["error"] == "" for r in rows)


def test_cancel_a_count_midway(qtbot, studio_home, video):
    controller = make_controller(qtbot)
    controller._predictor = FakePredictor(delay_s=0.15)  # what the test controls: a slow model
    panel = _panel(qtbot, controller)
    _open(qtbot, panel, video)
    with qtbot.waitSignal(panel.countFinished, timeout=30000) as finished:
        assert panel.count_frames(every_n=1)
        qtbot.waitUntil(lambda: len(panel.counts()) >= 2, timeout=10000)
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["cancelled"]
    n = len(panel.counts())
    assert 2 <= n < FRAMES
    assert [r.count for r in panel.counts()] == [r.frame for r in panel.counts()]  # bar / 4 == i
    assert panel.count_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert "Cancelled" in panel.status.text()


@pytest.mark.parametrize("device, batch", [("cpu", 1), ("cuda", 4)])
def test_count_uses_the_engine_default_batch_of_the_device(qtbot, studio_home, video, device, batch):
    """The panel counts frames in the batches the CLI would use on that device (engine_choice)."""
    controller = make_controller(qtbot)
    fake = FakePredictor()
    fake.device = SimpleNamespace(type=device)
    sizes = []
    real = fake.predict_batch
    fake.predict_batch = lambda images: sizes.append(len(images)) or real(images)
    controller._predictor = fake
    panel = _panel(qtbot, controller)
    _open(qtbot, panel, video)
    panel.every_spin.setValue(2)
    with qtbot.waitSignal(panel.countFinished, timeout=30000):
        qtbot.mouseClick(panel.count_button, Qt.MouseButton.LeftButton)
    assert sum(sizes) == FRAMES // 2 and max(sizes) == batch


def test_annotate_this_frame_stores_image_and_model_points(qtbot, studio_home, tmp_path, video):
    controller = make_controller(qtbot)
    controller._predictor, controller._name = FakePredictor(), "fake"
    panel = _panel(qtbot, controller)
    _open(qtbot, panel, video)
    assert panel.project_folder() == tmp_path / "street_frames"
    with qtbot.waitSignal(panel.frameShown, timeout=10000, check_params_cb=lambda i: i == 5):
        panel.seek(5)
    with qtbot.waitSignal(panel.frameStored, timeout=30000) as stored:
        qtbot.mouseClick(panel.annotate_button, Qt.MouseButton.LeftButton)
    image = tmp_path / "street_frames" / "street_frame000005.png"  # as `sasnet count --save-*` names frames
    assert stored.args == [str(image)] and image.is_file()
    ann = load_annotation(annotation_path_for(image))
    assert ann.image_size == (160, 128) and not ann.reviewed
    assert np.allclose(ann.points, FakePredictor().heads)
    assert (ann.sources == SOURCE_MODEL).all()
    assert ann.extra["video_source"]["frame"] == 5 and ann.extra["video_source"]["model"] == "fake"
    from sasnet_core.io.imageio import read_image

    assert _bar_width(read_image(image)) == 20  # the frame on screen, losslessly
    assert len(panel.heads.data) == 3  # the model's points drawn on the frame

    # Storing it again keeps what a person did to it since.
    ann.points, ann.sources, ann.reviewed = ann.points[:1], ann.sources[:1], True
    save_annotation(ann, annotation_path_for(image))
    with qtbot.waitSignal(panel.frameStored, timeout=30000):
        panel.annotate_current_frame()
    assert load_annotation(annotation_path_for(image)).reviewed
    assert "kept" in panel.status.text()

    # Another folder, and no model: the frame is stored with no points to start from.
    controller.unload()
    panel.set_project_folder(tmp_path / "project")
    with qtbot.waitSignal(panel.frameStored, timeout=30000) as stored:
        panel.annotate_current_frame()
    assert stored.args == [str(tmp_path / "project" / "street_frame000005.png")]
    assert load_annotation(annotation_path_for(stored.args[0])).count == 0


def test_a_frame_stored_under_the_older_name_is_found_and_kept(qtbot, studio_home, tmp_path, video):
    """Older versions stored frame 5 as street_frame5.png: "Annotate this frame" opens that one
    and its corrected annotation, and writes no second copy under today's name."""
    import cv2

    folder = tmp_path / "street_frames"
    folder.mkdir()
    older = folder / "street_frame5.png"
    cv2.imwrite(str(older), np.full((128, 160, 3), 170, np.uint8))
    from sasnet_core.annotations.annotation import Annotation

    save_annotation(Annotation(str(older), (160, 128), [[1.0, 2.0]], reviewed=True), annotation_path_for(older))
    controller = make_controller(qtbot)
    controller._predictor, controller._name = FakePredictor(), "fake"
    panel = _panel(qtbot, controller)
    _open(qtbot, panel, video)
    with qtbot.waitSignal(panel.frameShown, timeout=10000, check_params_cb=lambda i: i == 5):
        panel.seek(5)
    with qtbot.waitSignal(panel.frameStored, timeout=30000) as stored:
        qtbot.mouseClick(panel.annotate_button, Qt.MouseButton.LeftButton)
    assert stored.args == [str(older)] and "kept" in panel.status.text()
    assert load_annotation(annotation_path_for(older)).reviewed
    assert not (folder / "street_frame000005.png").exists()


def test_no_model_and_unreadable_video(qtbot, studio_home, tmp_path, video):
    controller = make_controller(qtbot)
    panel = _panel(qtbot, controller)
    assert HOW_TO_GET_A_MODEL in panel.model_hint.text() and panel.model_hint.isVisible()
    _open(qtbot, panel, video)
    assert not panel.count_button.isEnabled() and panel.annotate_button.isEnabled()
    assert panel.count_frames() is False

    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"\x00not a video" * 100)
    assert panel.open_video(bad) is False
    assert str(bad) in panel.last_error
    box = panel.findChild(QMessageBox)
    assert box is not None and str(bad) in box.informativeText()
    assert panel.info is not None and panel.info.path == video  # the open video stays open


def test_opening_a_video_keeps_the_window_on_screen_and_shows_an_empty_state(qtbot, main_window, video,
                                                                              monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    w = main_window
    avail = w.screen().availableGeometry()
    w.resize(min(1000, avail.width() - 40), min(640, avail.height() - 40))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(video)], ""))
    w.act_open.trigger()
    panel = w.panel("video")
    qtbot.waitUntil(lambda: panel.info is not None and panel._shown is not None, timeout=10000)
    qtbot.wait(50)
    assert w.frameGeometry().height() <= avail.height() and w.frameGeometry().width() <= avail.width()
    assert w.centralWidget().height() >= 200  # the image keeps its share of the height
    # Before counting: no "0 / 1 frames", and the plot spans the video's own time, not -400..400 ms.
    assert panel.progress.text() == "not counted yet"
    assert panel.plot.empty_text.isVisible()
    (x0, x1), _ = panel.plot.getPlotItem().vb.viewRange()
    assert -0.1 < x0 <= 0 and (FRAMES - 1) / 10.0 <= x1 < 2.1


class DenseFakePredictor(FakePredictor):
    """A dense crowd on the frame: heads every 4 pixels (1,200 on the 160 x 128 test video)."""

    def __init__(self):
        super().__init__()
        ys, xs = np.mgrid[4:124:4, 2:160:4]
        self.heads = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], 1).astype(float)


def test_preview_markers_of_a_dense_frame_shrink_with_the_preview(qtbot, studio_home, video):
    controller = make_controller(qtbot)
    controller._predictor, controller._name = DenseFakePredictor(), "fake"
    panel = _panel(qtbot, controller)
    panel.resize(320, 520)  # the dock under the canvas of a small window
    _open(qtbot, panel, video)
    with qtbot.waitSignal(panel.frameStored, timeout=30000):
        qtbot.mouseClick(panel.annotate_button, Qt.MouseButton.LeftButton)
    assert len(panel.heads.data) == len(controller._predictor.heads)
    qtbot.wait(50)

    # Each marker on screen is narrower than the gap between neighbouring heads on screen ...
    px_per_image_px = 1.0 / panel.viewbox.viewPixelSize()[0]
    sizes = panel.heads.data["size"]
    sizes = np.where(sizes < 0, panel.heads.opts["size"], sizes)  # -1: the item's own size
    on_screen = sizes * (1.0 if panel.heads.opts["pxMode"] else px_per_image_px)
    assert on_screen.max() < 0.6 * 4 * px_per_image_px

    # ... so the frame still shows between them: not a solid cyan block.
    shot = panel.view.grab().toImage()
    frame = panel.viewbox.mapViewToDevice(panel.image.boundingRect()).boundingRect().toRect()
    frame = frame.intersected(shot.rect()).adjusted(2, 2, -2, -2)
    cyan = total = 0
    for y in range(frame.top(), frame.bottom(), 2):
        for x in range(frame.left(), frame.right(), 2):
            c = shot.pixelColor(x, y)
            total += 1
            cyan += c.blue() > 200 and c.green() > 180 and c.red() < 120
    assert total > 500 and cyan / total < 0.5, cyan / total  # 0.77 with 7-pixel markers
