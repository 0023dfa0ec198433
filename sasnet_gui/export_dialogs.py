"""Export: annotations in any format ``sasnet convert`` knows, counts as CSV, overlays as PNG.

Annotations are written by ``sasnet_core.annotations.formats.export``, the same function behind
``sasnet convert``: it refuses to replace what exists, to put two images in one file and to write
half an export. The dialog only collects the choices, and asks the person before replacing files.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QWidget,
)

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.formats import FORMATS, get_format
from sasnet_core.annotations.formats.export import DATASET, export, target_kind
from sasnet_core.datasets.ground_truth import shanghaitech_splits
from sasnet_core.io.atomic import atomic_write_text
from sasnet_core.io.imageio import write_image
from sasnet_core.util.errors import OutputExistsError
from sasnet_gui.canvas.colors import LEVEL_RGBA, blend, density_lut, density_rgba
from sasnet_gui.canvas.overlays import PATCH_AREA

SCOPES = {"current": "Current image", "all": "All annotated images", "reviewed": "Reviewed images only"}
# What the summary says when a choice of images holds nothing to export, and how to change that.
NOTHING_TO_EXPORT = {
    "current": "No image is open.",
    "all": "None of the open images has points yet.",
    "reviewed": "None of the open images is marked reviewed yet (Edit \u25b8 Mark as Reviewed, Ctrl+R).",
}
# Where the dialog remembers the last format and scope a person exported with (AppSettings keys).
FORMAT_KEY, SCOPE_KEY = "export/format", "export/scope"


def format_choices() -> list[tuple[str, str]]:
    """(key, label) of every export target: each registered format, then the data set layout."""
    out = [(name, f"{spec.description}") for name, spec in FORMATS.items()]
    out.append((DATASET, "ShanghaiTech data set folder (train_data/test_data, IMG_n + GT_IMG_n.mat)"))
    return out


def default_target(fmt: str, anns: list[Annotation], folder) -> Path:
    """The suggested file or folder near the images, never one the app reads back or saves to.

    The data set layout goes beside the images' folder (``imgs`` -> ``imgs-shanghaitech``): inside
    it, its copied images would show up as new images in the file list and in ``sasnet count``.
    The ``sasnet`` format goes to an ``exports`` sub-folder: beside the image, its name would be
    the annotation file the app itself saves to.
    """
    folder = Path(folder)
    if fmt == DATASET:
        root = _images_folder(anns, folder)
        return root.parent / f"{root.name}-shanghaitech"
    if target_kind(fmt, len(anns)) == "folder":
        return folder / f"annotations_{fmt}"

    spec = get_format(fmt)
    if spec.multi:
        return folder / f"annotations{spec.extensions[0]}"
    if fmt == "sasnet":
        return folder / "exports" / spec.default_name(anns[0].image_path)
    return folder / spec.default_name(anns[0].image_path)


def _images_folder(anns: list[Annotation], fallback: Path) -> Path:
    """The folder that holds every exported image (their common folder)."""
    try:
        return Path(os.path.commonpath([os.path.dirname(os.path.abspath(a.image_path)) for a in anns]))
    except ValueError:  # no images, or images on different drives
        return fallback


def counts_csv_text(entries) -> str:
    """One row per file: path, status, model count, annotated count, reviewed."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image", "status", "model_count", "annotated_count", "reviewed"])
    for e in entries:
        w.writerow([e.path, e.status.value, "" if e.model_count is None else f"{e.model_count:.3f}",
                    "" if e.annotated_count is None else e.annotated_count, int(bool(e.reviewed))])
    return buf.getvalue()


def export_counts_csv(entries, path) -> Path:
    atomic_write_text(path, counts_csv_text(entries))
    return Path(path)


def overlay_image(rgb: np.ndarray, result, which: str, colormap: str = "inferno",
                  opacity: float = 0.6) -> np.ndarray:
    """The photo with the density ("density") or level ("levels") overlay, at full resolution."""
    h, w = rgb.shape[:2]
    if which == "density":
        dens = cv2.resize(result.density, (w, h), interpolation=cv2.INTER_LINEAR)
        # Each display pixel's mass now covers (w * h / display pixels) image pixels.
        per_patch = dens * PATCH_AREA * (result.density.shape[0] * result.density.shape[1]) / (w * h)
        vmax = float(max(np.percentile(per_patch, 99.5), 1e-3))
        return blend(rgb, density_rgba(per_patch, vmax, density_lut(colormap)), opacity)
    if which == "levels":
        rows = np.clip(np.searchsorted(result.patch_rows, np.arange(h), side="right") - 1, 0, len(result.patch_rows) - 2)
        cols = np.clip(np.searchsorted(result.patch_cols, np.arange(w), side="right") - 1, 0, len(result.patch_cols) - 2)
        rgba = LEVEL_RGBA[result.level_map[rows[:, None], cols[None, :]]]
        return blend(rgb, rgba, opacity)
    raise ValueError(f"overlay must be 'density' or 'levels', got {which!r}")


