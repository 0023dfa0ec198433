"""``sasnet-gui [PATH...]``: start SASNet Studio, opening the given images, folders or videos.

The window shows first; torch is imported later, in the model controller's worker thread, when
the default model loads (so the window appears in well under a second). SIGINT and SIGTERM save
the current annotation before quitting; uncaught exceptions in slots are shown in a dialog
instead of killing the app, and written with their traceback to the log file.

Before Qt starts, the X11 libraries its xcb plugin needs are checked: when one is missing the
command names the package to install and exits with status 1 (Qt itself would abort the process).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from sasnet_core.util import platform_check
from sasnet_core.util.errors import SASNetError
from sasnet_core.util.logs import setup_logging
from sasnet_core.util.paths import data_dir

log = logging.getLogger(__name__)


def _parse(argv):
    p = argparse.ArgumentParser(prog="sasnet-gui", description="Count people in crowd images and videos with SASNet.")
    p.add_argument("paths", nargs="*", help="images, folders of images, or videos to open")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--weights", help="a checkpoint file or registered model name to use instead of the default")
    which.add_argument("--no-model", action="store_true", help="start without loading any model")
    return p.parse_args(argv)


def _install_handlers(app, window) -> None:
    from PySide6.QtCore import QTimer

    # deferred: Qt, imported only after the platform check (missing_libraries_refusal)
    from sasnet_gui import errors

    def quit_cleanly(*_):
        window.document.flush()
        window.close()
        app.quit()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, quit_cleanly)
        except (ValueError, OSError):  # not the main thread, or not on this platform
            pass
    # Python only runs signal handlers between bytecodes; a idle timer gives it the chance.
    timer = QTimer(window, interval=250)
    timer.timeout.connect(lambda: None)
    timer.start()
    errors.install_excepthook(window)


def apply_dark_palette(app) -> None:
    """A dark Fusion palette: photos and overlays read better on dark grey than on white."""
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    pal = QPalette()
    base, window, text = QColor("#1e1e1e"), QColor("#2b2b2b"), QColor("#e6e6e6")
    for role, colour in ((QPalette.Window, window), (QPalette.WindowText, text), (QPalette.Base, base),
                         (QPalette.AlternateBase, QColor("#262626")), (QPalette.Text, text),
                         (QPalette.Button, window), (QPalette.ButtonText, text),
                         (QPalette.ToolTipBase, QColor("#333333")), (QPalette.ToolTipText, text),
                         (QPalette.Highlight, QColor("#2f7fd0")), (QPalette.HighlightedText, QColor("#ffffff")),
                         (QPalette.PlaceholderText, QColor("#8a8a8a")),
                         (QPalette.Link, QColor("#6cb4ff")), (QPalette.LinkVisited, QColor("#b39ddb"))):
        pal.setColor(role, colour)
    pal.setColor(QPalette.Disabled, QPalette.Text, QColor("#777777"))
    pal.setColor(QPalette.Disabled, QPalette.ButtonText, QColor("#777777"))
    pal.setColor(QPalette.Disabled, QPalette.WindowText, QColor("#777777"))
    app.setPalette(pal)


def create_window(paths=(), weights=None, no_model=False, controller=None):
    """Build and show the window (used by ``main`` and the tests)."""
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major")
    # deferred: Qt, imported only after the platform check (missing_libraries_refusal)
    from sasnet_gui.main_window import MainWindow

    if controller is None:
        try:
            # deferred: Qt and torch, after the platform check
            from sasnet_gui.models.controller import ModelController

            # --no-model: the controller still manages models (Models dialog), it only starts empty.
            controller = ModelController(load_default=weights is None and not no_model)
        except ImportError:
            controller = None
    window = MainWindow(controller=controller)
    if controller is not None and weights:
        controller.load(weights)
    window.show()
    from PySide6.QtCore import QTimer

    if paths:
        QTimer.singleShot(0, lambda: window.open_paths(list(paths)))
    else:  # the folders, image and zoom of the last session, unless the person turned that off
        QTimer.singleShot(0, window.last_session.restore)
    return window


def missing_libraries_refusal() -> str | None:
    """The line to print when Qt's X11 plugin would abort for want of a system library (it kills
    the process with "could not load the Qt platform plugin xcb", beyond any ``try``); else None.
    Asked before the QApplication exists; other platforms (offscreen, wayland) are not checked."""
    missing = platform_check.missing_qt_libraries()
    if not missing:
        return None
    return f"sasnet-gui: error: {platform_check.missing_qt_libraries_message(missing)}"


def _user_folders_refusal() -> str | None:
    """One line when the folders for models, settings and logs cannot be used at all."""
    try:
        data_dir()
    except SASNetError as exc:
        return f"sasnet-gui: error: {exc}"
    return None


def main(argv=None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    refusal = missing_libraries_refusal() or _user_folders_refusal()
    if refusal:
        print(refusal, file=sys.stderr)
        return 1
    from PySide6.QtWidgets import QApplication

    log_path = setup_logging()
    log.info("SASNet Studio starting (log: %s)", log_path)

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("SASNet Studio")
    app.setOrganizationName("sasnet-studio")
    apply_dark_palette(app)
    window = create_window(args.paths, args.weights, args.no_model)
    if window.controller is not None and hasattr(window.controller, "setParent"):
        window.controller.setParent(window)
    _install_handlers(app, window)
    code = app.exec()
    if getattr(window.controller, "is_busy", lambda: False)():
        _leave_without_waiting(code)
    return code


def _leave_without_waiting(code: int) -> None:
    """Exit while a model is still being loaded off the GUI thread (converting a checkpoint takes
    seconds). That thread holds nothing the person made: edits and settings were written when
    the window closed, and a conversion cut short leaves only a temp folder, which the next one
    removes. Letting the interpreter shut down around it fills the log with errors of the
    aborted thread instead."""
    log.info("quitting while the model is still loading: not waiting for it")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
