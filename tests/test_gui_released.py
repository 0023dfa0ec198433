"""Getting a model in the app: "Get the released model…" (download, verify, register, load) against
a local HTTP server, and dragging a checkpoint onto the window. The released files are stood in
for by tiny checkpoints whose expected sha256 the tests set."""
from __future__ import annotations

import dataclasses
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from _gui_helpers import make_tiny_checkpoint, open_main_window
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton

from sasnet_core.util import paths
from sasnet_core.weights.registry import ModelRegistry
from sasnet_core.weights.released import DRIVE_FOLDER_URL, RELEASED

CHUNK = 1 << 20


class _Server:
    """Serves ``body`` at /SHHA.pth; ``status`` other than 200 answers an error; with ``hold``
    set it sends the first MiB and waits for ``release`` before the rest."""

    def __init__(self):
        self.body, self.status, self.hold = b"", 200, False
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server name
                if server.status != 200:
                    self.send_error(server.status)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                try:
                    if server.hold:
                        self.wfile.write(server.body[:CHUNK])
                        self.wfile.flush()
                        server.release.wait(20)
                        self.wfile.write(server.body[CHUNK:])
                    else:
                        self.wfile.write(server.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *_args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/SHHA.pth"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    s = _Server()
    monkeypatch.setenv(RELEASED["shha"].url_variable, s.url)
    yield s
    s.close()


def expect_released(monkeypatch, key: str, content: bytes) -> None:
    """Make ``content`` the released file ``key`` (its sha256 and size)."""
    model = dataclasses.replace(RELEASED[key], sha256=hashlib.sha256(content).hexdigest(), size=len(content))
    monkeypatch.setitem(RELEASED, key, model)


@pytest.fixture
def window(qtbot):
    w = open_main_window(qtbot)
    yield w
    w.controller.wait()


@pytest.fixture
def tiny_bytes(tmp_path) -> bytes:
    return make_tiny_checkpoint(tmp_path / "stand-in" / "weights.pth").read_bytes()


def _open_dialog(qtbot, window):
    window.act_get_released.trigger()  # Model ▸ Get the Released Model…
    dlg = window.released_dialog
    qtbot.waitUntil(dlg.isVisible)
    return dlg


def _models_folder_files() -> list[str]:
    folder = paths.models_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# -- downloading ------------------------------------------------------------------------------
def test_download_verifies_registers_as_default_and_loads(qtbot, window, server, tiny_bytes, monkeypatch):
    server.body = tiny_bytes
    expect_released(monkeypatch, "shha", tiny_bytes)
    assert window.welcome.model_step.isVisibleTo(window.welcome)
    dlg = _open_dialog(qtbot, window)
    assert dlg.chosen() == "shha"

    with qtbot.waitSignal(dlg.modelReady, timeout=60_000) as ready:
        qtbot.mouseClick(dlg.download_button, Qt.LeftButton)
    qtbot.waitUntil(window.controller.has_model, timeout=60_000)

    assert ready.args == ["shha"]
    entry = ModelRegistry().get("shha")
    assert entry is not None and entry.is_default and entry.identity["status"] == "verified"
    assert entry.path.read_bytes() == tiny_bytes and entry.path.parent == paths.models_dir()
    assert window.controller.current_name() == "shha"
    assert not dlg.isVisible()
    assert window.model_label.text().startswith("shha \u00b7 ") and not window.banner.isVisible()
    assert not window.get_model_button.isVisible()
    assert not window.welcome.model_step.isVisibleTo(window.welcome)  # only the image step is left


def _fails(qtbot, window) -> object:
    dlg = _open_dialog(qtbot, window)
    qtbot.mouseClick(dlg.download_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not dlg.is_running(), timeout=30_000)
    assert dlg.isVisible() and dlg.last_error
    assert ModelRegistry().entries() == [] and _models_folder_files() == []
    assert not window.controller.has_model()
    steps = dlg.manual_label
    assert steps.isVisible() and steps.openExternalLinks()
    assert f'href="{DRIVE_FOLDER_URL}"' in steps.text()
    assert "drag the file onto this window" in steps.text() and "Models" in steps.text()
    assert dlg.download_button.isEnabled() and dlg.download_button.text() == "Try Again"
    return dlg


def test_a_file_with_the_wrong_hash_is_not_registered(qtbot, window, server, tiny_bytes, monkeypatch):
    server.body = tiny_bytes
    expect_released(monkeypatch, "shha", tiny_bytes[:-1] + b"x")  # same size, other bytes
    dlg = _fails(qtbot, window)
    assert "sha256" in dlg.last_error and "nothing was registered" in dlg.last_error
    assert dlg.last_error.count(". ") == 0  # one sentence; the steps are the dialog's own


def test_a_server_error_is_one_sentence_and_the_manual_steps(qtbot, window, server, tiny_bytes, monkeypatch):
    server.status = 503
    expect_released(monkeypatch, "shha", tiny_bytes)
    dlg = _fails(qtbot, window)
    assert "503" in dlg.last_error


def test_offline_says_so_and_shows_the_manual_steps(qtbot, window, tiny_bytes, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on: what a machine without network sees
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(RELEASED["shha"].url_variable, f"http://127.0.0.1:{port}/SHHA.pth")
    expect_released(monkeypatch, "shha", tiny_bytes)
    dlg = _fails(qtbot, window)
    assert "offline" in dlg.last_error


def test_cancel_stops_the_download_and_keeps_nothing(qtbot, window, server, monkeypatch):
    body = bytes(range(256)) * (3 * CHUNK // 256)  # 3 MiB
    server.body, server.hold = body, True
    expect_released(monkeypatch, "shha", body)
    dlg = _open_dialog(qtbot, window)
    qtbot.mouseClick(dlg.download_button, Qt.LeftButton)
    # The first MiB arrives while the server holds the rest: the bar moves, the window answers.
    qtbot.waitUntil(lambda: dlg.progress.value() > 0, timeout=20_000)
    assert dlg.is_running() and dlg.progress.isVisible()
    window.act_tool_pan.trigger()
    assert window.canvas.tool == "pan"

    qtbot.mouseClick(dlg.cancel_button, Qt.LeftButton)
    server.release.set()
    qtbot.waitUntil(lambda: not dlg.is_running(), timeout=20_000)
    assert not dlg.isVisible() and dlg.last_error is None
    assert ModelRegistry().entries() == [] and _models_folder_files() == []
    assert not window.controller.has_model()


# -- dragging a checkpoint onto the window ----------------------------------------------------
def _drop(qtbot, window, *files: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(f)) for f in files])
    enter = QDragEnterEvent(window.rect().center(), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(window.rect().center()), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window, drop)


def test_dropped_checkpoint_is_registered_recognised_and_loaded(qtbot, window, tmp_path, monkeypatch):
    ckpt = make_tiny_checkpoint(tmp_path / "crowd_weights.pth")
    expect_released(monkeypatch, "shhb", ckpt.read_bytes())  # the content is SHHB, whatever the name

    _drop(qtbot, window, ckpt)
    qtbot.waitUntil(window.controller.has_model, timeout=60_000)

    entry = ModelRegistry().get("crowd_weights")
    assert entry is not None and entry.is_default and entry.path == ckpt.resolve()
    assert entry.identity["status"] == "verified" and entry.identity["dataset"] == "ShanghaiTech B"
    assert window.controller.current_name() == "crowd_weights"
    assert not window.welcome.model_step.isVisibleTo(window.welcome)


def test_dropped_second_model_is_offered_as_default(qtbot, window, tmp_path):
    first = make_tiny_checkpoint(tmp_path / "first.pth", seed=1)
    second = make_tiny_checkpoint(tmp_path / "second.pth", seed=2)
    _drop(qtbot, window, first)
    qtbot.waitUntil(window.controller.has_model, timeout=60_000)

    _drop(qtbot, window, second)
    qtbot.waitUntil(lambda: window.model_adder.offer_box is not None and window.model_adder.offer_box.isVisible(),
                    timeout=60_000)
    box = window.model_adder.offer_box
    assert "second" in box.text()
    assert ModelRegistry().default().name == "first"  # nothing changes before the person answers
    use_default = next(b for b in box.findChildren(QPushButton) if b.text() == "Use and Make Default")
    qtbot.mouseClick(use_default, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.controller.current_name() == "second", timeout=60_000)
    assert ModelRegistry().default().name == "second"


def test_dropped_file_that_is_not_a_checkpoint_names_the_file(qtbot, window, tmp_path):
    bad = tmp_path / "notes.pth"
    bad.write_text("these are my notes, not weights")

    _drop(qtbot, window, bad)
    qtbot.waitUntil(lambda: bool(window.property("lastError")), timeout=30_000)

    assert str(bad) in window.property("lastError")
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible() and b.objectName() == "errorDialog"]
    assert boxes and str(bad) in boxes[-1].informativeText()
    assert ModelRegistry().entries() == [] and not window.controller.has_model()


