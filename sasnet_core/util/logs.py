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


# Notes already logged by this process. A data set is read more than once in one run (training
# images, the encoder's statistics pass, validation; the file list, then the editor), and the same
# file says the same thing each time: a person needs it once.
_SAID: set[str] = set()


def warn_once(logger: logging.Logger, note: str) -> None:
    """``logger.warning(note)`` the first time this process says ``note``."""
    if note not in _SAID:
        _SAID.add(note)
        logger.warning(note)
