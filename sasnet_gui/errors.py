"""Every error dialog of the app: one sentence that names the file and the problem, and the window
keeps running.

A person's error (a bad file, a wrong checkpoint: a ``SASNetError``) is shown as it is. Anything
else is a bug: the dialog says so briefly, and the log file gets the full traceback (Help > Open
Log Folder finds it). ``install_excepthook`` routes exceptions nobody caught (in slots, timers,
worker callbacks) to the same dialog instead of a traceback on a console nobody sees.
"""
from __future__ import annotations

import logging
import sys
import traceback

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from sasnet_core.util.errors import SASNetError

log = logging.getLogger(__name__)


def describe(exc: BaseException | str) -> tuple[str, str | None, str]:
    """(problem, file or None, details) for any error."""
    if isinstance(exc, str):
        return exc, None, ""
    if isinstance(exc, SASNetError):
        return exc.detail, exc.path, ""
    path = getattr(exc, "filename", None)
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"{type(exc).__name__}: {exc}", str(path) if path else None, details


def _log(what: str | None, exc: BaseException | str, problem: str, path: str | None) -> None:
    text = f"{what + ': ' if what else ''}{path + ': ' if path else ''}{problem}"
    if isinstance(exc, BaseException) and not isinstance(exc, (SASNetError, OSError)):
        log.error(text, exc_info=(type(exc), exc, exc.__traceback__))  # a bug: keep the traceback
    else:
        log.warning(text)


def show_error(parent: QWidget | None, exc: BaseException | str, title: str = "SASNet Studio",
               what: str | None = None) -> QMessageBox:
    """Open a (non-blocking, window-modal) message box and return it.

    ``what`` says what was being done ("Could not open the image"). The box names the file on its
    own line so a person can find it.
    """
    problem, path, details = describe(exc)
    _log(what, exc, problem, path)
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Warning)
    box.setWindowTitle(title)
    box.setText(what or "Something went wrong")
    info = f"File: {path}\n\n{problem}" if path else problem
    box.setInformativeText(info)
    # Wide enough that a file path stays on one or two lines (the default box is very narrow).
    box.setStyleSheet("QLabel#qt_msgbox_informativelabel { min-width: 460px; }")
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.Ok)
    box.setObjectName("errorDialog")
    box.setAttribute(Qt.WA_DeleteOnClose)
    box.open()  # not exec(): the event loop (and background counting) keeps running
    if parent is not None:
        parent.setProperty("lastError", info)
    return box


def show_error_once(parent: QWidget, key, exc: BaseException | str, what: str | None = None
                    ) -> QMessageBox | None:
    """``show_error``, unless the same ``key`` (say the file and its problem) was shown over
    ``parent`` before: the reason stays on screen where the item is shown (list, panel, status
    bar), and a dialog at every visit would stand between the person and their work."""
    shown = parent.__dict__.setdefault("_errors_shown", set())
    if key in shown:
        _log(what, exc, *describe(exc)[:2])
        return None
    shown.add(key)
    return show_error(parent, exc, what=what)


def install_excepthook(window) -> None:
    """Show exceptions nobody caught in a dialog over ``window`` (after saving the open
    annotation), and log them with their traceback."""
    previous = sys.excepthook

    def hook(etype, value, tb):
        if issubclass(etype, KeyboardInterrupt):
            previous(etype, value, tb)
            return
        try:
            window.document.flush()
            show_error(window, value.with_traceback(tb), what="Unexpected error (your work is saved)")
        except Exception:  # noqa: BLE001 - never let the hook itself crash
            previous(etype, value, tb)

    sys.excepthook = hook
