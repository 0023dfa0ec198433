"""Help ▸ Keyboard Shortcuts: every shortcut of the window, read from its QActions when the sheet
opens, grouped by the menu that holds the action (so the sheet cannot disagree with the keys)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

OTHER = "Other"  # actions with a shortcut that sit in no menu (e.g. the canvas's own keys)


def _plain(text: str) -> str:
    """Menu text without its mnemonic markers ("&Open…" -> "Open…", "&&" -> "&")."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def keys_text(action: QAction) -> str:
    return ", ".join(k.toString(QKeySequence.NativeText) for k in action.shortcuts() if not k.isEmpty())


def shortcut_rows(window) -> list[tuple[str, str, str]]:
    """(group, action, keys) for every action of ``window`` that has a shortcut: menu by menu in
    menu order (a submenu as "View ▸ Head Markers"), then those in no menu."""
    rows: list[tuple[str, str, str]] = []
    seen: set[int] = set()

    def walk(menu, path: str) -> None:
        for a in menu.actions():
            if a.menu() is not None:
                walk(a.menu(), f"{path} \u25b8 {_plain(a.menu().title())}")
            elif not a.isSeparator():
                seen.add(id(a))
                if keys_text(a):
                    rows.append((path, _plain(a.text()), keys_text(a)))

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), _plain(top.menu().title()))
    for a in window.findChildren(QAction):
        if id(a) not in seen and keys_text(a) and a.text():
            seen.add(id(a))
            rows.append((OTHER, _plain(a.text()), keys_text(a)))
    return rows


class ShortcutSheet(QDialog):
    def __init__(self, window):
        super().__init__(window)
        self.setWindowTitle("Keyboard Shortcuts")
        self.filter = QLineEdit(placeholderText="Filter by action or key\u2026")
        self.filter.setClearButtonEnabled(True)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Action", "Keys"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeToContents)
        self.tree.header().setStretchLastSection(False)
        groups: dict[str, QTreeWidgetItem] = {}
        for group, text, keys in shortcut_rows(window):
            parent = groups.get(group)
            if parent is None:
                parent = groups[group] = QTreeWidgetItem(self.tree, [group])
                font = parent.font(0)
                font.setBold(True)
                parent.setFont(0, font)
                parent.setFirstColumnSpanned(True)
                parent.setFlags(Qt.ItemIsEnabled)
            QTreeWidgetItem(parent, [text, keys])
        self.tree.expandAll()
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.filter)
        lay.addWidget(self.tree, 1)
        lay.addWidget(buttons)
        self.filter.textChanged.connect(self._filter)
        # Readable on a 1280 x 800 screen: never taller or wider than the screen leaves room for.
        screen = window.screen().availableGeometry() if window.screen() is not None else None
        w, h = 560, 640
        if screen is not None:
            w, h = min(w, screen.width() - 40), min(h, screen.height() - 80)
        self.resize(w, h)

    def rows(self) -> list[tuple[str, str, str]]:
        """(group, action, keys) as listed and not filtered out."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            g = self.tree.topLevelItem(i)
            for j in range(g.childCount()):
                c = g.child(j)
                if not c.isHidden():
                    out.append((g.text(0), c.text(0), c.text(1)))
        return out

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            g = self.tree.topLevelItem(i)
            shown = 0
            for j in range(g.childCount()):
                c = g.child(j)
                hit = not needle or needle in c.text(0).lower() or needle in c.text(1).lower()
                c.setHidden(not hit)
                shown += hit
            g.setHidden(shown == 0)
