"""Every menu action of the main window, triggered as a person would, in the three states a person
meets first: nothing open, images open without a model, and a model loaded.

No action may raise (an exception in a slot reaches ``sys.excepthook``) or show an error dialog
(every error dialog goes through ``sasnet_gui.errors.show_error``). File dialogs answer "cancel",
questions answer "No", and any other modal window is closed as soon as it opens.
"""
from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFileDialog,
    QInputDialog,
    QMessageBox,
)

from sasnet_gui import errors

STATES = ("nothing open", "images open, no model", "model loaded")


class Recorder:
    """What the app did that a person would see: exceptions, error dialogs, other dialogs."""

    def __init__(self):
        self.exceptions: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.open_files: list[str] = []  # what the next File > Open dialog "chooses"

    def problems(self) -> list[str]:
        return self.exceptions + self.errors


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    real_show_error = errors.show_error

    def show_error(parent, exc, title="SASNet Studio", what=None):
        problem, path, _details = errors.describe(exc)
        rec.errors.append(f"{what}: {path or ''} {problem}")
        return real_show_error(parent, exc, title, what)

    monkeypatch.setattr(errors, "show_error", show_error)
    monkeypatch.setattr(sys, "excepthook",
                        lambda etype, value, tb: rec.exceptions.append(f"{etype.__name__}: {value}"))

    def dialog(kind, answer):
        def ask(*args, **kwargs):
            rec.dialogs.append(kind)
            return answer() if callable(answer) else answer
        return staticmethod(ask)

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", dialog("open files", lambda: (list(rec.open_files), "")))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", dialog("open file", ("", "")))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", dialog("save file", ("", "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", dialog("folder", ""))
    monkeypatch.setattr(QInputDialog, "getText", dialog("text", ("", False)))
    monkeypatch.setattr(QMessageBox, "question", dialog("question", QMessageBox.StandardButton.No))
    monkeypatch.setattr(QMessageBox, "about", dialog("about", None))
    monkeypatch.setattr(QDesktopServices, "openUrl", dialog("open url", True))
    return rec


def _close_dialogs() -> None:
    """Close whatever modal or window-modal dialog an action left open (as Esc would)."""
    modal = QApplication.activeModalWidget()
    if modal is not None:
        modal.close()
    for w in QApplication.topLevelWidgets():
        if isinstance(w, QDialog) and w.isVisible():
            w.reject()


def _menu_actions(window) -> list[QAction]:
    """Every action reachable from the menu bar, depth first, each once (Quit left out)."""
    seen: list[QAction] = []

    def walk(menu):
        menu.aboutToShow.emit()  # menus filled on opening (Open Recent) fill themselves now
        for a in menu.actions():
            if a.menu() is not None:
                walk(a.menu())
            elif not a.isSeparator() and a not in seen and a is not window.act_quit:
                seen.append(a)

    for top in window.menuBar().actions():
        walk(top.menu())
    return seen


def _trigger_all(qtbot, window, recorder) -> list[str]:
    triggered = []
    for action in _menu_actions(window):
        text = action.text().replace("&", "")
        before = len(recorder.problems())
        action.trigger()
        QApplication.processEvents()
        _close_dialogs()
        if action.isCheckable() and action.actionGroup() is None:
            action.trigger()  # toggles go back, so later actions see the same state
            QApplication.processEvents()
        _close_dialogs()
        new = recorder.problems()[before:]
        assert not new, f"{text!r} failed: {new}"
        triggered.append(text)
    window.counter.cancel()
    window.counter.wait_idle()
    QApplication.processEvents()
    return triggered


def _enter(state, qtbot, window, recorder, fake_controller, tiny_predictor, images):
    if state != "nothing open":
        recorder.open_files = [str(p) for p in images]
        with qtbot.waitSignal(window.session.imageShown, timeout=10_000):
            window.act_open.trigger()
        recorder.open_files = []
        # A point a person placed on each image: File ▸ Open Recent lists each image, and the
        # menu walk opens them, so whichever ends on screen has one.
        for i in range(len(images)):
            if i:
                with qtbot.waitSignal(window.session.imageShown, timeout=10_000):
                    window.act_next.trigger()
            window.document.add_point(5, 5)
    if state == "model loaded":
        with qtbot.waitSignal(window.counter.idle, timeout=60_000):
            fake_controller.set(tiny_predictor)


@pytest.mark.parametrize("state", STATES)
def test_every_menu_action_works_in_each_state(state, qtbot, main_window, recorder, fake_controller,
                                               tiny_predictor, tmp_path, gui):
    w = main_window
    images = gui.write_images(tmp_path / "imgs", n=2, h=64, w=96)
    _enter(state, qtbot, w, recorder, fake_controller, tiny_predictor, images)
    # Close any window-modal dialog that an exec() left running (a nested event loop keeps timers).
    guard = QTimer(interval=50)
    guard.timeout.connect(_close_dialogs)
    guard.start()
    try:
        triggered = _trigger_all(qtbot, w, recorder)
    finally:
        guard.stop()
    names = set(triggered)
    assert {"Open\u2026", "Export Annotations\u2026", "Models\u2026", "Count All Images",
            "Open Log Folder", "About SASNet Studio"} <= names
    assert len(triggered) >= 35  # the whole menu bar, not a lucky few
    assert recorder.problems() == []
    if state == "model loaded":  # "Start from Model Points" asked before replacing the placed point
        assert "question" in recorder.dialogs

    w.act_quit.trigger()
    assert not w.isVisible() and recorder.problems() == []


def test_shortcuts_reach_the_same_actions(qtbot, main_window, recorder, tmp_path, gui):
    """Ctrl+E (Export Annotations) pressed on the keyboard opens the export dialog, no error."""
    from PySide6.QtCore import Qt

    w = main_window
    recorder.open_files = [str(p) for p in gui.write_images(tmp_path, n=1, h=64, w=96)]
    with qtbot.waitSignal(w.session.imageShown, timeout=10_000):
        qtbot.keyClick(w, Qt.Key_O, Qt.ControlModifier)
    qtbot.keyClick(w, Qt.Key_E, Qt.ControlModifier)
    dialogs = [d for d in QApplication.topLevelWidgets() if isinstance(d, QDialog) and d.isVisible()]
    assert dialogs and recorder.problems() == []
    _close_dialogs()


def test_no_two_actions_share_a_shortcut(main_window):
    """Qt ignores a key that two actions claim ("ambiguous shortcut"): both would stop working."""
    owners: dict[str, list[str]] = {}
    for action in main_window.findChildren(QAction):
        for key in action.shortcuts():
            owners.setdefault(key.toString(), []).append(action.text())
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}
    assert {"Ctrl+O", "Ctrl+E", "F5", "PgDown", "Ctrl+Z"} <= set(owners)
