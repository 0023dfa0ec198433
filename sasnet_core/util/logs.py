"""The log file: what happened, with tracebacks, in a file a person can find and send.

``setup_logging`` adds one rotating file handler to the root logger, in ``paths.log_dir()``
(platformdirs' user log folder; ``SASNET_STUDIO_HOME`` moves it). Every module logs through
``logging.getLogger(__name__)``, so the file says where each line came from. Calling it again (a
second window, a test with another home folder) replaces the handler instead of adding one.
"""
from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from sasnet_core.util import paths

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
MAX_BYTES = 1_000_000  # per file; a few days of normal use
BACKUP_COUNT = 3  # app.log, app.log.1 .. app.log.3: at most 4 MB on disk


class _StudioFileHandler(logging.handlers.RotatingFileHandler):
    """Marks the handler this module added, so a second call can find and replace it."""


# The app's log (the command line prints its errors and writes none): the one file ``sasnet
# doctor`` names and Help opens.
APP_LOG = "sasnet-gui"


def log_file(name: str = APP_LOG) -> Path:
    return paths.log_dir() / f"{name}.log"


def stop_logging() -> None:
    """Close the log file (the records so far are on disk)."""
    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, _StudioFileHandler)]:
        root.removeHandler(h)
        h.close()


def setup_logging(name: str = APP_LOG, level: int = logging.INFO) -> Path | None:
    """Send log records of ``level`` and above to ``log_dir()/NAME.log``; returns that path, or
    None when the folder cannot be written (logging must never stop the program)."""
    path = log_file(name)
    root = logging.getLogger()
    stop_logging()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _StudioFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT,
                                     encoding="utf-8", delay=True)
    except OSError:
        return None
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(level)
    root.addHandler(handler)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
    logging.captureWarnings(True)
    return path
