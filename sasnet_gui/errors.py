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


_REFCOUNT_GUARD_DONE = False


def guard_pyside_bool_refcount() -> bool:
    """Work around a PySide6 bug that crashes a long session: on PySide6 6.12.0 with Python 3.11,
    every ``SignalInstance.emit()`` from Python returns ``True`` without taking a reference, so
    each emit costs one reference of ``True``; after a few hundred emits (one click is several)
    Python aborts with "bool_dealloc: deallocating True or False".

    We detect the leak with one test emit and, only when it is there, give ``True`` and ``False``
    2**40 extra references (they are never freed anyway; Python 3.12+ makes them immortal).
    Returns True when the guard was applied. Safe to call more than once.
    """
    global _REFCOUNT_GUARD_DONE
    if _REFCOUNT_GUARD_DONE:
        return False
    _REFCOUNT_GUARD_DONE = True
    import ctypes
    import sys

    from PySide6.QtCore import QObject, Signal

    if sys.version_info >= (3, 12):
        return False

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    if sys.getrefcount(True) >= before:
        return False
    for obj in (True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
    log.info("applied the PySide6 emit() refcount guard")
    return True


guard_pyside_bool_refcount()
