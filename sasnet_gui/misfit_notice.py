"""Saying, without blocking, that an image's points may not fit it: either the data set's own
ground-truth file does not fit its image, or the image changed on disk since a person's points
were saved. The points are kept either way; the notice says which case it is."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from sasnet_gui.widgets import bullet_list

TITLE = "Points may not fit the image"
STATUS_MS = 15000


def misfit_texts(image: str, truth) -> tuple[str, str]:
    """(the status-bar line, the dialog's first line) for ``image`` whose points came from
    ``truth`` (the document's ground truth, or None)."""
    name = Path(image).name
    if truth is not None and truth.from_dataset:
        what = f"its ground truth {truth.dataset.label} does not fit it"
        return f"{name}: {what}", f"{name}: {what}:"
    return f"{name}: its saved points may not fit it any more", f"{name} has changed since it was annotated:"


def open_misfit_box(parent, heading: str, problems: list) -> QMessageBox:
    """The window-modal notice with each problem on its own line; opened, not run."""
    box = QMessageBox(QMessageBox.Icon.Warning, TITLE, heading, parent=parent)
    box.setObjectName("misfitBox")
    box.setInformativeText(bullet_list(problems) + "\n\nThe points are kept as they were; check them before marking "
                           "the image reviewed.")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
