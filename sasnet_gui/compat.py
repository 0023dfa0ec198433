"""Work-arounds for bugs in the Qt bindings, applied once when ``sasnet_gui`` is imported."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)
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
