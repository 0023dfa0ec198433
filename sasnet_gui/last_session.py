"""Reopening the last session at start: what was opened (folders and files, as given to Open),
the image on screen and its zoom, kept in the app's settings and opened again when the app starts
without paths. A folder or file that is gone is skipped with one line in the status bar.

What is remembered is this run's: the list starts empty at each start (or with what was
reopened), so starting ``sasnet-gui photos/`` makes ``photos/`` the next session.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

from PySide6.QtCore import QObject, QPointF

log = logging.getLogger(__name__)

PATHS, CURRENT, VIEW, REOPEN = "session/paths", "session/current", "session/view", "session/reopen"
MAX_PATHS = 200  # a person who dropped images one by one for a day still gets them back


def _as_list(value) -> list[str]:
    if isinstance(value, str):  # QSettings gives back a one-item list as a plain string
        value = [value]
    return [str(v) for v in (value or []) if v]


def _as_view(value) -> tuple[QPointF, float] | None:
    """(centre, zoom) from the saved ``[x, y, zoom]``; None for anything else."""
    try:
        x, y, zoom = (float(v) for v in _as_list(value))
    except (TypeError, ValueError):
        return None
    return (QPointF(x, y), zoom) if zoom > 0 and math.isfinite(zoom) else None


class LastSession(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.settings = window.settings
        self._paths: list[str] = []
        self._pending_view: tuple[str, tuple[QPointF, float]] | None = None
        self._pending_note: str | None = None  # what was skipped, said once the image is on screen
        window.session.imageShown.connect(self._on_shown)

    # -- remembering ------------------------------------------------------------------------------
    @property
    def reopen_at_start(self) -> bool:
        return self.settings.bool(REOPEN, True)

    def set_reopen_at_start(self, on: bool) -> None:
        self.settings.set_value(REOPEN, bool(on))

    def note_opened(self, paths) -> None:
        """Paths given to Open (files, folders, videos) join this session's list."""
        for p in paths:
            p = str(Path(p).absolute())
            if p in self._paths:
                self._paths.remove(p)
            self._paths.append(p)
        del self._paths[:-MAX_PATHS]
        self.settings.set_value(PATHS, list(self._paths))

    def _on_shown(self, path: str) -> None:
        self.settings.set_value(CURRENT, path)
        pending, self._pending_view = self._pending_view, None
        if pending is not None and pending[0] == path:
            centre, zoom = pending[1]
            self.window.canvas.zoom_to(zoom, centre)
        note, self._pending_note = self._pending_note, None
        if note:  # the status bar keeps a message for the image on screen when it was posted
            self.window.statusBar().showMessage(note, 15000)

    def remember_view(self) -> None:
        """At close: the zoom of the image on screen and the point at the centre of the view
        (the window may open at another size: the zoom, not the area shown, is what is kept)."""
        current = self.window.session.current
        if current is None:
            return
        c = self.window.canvas.view_rect().center()
        self.settings.set_value(CURRENT, current)
        self.settings.set_value(VIEW, [c.x(), c.y(), self.window.canvas.zoom_scale()])

    # -- reopening --------------------------------------------------------------------------------
    def restore(self) -> list[str]:
        """Open the last session's paths again; returns the images added. Does nothing when the
        person turned it off or nothing was open."""
        if not self.reopen_at_start:
            return []
        saved = _as_list(self.settings.value(PATHS, []))
        there = [p for p in saved if Path(p).exists()]
        gone = [p for p in saved if p not in there]
        for p in gone:
            log.warning("last session: %s is gone; skipped", p)
        current = self.settings.value(CURRENT)
        current = str(current) if current else None
        view = _as_view(self.settings.value(VIEW))
        added = []
        note = None
        if gone:
            more = f" (and {len(gone) - 1} more)" if len(gone) > 1 else ""
            note = f"Last session: {gone[0]} is no longer there; skipped{more}"
        if there:
            self.window.open_paths(there, show_first=False)
            added = self.window.files.paths()
            show = current if current in added else (added[0] if added else None)
            if show is not None:
                if show == current and view is not None:
                    self._pending_view = (show, view)
                self.window.file_dock.select_path(show)
                self._pending_note, note = note, None
                self.window.session.show(show)
        if note:
            self.window.statusBar().showMessage(note, 15000)
        return added
