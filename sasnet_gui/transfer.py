"""File ▸ Import Annotation and the File ▸ Export commands of the main window: the dialogs that ask,
and the status or error the person sees. Reading and writing are the core's (``formats``,
``formats.export``, ``annotation_store``); this only asks and shows."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from sasnet_core.annotations.formats import read_for_image
from sasnet_core.annotations.store import writable_folder
from sasnet_core.datasets.ground_truth import locate, truth_of
from sasnet_core.util.errors import SASNetError
from sasnet_gui import errors
from sasnet_gui.widgets import bullet_list


class AnnotationTransfer:
    """Import and export for one main window (its document, file list, session and overlays)."""

    def __init__(self, window):
        self.w = window

    def import_dialog(self) -> None:
        doc = self.w.document
        if not doc.is_open:
            return
        path, _ = QFileDialog.getOpenFileName(self.w, "Import annotation", str(Path(doc.image_path).parent),
                                              "Annotations (*.json *.mat *.txt *.csv *.xml);;All files (*)")
        if path:
            self.import_annotation(path)

    def import_annotation(self, path, format: str | None = None) -> bool:
        """Read ``path`` onto the open image. When it does not fit the image (another image's
        name or size, points off it) the person is asked first, in ``import_box``; True when the
        points were taken or the question is open."""
        doc = self.w.document
        try:
            placed = read_for_image(path, doc.image_path, doc.annotation().image_size, format)
        except (SASNetError, ValueError) as exc:
            errors.show_error(self.w, exc, what="Could not import the annotation")
            return False
        text = f"Import {Path(path).name}"
        if not placed.mismatches:
            self._take(placed.annotation, Path(path).name, text)
            return True
        self._ask_before_import(placed, Path(path).name, text)
        return True

    def _take(self, ann, file_name: str, text: str) -> None:
        """Replace the open image's points with ``ann``'s, once the person agrees to lose theirs."""
        if self.w.may_replace_placed_points("Import annotation", f"with the {ann.count} of {file_name}"):
            self.w.document.import_annotation(ann, text)

    def _ask_before_import(self, placed, file_name: str, text: str) -> None:
        """A non-blocking question: import as it is, only the points on the image, or nothing."""
        doc = self.w.document
        image = doc.image_path
        n, off = len(placed.outside), int(placed.outside.sum())
        box = QMessageBox(QMessageBox.Icon.Warning, "Import annotation",
                          f"{file_name} may not belong to {Path(image).name}:", parent=self.w)
        box.setObjectName("importMismatchBox")
        box.setInformativeText(bullet_list(placed.mismatches))
        every = box.addButton(f"Import All {n}", QMessageBox.ButtonRole.AcceptRole)
        inside = box.addButton(f"Import the {n - off} Inside", QMessageBox.ButtonRole.ActionRole) if off else None
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(box.button(QMessageBox.StandardButton.Cancel))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(button) -> None:
            if doc.image_path != image:  # another image was shown meanwhile: not its points
                return
            if button is every:
                self._take(placed.annotation, file_name, text)
            elif inside is not None and button is inside:
                self._take(placed.inside_only(), file_name, text)

        box.buttonClicked.connect(answered)
        self.import_box = box
        box.open()

    def collect_annotations(self, scope: str) -> list:
        """Annotations to export: "current", "all" (every annotated image: a person's annotation,
        else its data set's ground truth, so a corrected data set exports whole) or "reviewed".

        An annotation file that cannot be read is left out and named in the status bar, so an
        export never drops an image without a word."""
        doc = self.w.document
        doc.flush()
        if scope == "current":
            return [doc.annotation()] if doc.is_open else []
        out, unreadable = [], []
        for e in self.w.files.entries():
            if e.path == doc.image_path:  # never edited, or edited back to nothing: not exported
                ann = doc.annotation() if doc.is_annotated else None
            else:
                try:
                    truth = truth_of(e.path)
                except (SASNetError, OSError):
                    truth = None
                if truth is None or truth.dataset_error is not None and truth.dataset.file.exists():
                    unreadable.append(Path(e.path).name)
                ann = truth.annotation if truth is not None else None
            if ann is not None and (scope == "all" or ann.reviewed):
                out.append(ann)
        if unreadable:
            self.w.statusBar().showMessage(
                f"Left out {len(unreadable)} image(s) whose annotation cannot be read: "
                + ", ".join(unreadable[:3]) + ("…" if len(unreadable) > 3 else ""), 10000)
        return out

    def export_dialog(self, scope: str | None = None):
        # deferred: the export dialogs bring OpenCV; built when first shown
        from sasnet_gui.export_dialogs import ExportAnnotationsDialog

        doc = self.w.document
        folder = Path(doc.image_path).parent if doc.is_open else Path.home()
        if not writable_folder(folder):  # images on a read-only share or card: suggest home
            folder = Path.home()
        # scope None: the dialog opens with the format and scope of the last export.
        dlg = ExportAnnotationsDialog(self.collect_annotations, folder, self.w, scope=scope,
                                      settings=self.w.settings, dataset=self._open_dataset())
        dlg.accepted.connect(lambda: self._run_export(dlg))
        dlg.open()
        return dlg

    def _open_dataset(self):
        """The data set file of the open image (or else the first listed one), when it belongs to
        a data set: Export then offers that data set's own format first."""
        doc = self.w.document
        if doc.is_open and doc.truth is not None and doc.truth.dataset is not None:
            return doc.truth.dataset
        entries = self.w.files.entries()
        return locate(entries[0].path) if entries else None

    def _run_export(self, dlg) -> None:
        try:
            result = dlg.export()  # asks before replacing anything; None when the person declines
        except Exception as exc:  # noqa: BLE001 - any failure is shown, the app keeps running
            errors.show_error(self.w, exc, what="Export failed")
            return
        if result is not None:
            left = f"; not written: {'; '.join(result.left_out)}" if result.left_out else ""
            self.w.statusBar().showMessage(f"Exported {result.images} image(s) in {len(result.files)} "
                                           f"file(s) to {result.target}{left}", 15000 if left else 8000)

    def export_counts_dialog(self) -> None:
        # deferred: the export dialogs bring OpenCV; built when first shown
        from sasnet_gui.export_dialogs import export_counts_csv

        path, _ = QFileDialog.getSaveFileName(self.w, "Export counts",
                                              str(Path(self.w.last_folder()) / "counts.csv"), "CSV (*.csv)")
        if path:
            try:
                export_counts_csv(self.w.files.entries(), path)
            except OSError as exc:
                errors.show_error(self.w, exc, what="Could not write the counts")

    def export_overlay_dialog(self, which: str) -> None:
        # deferred: the export dialogs bring OpenCV; built when first shown
        from sasnet_gui.export_dialogs import export_overlay_png

        w = self.w
        result, rgb = w.session.current_result(), w.canvas.image
        if result is None or rgb is None:
            w.statusBar().showMessage("Count this image first: there is no overlay to export.", 6000)
            return
        stem = Path(w.session.current).stem
        path, _ = QFileDialog.getSaveFileName(w, "Export overlay", str(Path(w.session.current).parent /
                                              f"{stem}_{which}.png"), "PNG (*.png)")
        if path:
            try:
                export_overlay_png(rgb, result, which, path, colormap=w.overlays.colormap.currentText(),
                                   opacity=max(w.overlays.density_opacity.value() / 100, 0.3))
            except Exception as exc:  # noqa: BLE001
                errors.show_error(w, exc, what="Could not write the overlay")