def test_images_dropped_with_a_checkpoint_still_open(qtbot, window, tmp_path, gui):
    image = gui.write_images(tmp_path / "photos", n=1)[0]
    ckpt = make_tiny_checkpoint(tmp_path / "model.pth")
    with qtbot.waitSignal(window.session.imageShown, timeout=10_000):
        _drop(qtbot, window, image, ckpt)
    qtbot.waitUntil(window.controller.has_model, timeout=60_000)
    assert window.files.paths() == [str(image)]
    assert ModelRegistry().get("model") is not None


# -- the Models dialog: the same button, and what a file is from its content -------------------
def _models_dialog(qtbot, window):
    from sasnet_gui.models.dialog import COLUMNS, ModelsDialog

    window.act_models.trigger()  # Model ▸ Models…
    dlg = window.findChild(ModelsDialog)
    qtbot.waitUntil(dlg.isVisible)

    def row(name: str) -> dict:
        for r in range(dlg.table.rowCount()):
            if dlg.table.item(r, 0).data(Qt.UserRole) == name:
                return {c: dlg.table.item(r, i).text() for i, c in enumerate(COLUMNS)}
        raise AssertionError(f"{name} is not listed")

    return dlg, row


def test_models_dialog_gets_the_released_model(qtbot, window, server, tiny_bytes, monkeypatch):
    server.body = tiny_bytes
    expect_released(monkeypatch, "shha", tiny_bytes)
    models, row = _models_dialog(qtbot, window)
    assert models.empty_label.isVisible() and models.get_released_button.isVisible()

    qtbot.mouseClick(models.get_released_button, Qt.LeftButton)
    get = models.released_dialog
    qtbot.waitUntil(get.isVisible)
    with qtbot.waitSignal(get.modelReady, timeout=60_000):
        qtbot.mouseClick(get.download_button, Qt.LeftButton)
    qtbot.waitUntil(window.controller.has_model, timeout=60_000)

    cells = row("shha")
    assert cells["Kind"] == "released (authors', verified)" and cells["Trained on"] == "ShanghaiTech A"
    assert "default" in cells["Name"]


