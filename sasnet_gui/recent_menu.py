"""File ▸ Open Recent: what a person opened, newest first, filled each time the menu opens.

A long path keeps its start and its name (elided in the middle) with the whole path in the
tooltip; an "&" in a name is shown, not taken as a mnemonic; "Clear List" empties it for good."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QMenu

ENTRY_CHARS = 60  # an entry's width, in average characters of the menu's font


class RecentMenu(QObject):
    def __init__(self, menu: QMenu, settings, open_path: Callable[[str], None]):
        super().__init__(menu)
        self.menu, self.settings, self.open_path = menu, settings, open_path
        menu.setToolTipsVisible(True)
        menu.aboutToShow.connect(self.fill)

    def fill(self) -> None:
        menu = self.menu
        menu.clear()
        metrics = menu.fontMetrics()
        for path in self.settings.recent_paths():
            text = metrics.elidedText(path, Qt.ElideMiddle, ENTRY_CHARS * metrics.averageCharWidth())
            action = menu.addAction(text.replace("&", "&&"), lambda p=path: self.open_path(p))
            action.setToolTip(path)
        if menu.isEmpty():
            menu.addAction("(none)").setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear List", self.settings.clear_recent)
