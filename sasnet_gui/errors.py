"""Show a person's error (a bad file, a wrong checkpoint) in a dialog that names the file and the
problem; the window keeps running. Bugs (anything that is not a SASNetError) keep a traceback in
the details."""
from __future__ import annotations

import logging
import traceback

from PySide6.QtWidgets import QMessageBox, QWidget

from sasnet_core.errors import SASNetError

log = logging.getLogger("sasnet_gui")


def describe(exc: BaseException | str) -> tuple[str, str | None, str]:
    """(problem, file or None, details) for any error."""
    if isinstance(exc, str):
        return exc, None, ""
    if isinstance(exc, SASNetError):
        return exc.detail, exc.path, ""
    path = getattr(exc, "filename", None)
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"{type(exc).__name__}: {exc}", str(path) if path else None, details


def show_error(parent: QWidget | None, exc: BaseException | str, title: str = "SASNet Studio",
               what: str | None = None) -> QMessageBox:
    """Open a (non-blocking, window-modal) message box and return it.

    ``what`` says what was being done ("Could not open the image"). The box names the file on its
    own line so a person can find it.
    """
    problem, path, details = describe(exc)
    log.warning("%s%s: %s", f"{what}: " if what else "", path or "", problem)
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Warning)
    box.setWindowTitle(title)
    box.setText(what or "Something went wrong")
    info = f"File: {path}\n\n{problem}" if path else problem
    box.setInformativeText(info)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.Ok)
    box.setObjectName("errorDialog")
    box.open()  # not exec(): the event loop (and background counting) keeps running
    if parent is not None:
        parent.setProperty("lastError", info)
    return box