def test_a_file_named_like_a_release_but_different_is_listed_as_modified(qtbot, window, tmp_path):
    fake = make_tiny_checkpoint(tmp_path / "SHHA.pth")  # the name claims SHHA; the bytes are not it
    _drop(qtbot, window, fake)
    qtbot.waitUntil(window.controller.has_model, timeout=60_000)
    _models, row = _models_dialog(qtbot, window)
    cells = row("SHHA")
    assert cells["Kind"] == "modified released model" and cells["Trained on"] != "ShanghaiTech A"


def test_download_takes_the_next_name_when_a_model_of_that_name_exists(qtbot, window, server, tiny_bytes,
                                                                      tmp_path, monkeypatch):
    mine = make_tiny_checkpoint(tmp_path / "my-own.pth", seed=3)
    ModelRegistry().add("shha", mine)  # a person's own model, named like the release
    server.body = tiny_bytes
    expect_released(monkeypatch, "shha", tiny_bytes)
    dlg = _open_dialog(qtbot, window)
    with qtbot.waitSignal(dlg.modelReady, timeout=60_000) as ready:
        qtbot.mouseClick(dlg.download_button, Qt.LeftButton)
    assert ready.args == ["shha-2"]
    registry = ModelRegistry()
    assert registry.get("shha").path == mine.resolve()  # untouched, still the default
    assert registry.default().name == "shha"
    assert registry.get("shha-2").identity["status"] == "verified"


def test_every_no_model_place_offers_the_download(qtbot, window):
    """The banner, the status bar, the empty canvas and the menu all open the same dialog."""
    places = [lambda: qtbot.mouseClick(window.banner.get_button, Qt.LeftButton),
              lambda: qtbot.mouseClick(window.get_model_button, Qt.LeftButton),
              lambda: qtbot.mouseClick(window.welcome.get_model_button, Qt.LeftButton),
              window.act_get_released.trigger]
    assert window.get_model_button.isVisible() and window.banner.get_button.isVisible()
    for open_it in places:
        open_it()
        dlg = window.released_dialog
        qtbot.waitUntil(dlg.isVisible)
        qtbot.keyClick(dlg, Qt.Key_Escape)  # closes it, as a person would
        assert not dlg.isVisible()
