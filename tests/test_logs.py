"""The log file: one rotating handler in the user's log folder, however often it is set up."""
from __future__ import annotations

import logging

from sasnet_core.util import logs, paths


def _ours():
    return [h for h in logging.getLogger().handlers if isinstance(h, logs._StudioFileHandler)]


def test_log_file_lives_in_the_user_log_folder_and_rotates(monkeypatch):
    monkeypatch.setattr(logs, "MAX_BYTES", 2000)
    try:
        path = logs.setup_logging("unit")
        assert path == paths.log_dir() / "unit.log"
        assert logs.setup_logging("unit") == path and len(_ours()) == 1  # set up twice: one handler
        log = logging.getLogger("sasnet_core.test")
        for i in range(200):
            log.warning("line %d of a long story", i)
        try:
            raise ValueError("kept with its traceback")
        except ValueError:
            log.exception("something broke")
    finally:
        logs.stop_logging()
    assert _ours() == []
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["unit.log", "unit.log.1", "unit.log.2", "unit.log.3"]  # BACKUP_COUNT old files
    text = path.read_text()
    assert "Traceback" in text and "ValueError: kept with its traceback" in text
    assert "sasnet_core.test" in text  # each line names the module that logged it


def test_an_unwritable_log_folder_does_not_stop_the_program(monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    monkeypatch.setattr(paths, "log_dir", lambda: blocker / "log")
    assert logs.setup_logging("unit") is None and _ours() == []
