"""Settings remembered between runs: an INI file in the platformdirs config folder.

``QSettings(str(path), QSettings.IniFormat)`` rather than the native store, so the file lives where
``sasnet_core.util.paths.config_dir()`` says (``SASNET_STUDIO_HOME`` moves it for tests).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from sasnet_core.util import paths

MAX_RECENT = 10
LEGACY_RECENT = "recent/folders"  # older settings: the folders only


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

    # -- recently opened ---------------------------------------------------------------------
    # Exactly what a person opened (a video, an image, a folder), newest first: Open Recent must
    # open that again, not the whole folder around one file. (Older settings kept folders only,
    # under "recent/folders"; they are read until the first new entry is written or the list is
    # cleared, and that key is removed then.)
    def recent_paths(self) -> list[str]:
        value = self.qs.value("recent/paths", None)
        if value is None:
            value = self.qs.value(LEGACY_RECENT, [])
        if isinstance(value, str):  # QSettings gives back a one-item list as a plain string
            value = [value]
        return [v for v in (value or []) if v]

    def add_recent(self, path) -> list[str]:
        path = str(Path(path).absolute())
        items = ([path] + [p for p in self.recent_paths() if p != path])[:MAX_RECENT]
        self.qs.setValue("recent/paths", items)
        self.qs.remove(LEGACY_RECENT)  # read into the new list above; never read again
        return items

    def recent_folders(self) -> list[str]:
        """The folders of the recent paths (a file's own folder), for the file dialogs to start in."""
        out: list[str] = []
        for p in self.recent_paths():
            folder = p if Path(p).is_dir() or not Path(p).suffix else str(Path(p).parent)
            if folder not in out:
                out.append(folder)
        return out

    def clear_recent(self) -> None:
        # An empty list is stored as @Invalid() and read back as None, which reads as "no list
        # yet": without the older key gone too, a cleared list came back at the next start.
        self.qs.setValue("recent/paths", [])
        self.qs.remove(LEGACY_RECENT)

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
