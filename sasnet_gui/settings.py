"""Settings remembered between runs: an INI file in the platformdirs config folder.

``QSettings(str(path), QSettings.IniFormat)`` rather than the native store, so the file lives where
``sasnet_core.paths.config_dir()`` says (``SASNET_STUDIO_HOME`` moves it for tests).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from sasnet_core import paths

MAX_RECENT = 10


def settings_file() -> Path:
    return paths.config_dir() / "gui.ini"  # shared with ModelController (one group per widget)


class AppSettings:
    def __init__(self, path: str | Path | None = None):
        path = Path(path) if path is not None else settings_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.qs = QSettings(str(path), QSettings.IniFormat)

    # -- plain values -------------------------------------------------------------------------
    def value(self, key: str, default=None):
        return self.qs.value(key, default)

    def set_value(self, key: str, value) -> None:
        self.qs.setValue(key, value)

    def bool(self, key: str, default: bool) -> bool:
        v = self.qs.value(key, default)
        return v if isinstance(v, bool) else str(v).lower() in ("true", "1", "yes")

    def sync(self) -> None:
        self.qs.sync()

    # -- recent folders ------------------------------------------------------------------------
    def recent_folders(self) -> list[str]:
        value = self.qs.value("recent/folders", [])
        if isinstance(value, str):  # QSettings gives back a one-item list as a plain string
            value = [value]
        return [v for v in (value or []) if v]

    def add_recent_folder(self, folder) -> list[str]:
        folder = str(Path(folder).absolute())
        items = [folder] + [f for f in self.recent_folders() if f != folder]
        self.qs.setValue("recent/folders", items[:MAX_RECENT])
        return items[:MAX_RECENT]

    def clear_recent(self) -> None:
        self.qs.setValue("recent/folders", [])

    # -- groups of values (overlay panel state) ------------------------------------------------
    def group(self, name: str) -> dict:
        self.qs.beginGroup(name)
        try:
            return {k: self.qs.value(k) for k in self.qs.childKeys()}
        finally:
            self.qs.endGroup()

    def set_group(self, name: str, values: dict) -> None:
        self.qs.beginGroup(name)
        try:
            for k, v in values.items():
                self.qs.setValue(k, v)
        finally:
            self.qs.endGroup()
