"""File ▸ Import Annotation and the File ▸ Export commands of the main window: the dialogs that ask,
and the status or error the person sees. Reading and writing are the core's (``formats``,
``formats.export``, ``annotation_store``); this only asks and shows."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from sasnet_gui import errors


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
        from sasnet_core.errors import SASNetError
        from sasnet_core.formats import read_points

        try:
            ann = read_points(path, format)
        except (SASNetError, ValueError) as exc:
            errors.show_error(self.w, exc, what="Could not import the annotation")
            return False
        self.w.document.replace_points(ann.points, ann.sources, text=f"Import {Path(path).name}")
        return True

    def collect_annotations(self, scope: str) -> list:
        """Annotations to export: "current", "all" (every annotated file) or "reviewed".

        An annotation file that cannot be read is left out and named in the status bar, so an
        export never drops an image without a word."""
        from sasnet_core.annotation_store import read_annotation
        from sasnet_core.errors import SASNetError

        doc = self.w.document
        doc.flush()
        if scope == "current":
            return [doc.annotation()] if doc.is_open else []
        out, unreadable = [], []
        for e in self.w.files.entries():
            if e.path == doc.image_path:
                ann = doc.annotation()
            else:
                try:
                    ann = read_annotation(e.path)
                except (SASNetError, OSError):
                    unreadable.append(Path(e.path).name)
                    ann = None
            if ann is not None and (scope == "all" or ann.reviewed):
                out.append(ann)
        if unreadable:
            self.w.statusBar().showMessage(
                f"Left out {len(unreadable)} image(s) whose annotation cannot be read: "
                + ", ".join(unreadable[:3]) + ("…" if len(unreadable) > 3 else ""), 10000)
        return out

    def export_dialog(self, scope: str | None = None):
        from sasnet_gui.export_dialogs import ExportAnnotationsDialog

        doc = self.w.document
        folder = Path(doc.image_path).parent if doc.is_open else Path.home()
        # scope None: the dialog opens with the format and scope of the last export.
        dlg = ExportAnnotationsDialog(self.collect_annotations, folder, self.w, scope=scope,
                                      settings=self.w.settings)
        dlg.accepted.connect(lambda: self._run_export(dlg))
        dlg.open()
        return dlg

    def _run_export(self, dlg) -> None:
        try:
            result = dlg.export()  # asks before replacing anything; None when the person declines
        except Exception as exc:  # noqa: BLE001 - any failure is shown, the app keeps running
            errors.show_error(self.w, exc, what="Export failed")
            return
        if result is not None:
            self.w.statusBar().showMessage(f"Exported {result.images} image(s) in {len(result.files)} "
                                           f"file(s) to {result.target}", 8000)

    def export_counts_dialog(self) -> None:
        from sasnet_gui.export_dialogs import export_counts_csv

        path, _ = QFileDialog.getSaveFileName(self.w, "Export counts",
                                              str(Path(self.w._last_folder()) / "counts.csv"), "CSV (*.csv)")
        if path:
            try:
                export_counts_csv(self.w.files.entries(), path)
            except OSError as exc:
                errors.show_error(self.w, exc, what="Could not write the counts")

    def export_overlay_dialog(self, which: str) -> None:
        from sasnet_gui.export_dialogs import export_overlay_png

        w = self.w
        result, rgb = w.session.current_result(), w.canvas._rgb
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
