"""The first-run tour on the empty canvas: it says what to do next, its buttons do it, it follows
whether a model is registered, and it makes way for the first image."""
from __future__ import annotations

import pytest
from _gui_helpers import make_tiny_checkpoint, open_main_window
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from sasnet_core.weights.registry import ModelRegistry


@pytest.fixture
def window(qtbot):
    w = open_main_window(qtbot, load_default=True, size=(1200, 800))
    qtbot.waitUntil(lambda: not w.controller.is_busy(), timeout=60_000)
    yield w
    w.controller.wait()


def _shown(widget) -> bool:
    return widget.isVisible()


def test_empty_window_shows_both_steps_over_the_whole_canvas(window):
    tour = window.welcome
    assert _shown(tour) and _shown(tour.open_step) and _shown(tour.model_step)
    assert tour.geometry() == window.canvas.rect()  # covers the grey area
    card = tour.card.geometry()
    assert abs(card.center().x() - tour.rect().center().x()) <= 2  # centred
    assert card.height() < window.canvas.height()  # fits on one screen
    texts = " ".join(lbl.text() for lbl in (tour.open_step.text, tour.model_step.text))
    assert "Drop images, a folder" in texts and "File\u00a0\u25b8\u00a0Open" in texts and "SHHA" in texts


def test_open_images_button_opens_and_the_tour_makes_way(qtbot, window, tmp_path, gui, monkeypatch):
    image = gui.write_images(tmp_path, n=1)[0]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(image)], ""))
    with qtbot.waitSignal(window.session.imageShown, timeout=10_000):
        qtbot.mouseClick(window.welcome.open_button, Qt.LeftButton)
    assert window.session.current == str(image)
    assert not _shown(window.welcome)


def test_images_dropped_on_the_tour_open(qtbot, window, tmp_path, gui):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    folder = tmp_path / "photos"
    gui.write_images(folder, n=2)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    at = window.welcome.card.geometry().center()
    enter = QDragEnterEvent(at, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window.welcome, enter)  # reaches the window, which takes drops
    assert enter.isAccepted()
    with qtbot.waitSignal(window.session.imageShown, timeout=10_000):
        QApplication.sendEvent(window.welcome, QDropEvent(QPointF(at), Qt.CopyAction, mime, Qt.LeftButton,
                                                          Qt.NoModifier))
    assert len(window.files.paths()) == 2 and not _shown(window.welcome)


def test_an_image_that_cannot_be_shown_is_named_on_the_canvas_not_greeted(qtbot, window, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with qtbot.waitSignal(window.session.imageFailed, timeout=10_000):
        window.open_paths([str(broken)])
    assert not _shown(window.welcome)
    hint = window.canvas.empty_hint
    assert hint.isVisible() and hint.text().startswith("broken.jpg could not be opened: ")
    assert window.statusBar().currentMessage().startswith("broken.jpg: ")


def test_a_video_alone_is_named_on_the_canvas_not_greeted(qtbot, window, tmp_path):
    from test_imageio_video import make_video

    video = make_video(tmp_path / "street.avi", frames=4)
    window.open_paths([str(video)])
    qtbot.waitUntil(lambda: window.panel("video") is not None and window.panel("video").isVisible(), timeout=10_000)
    assert not _shown(window.welcome)
    assert window.canvas.empty_hint.text().startswith("street.avi is open in the Video panel")


def test_get_released_button_opens_the_download_dialog(qtbot, window):
    qtbot.mouseClick(window.welcome.get_model_button, Qt.LeftButton)
    dlg = window.released_dialog
    qtbot.waitUntil(dlg.isVisible)
    assert dlg.chosen() == "shha" and not dlg.is_running()  # nothing starts before the person asks
    qtbot.mouseClick(dlg.cancel_button, Qt.LeftButton)
    assert not dlg.isVisible()


def test_add_model_button_registers_the_file_and_only_the_image_step_stays(qtbot, window, tmp_path, monkeypatch):
    ckpt = make_tiny_checkpoint(tmp_path / "mine.pth")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(ckpt), ""))
    qtbot.mouseClick(window.welcome.add_model_button, Qt.LeftButton)
    qtbot.waitUntil(window.controller.has_model, timeout=60_000)
    assert ModelRegistry().default().name == "mine"
    assert _shown(window.welcome) and _shown(window.welcome.open_step)
    assert not _shown(window.welcome.model_step)


def test_with_a_registered_model_only_the_image_step_shows(qtbot, tmp_path):
    ModelRegistry().add("tiny", make_tiny_checkpoint(tmp_path / "tiny.pth"))
    w = open_main_window(qtbot)  # registered, not loaded yet
    assert _shown(w.welcome.open_step) and not _shown(w.welcome.model_step)