def export_overlay_png(rgb: np.ndarray, result, which: str, path, **kw) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    write_image(path, overlay_image(rgb, result, which, **kw))
    return path


class ExportAnnotationsDialog(QDialog):
    """Choose what (current / all / reviewed), the format and where; ``export()`` writes it."""

    def __init__(self, collect, default_folder, parent: QWidget | None = None, scope: str | None = None,
                 settings=None, dataset=None):
        """``dataset``: the ``ground_truth.DatasetFile`` of an open data set's image; its own
        format is then offered first, so corrections go back as the data set keeps them."""
        super().__init__(parent)
        self.setWindowTitle("Export annotations")
        self._collect = collect  # scope -> list[Annotation]
        self._default_folder = Path(default_folder)
        self._settings = settings  # AppSettings: the last format and scope, remembered on export
        if scope is None:
            scope = str(settings.value(SCOPE_KEY, "current")) if settings is not None else "current"
        self.scope = QComboBox()
        for key, label in SCOPES.items():
            self.scope.addItem(label, key)
        self.scope.setCurrentIndex(max(self.scope.findData(scope), 0))
        self.format = QComboBox()
        for key, label in format_choices():
            self.format.addItem(label, key)
        if settings is not None:
            self.format.setCurrentIndex(max(self.format.findData(settings.value(FORMAT_KEY, "")), 0))
        own = self.format.findData(dataset.export_format) if dataset is not None else -1
        if own >= 0:
            self.format.setItemText(own, f"{self.format.itemText(own)} \u2013 this data set's format")
            self.format.setCurrentIndex(own)
        self.target = QLineEdit()
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.target, 1)
        row.addWidget(browse)
        self.test_fraction = QDoubleSpinBox(minimum=0.0, maximum=0.9, singleStep=0.05, value=0.2)
        self.summary = QLabel()
        form = QFormLayout(self)
        form.addRow("Images", self.scope)
        form.addRow("Format", self.format)
        form.addRow("Save to", row)
        form.addRow("Test fraction", self.test_fraction)
        form.addRow(self.summary)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.export_button = buttons.button(QDialogButtonBox.Ok)
        self.export_button.setText("Export")
        self.target.textChanged.connect(self._update_button)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.scope.currentIndexChanged.connect(self._refresh)
        self.format.currentIndexChanged.connect(self._refresh)
        self._refresh()

    def selected_format(self) -> str:
        return self.format.currentData()

    def set_format(self, key: str) -> None:
        self.format.setCurrentIndex(self.format.findData(key))

    def set_scope(self, key: str) -> None:
        self.scope.setCurrentIndex(self.scope.findData(key))

    def accept(self) -> None:
        if self._settings is not None:
            self._settings.set_value(FORMAT_KEY, self.selected_format())
            self._settings.set_value(SCOPE_KEY, self.scope.currentData())
        super().accept()

    def annotations(self) -> list[Annotation]:
        return self._collect(self.scope.currentData())

    def _refresh(self) -> None:
        anns = self.annotations()
        self._last_count = len(anns)
        fmt = self.selected_format()
        self.test_fraction.setEnabled(fmt == DATASET)
        if anns:
            self.target.setText(str(default_target(fmt, anns, self._default_folder)))
            kind = target_kind(fmt, len(anns))
            self.summary.setText(f"{len(anns)} image(s), {sum(a.count for a in anns)} points \u2192 one {kind}")
        else:
            self.summary.setText(NOTHING_TO_EXPORT[self.scope.currentData()])
        self._update_button()

    def _update_button(self) -> None:
        """Export is offered only when there is something to export and somewhere to put it."""
        self.export_button.setEnabled(bool(self._last_count) and bool(self.target.text().strip()))

    def _browse(self) -> None:
        anns = self.annotations()
        if anns and target_kind(self.selected_format(), len(anns)) == "file":
            path, _ = QFileDialog.getSaveFileName(self, "Export annotations", self.target.text())
        else:
            path = QFileDialog.getExistingDirectory(self, "Export into folder", str(self._default_folder))
        if path:
            self.target.setText(path)

    def export(self):
        """Write the export; the ``ExportResult``, or None when the person keeps existing files."""
        anns, fmt, target = self.annotations(), self.selected_format(), self.target.text().strip()
        if not target:
            raise ValueError("choose where to save the export")
        kw = {"test_fraction": self.test_fraction.value()}
        if fmt == DATASET:  # a ShanghaiTech set keeps its own train / test split

            kw["splits"] = shanghaitech_splits(anns)
        try:
            return export(anns, fmt, target, **kw)
        except OutputExistsError as exc:
            if "already exists" not in exc.detail:
                raise  # two images to one file, a folder in the way: nothing to confirm
            answer = QMessageBox.question(
                self.parentWidget() or self, "Replace existing files?",
                f"{exc.path} already exists.\n\nReplace it (and any other existing file of this "
                "export) with the new export?")
            if answer != QMessageBox.StandardButton.Yes:
                return None
        return export(anns, fmt, target, overwrite=True, **kw)
