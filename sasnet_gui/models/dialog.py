"""The Models dialog: the registry the ``sasnet`` command uses, plus device, backend and precision.

One row per registered model with what its checkpoint says about itself (kind, parent, training
data, date, held-out MAE before and after fine-tuning). Adding a file reads the whole checkpoint
to validate it, so it runs in a worker thread; the rest are quick registry edits.
"""
from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from sasnet_core.util import paths
from sasnet_core.util.errors import SASNetError
from sasnet_core.weights.provenance import provenance
from sasnet_core.weights.registry import ModelEntry, model_name_from
from sasnet_core.weights.released import kind_label
from sasnet_gui import errors
from sasnet_gui.models.controller import (
    BACKENDS,
    DEVICES,
    PRECISIONS,
    ModelController,
)
from sasnet_gui.models.get_released import GetReleasedDialog
from sasnet_gui.widgets import HOW_TO_GET_A_MODEL

COLUMNS = ("Name", "Kind", "Parent", "Trained on", "Date", "MAE before", "MAE after", "File")

# One line per choice, shown as the combo items' tooltips: what each costs and gains.
DEVICE_TIPS = {
    "auto": "A CUDA GPU, then an Apple GPU (MPS), then the CPU",
    "cpu": "The processor (counts with OpenVINO when it is installed)",
    "cuda": "An NVIDIA GPU",
    "mps": "An Apple GPU (Metal)",
}
PRECISION_TIPS = {
    "auto": "bf16 where the processor or GPU computes it natively (CPUs with AMX or AVX512-BF16, "
            "recent NVIDIA GPUs), else fp32: the fastest choice that keeps counts within 0.5 %",
    "fp32": "Full precision: counts exactly as the reference model, the slowest",
    "bf16": "Several times faster on CPUs with AMX and on recent GPUs, counts within 0.5 %; "
            "emulated, and slower than fp32, elsewhere",
    "fp16": "For GPUs (torch); OpenVINO on the CPU does not run it",
    "int8": "The fastest on the CPU (OpenVINO): the model is quantized on a few of your open images "
            "(once, then cached), and you are told how far its counts are from fp32 on them",
}
BACKEND_TIPS = {
    "auto": "OpenVINO on the CPU when it is installed, else torch; torch on GPUs",
    "torch": "PyTorch: runs on every device; on the CPU several times slower than OpenVINO",
    "openvino": "Intel OpenVINO, CPU only: the model is compiled for this processor "
                "(its first use converts it, about 15 s, then it is cached)",
}


def _fmt_mae(value) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else "–"


def describe(entry: ModelEntry) -> dict[str, str]:
    """The table cells of one registry entry (from the metadata its checkpoint carries)."""
    m = entry.metadata or {}
    # What the file is comes from its content (the registry hashed it), never from its name.
    identity = getattr(entry, "identity", None) or {}
    kind = kind_label(entry.kind, m, identity.get("status"))
    origin = provenance(m)
    return {
        "Name": entry.name + ("  ★ default" if entry.is_default else ""),
        "Kind": str(kind),
        "Parent": origin.parent or "–",
        "Trained on": origin.trained_on or str(identity.get("dataset") or "–"),
        "Date": origin.date or str(entry.added or "")[:16].replace("T", " ") or "–",
        "MAE before": _fmt_mae(origin.mae_before),
        "MAE after": _fmt_mae(origin.mae_after),
        "File": str(entry.path),
    }


def _choice_combo(values, tips: dict[str, str], current: str) -> QComboBox:
    combo = QComboBox()
    for value in values:
        combo.addItem(str(value))
        if str(value) in tips:
            combo.setItemData(combo.count() - 1, tips[str(value)], Qt.ItemDataRole.ToolTipRole)
    combo.setCurrentText(str(current))
    combo.setToolTip(tips.get(str(current), ""))
    combo.currentTextChanged.connect(lambda text: combo.setToolTip(tips.get(text, "")))
    return combo


def _made_here(entry: ModelEntry) -> bool:
    """A model fine-tuned by the app: its file lives in the app's models folder."""
    try:
        return entry.path.resolve().is_relative_to(paths.models_dir().resolve()) and entry.path.is_file()
    except (OSError, ValueError):
        return False


def _add_to_registry(registry, name: str, path: str, copy: bool, make_default: bool, replace: bool):
    return registry.add(name, path, copy=copy, make_default=make_default, replace=replace)


class ModelsDialog(QDialog):
    """Registered models, device and precision. Non-modal friendly: call ``show()`` or ``exec()``."""

    modelAdded = Signal(str)  # name

    def __init__(self, controller: ModelController, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Models")
        self.resize(900, 380)
        self._workers: set = set()
        self._entries: list[ModelEntry] = []
        self.last_error: str | None = None
        self._reverting = False  # a refused choice is being put back in its combo

        self._build_table()
        self._build_empty_state()
        buttons = self._build_buttons()
        engine_row = self._build_engine_row()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.current_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty_label)
        layout.addLayout(buttons)
        layout.addLayout(engine_row)
        layout.addWidget(self.status_label)
        layout.addWidget(close)

        controller.predictorChanged.connect(self._on_model_changed)
        controller.busyChanged.connect(lambda _b: self._show_current())
        controller.stageChanged.connect(lambda _s: self._show_current())
        controller.loadFailed.connect(self._load_failed)
        controller.registryChanged.connect(self.refresh)
        self.refresh()

    # -- building --------------------------------------------------------------------------
    def _build_table(self) -> None:
        """The model in use above the table of registered models."""
        self.current_label = QLabel()
        self.current_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda _item: self.use_selected())

    def _build_empty_state(self) -> None:
        """What the dialog says where the table would be empty: how to get a model."""
        self.empty_label = QLabel("<b>No model yet.</b> The app opens and annotates images "
                                  "without one; counting needs a model.<br>" + HOW_TO_GET_A_MODEL)
        self.empty_label.setWordWrap(True)
        self.empty_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def _build_buttons(self) -> QHBoxLayout:
        """Get, add, remove, make default, use; the copy option at the far end."""
        self.add_button = QPushButton("Add file…")
        self.get_released_button = QPushButton("Get the Released Model…")
        self.get_released_button.clicked.connect(self._get_released)
        self.remove_button = QPushButton("Remove")
        self.default_button = QPushButton("Set default")
        self.use_button = QPushButton("Use")
        self.copy_check = QCheckBox("Copy added files into the app's model folder")
        self.add_button.clicked.connect(self._choose_file)
        self.remove_button.clicked.connect(lambda: self.remove_selected())
        self.default_button.clicked.connect(self.set_selected_default)
        self.use_button.clicked.connect(self.use_selected)
        row = QHBoxLayout()
        for b in (self.get_released_button, self.add_button, self.remove_button, self.default_button,
                  self.use_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.copy_check)
        return row

    def _build_engine_row(self) -> QHBoxLayout:
        """How the app counts: device, backend, precision and the maximum image side."""
        self.device_combo = _choice_combo(DEVICES, DEVICE_TIPS, self.controller.device)
        self.backend_combo = _choice_combo(BACKENDS, BACKEND_TIPS, self.controller.backend)
        self.precision_combo = _choice_combo(PRECISIONS, PRECISION_TIPS, self.controller.precision)
        for combo, what in ((self.device_combo, "device"), (self.backend_combo, "backend"),
                            (self.precision_combo, "precision")):
            combo.currentTextChanged.connect(lambda value, c=combo, w=what: self._set_engine(c, w, value))
        # The app's --max-side: a photo of tens of megapixels counts in minutes at full size.
        self.max_side_spin = QSpinBox()
        self.max_side_spin.setRange(0, 100_000)
        self.max_side_spin.setSingleStep(512)
        self.max_side_spin.setSpecialValueText("off")
        self.max_side_spin.setSuffix(" px")
        self.max_side_spin.setValue(self.controller.max_side or 0)
        self.max_side_spin.setKeyboardTracking(False)  # applied on Enter, not at every digit
        self.max_side_spin.setToolTip(
            "Downscale images whose long side exceeds this before counting (off: count at full "
            "size). Much faster for very large photos, but heads shrink with the image and the "
            "count can change a lot; points and maps stay in the image's own pixels.")
        self.max_side_spin.valueChanged.connect(self._set_max_side)
        # Side by side: short fields in a row keep the table tall.
        row = QHBoxLayout()
        for label, combo in (("Device:", self.device_combo), ("Backend:", self.backend_combo),
                             ("Precision:", self.precision_combo), ("Maximum side:", self.max_side_spin)):
            row.addWidget(QLabel(label))
            row.addWidget(combo)
            row.addSpacing(12)
        row.addStretch(1)
        return row

    # -- view ------------------------------------------------------------------------------
    def refresh(self) -> None:
        selected = self.selected_name()
        try:
            entries = self.controller.registry.entries()
        except Exception as exc:  # damaged registry file: say which and how to fix
            entries = []
            self._error("Model registry", exc)
        self._entries = entries
        self.table.setRowCount(len(entries))
        in_use = self.controller.current_weights_path()
        for row, entry in enumerate(entries):
            cells = describe(entry)
            if in_use is not None and entry.name == self.controller.current_name():
                cells["Name"] += "  ● in use"
            for col, key in enumerate(COLUMNS):
                item = QTableWidgetItem(cells[key])
                item.setData(Qt.ItemDataRole.UserRole, entry.name)
                item.setToolTip(self._tooltip(entry))
                if not entry.path.is_file():
                    item.setForeground(Qt.GlobalColor.red)
                    item.setToolTip("file is gone: " + str(entry.path))
                self.table.setItem(row, col, item)
            if entry.name == selected:
                self.table.selectRow(row)
        self.table.setVisible(bool(entries))
        self.empty_label.setVisible(not entries)
        self._show_current()
        self._update_buttons()

    @staticmethod
    def _tooltip(entry: ModelEntry) -> str:
        m = entry.metadata or {}
        lines = [f"{entry.name} ({entry.kind})", str(entry.path)]
        identity = getattr(entry, "identity", None) or {}
        if identity.get("description"):
            lines.insert(1, str(identity["description"]))
        if isinstance(identity.get("paper"), dict):
            p = identity["paper"]
            lines.append(f"paper: {identity.get('dataset', '')} MAE {p.get('mae')} / MSE {p.get('mse')}")
        for key in ("kind", "parent", "data_folder", "data", "finetune_images", "holdout_files",
                    "steps", "status", "val_mae_before", "val_mae",
                    "val_mse", "train_images", "val_images", "validation", "trained", "created"):
            if m.get(key) not in (None, ""):
                lines.append(f"{key}: {m[key]}")
        return "\n".join(lines)

    def _show_current(self) -> None:
        c = self.controller
        if c.is_busy():
            text = html.escape(c.stage())
        elif c.has_model():
            name, _, engine = (c.engine_text() or "").partition(" \u00b7 ")
            text = (f"In use: <b>{html.escape(name)}</b> \u00b7 {html.escape(engine)} "
                    f"\u2014 {html.escape(str(c.current_weights_path()))}")
            for note in c.engine_notes():  # why not what was asked for; int8's count difference
                text += f"<br><span style='color: palette(dark)'>{html.escape(note)}</span>"
        else:
            text = "In use: <b>no model</b>"
        self.current_label.setText(text)

    def _on_model_changed(self, _predictor) -> None:
        if self.status_label.property("loading"):  # the load asked for here has answered
            self.status_label.setProperty("loading", False)
            name = self.controller.current_name()
            self.status_label.setText(f"Using {name}." if self.controller.has_model() and name else "")
        self.refresh()

    def _update_buttons(self) -> None:
        has = self.selected_name() is not None
        for b in (self.remove_button, self.default_button, self.use_button):
            b.setEnabled(has)

    def selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def select(self, name: str) -> bool:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == name:
                self.table.selectRow(row)
                return True
        return False

    # -- actions ---------------------------------------------------------------------------
    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a SASNet checkpoint", "",
                                              "PyTorch checkpoints (*.pth *.pt);;All files (*)")
        if not path:
            return
        taken = {e.name for e in self._entries}
        name, ok = QInputDialog.getText(self, "Model name", "Name for this model:",
                                        text=model_name_from(Path(path).stem, taken))
        if ok and name.strip():
            self.add_file(path, name.strip())

    def _get_released(self) -> None:
        """The download dialog; the new model shows up here through registryChanged."""
        dlg = GetReleasedDialog(self.controller, self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.modelReady.connect(lambda name: self.select(name))
        self.released_dialog = dlg
        dlg.open()

    def add_file(self, path: str | Path, name: str | None = None, make_default: bool = False) -> None:
        """Register ``path`` (validated in a worker thread); emits modelAdded(name) when done."""
        taken = {e.name for e in self._entries}
        name = name or model_name_from(Path(path).stem, taken)
        replace = name in taken
        if replace:  # the app asks where the command line wants --replace
            answer = QMessageBox.question(
                self, "Replace model",
                f"A model named '{name}' is in the list already. Replace it with {path}?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        worker = create_worker(_add_to_registry, self.controller.registry, name, str(path),
                               self.copy_check.isChecked(), make_default, replace,
                               _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._added)
        worker.errored.connect(lambda exc: self._error("Cannot add model", exc))
        worker.finished.connect(lambda: self._workers.discard(worker))
        self._workers.add(worker)
        self.add_button.setEnabled(False)
        worker.finished.connect(lambda: self.add_button.setEnabled(True))
        self.status_label.setText(f"Reading {path}…")
        worker.start()

    def _added(self, entry: ModelEntry) -> None:
        self.status_label.setText(f"Added {entry.name}.")
        self.controller.registryChanged.emit()  # refreshes this dialog too
        self.select(entry.name)
        self.modelAdded.emit(entry.name)
        if not self.controller.has_model() and not self.controller.is_busy():
            self.controller.load(entry.name)  # the first model: start using it right away

    def remove_selected(self, confirm: bool = True) -> None:
        name = self.selected_name()
        if name is None:
            return
        entry = next((e for e in self._entries if e.name == name), None)
        delete_file = False
        if confirm and entry is not None and _made_here(entry):
            # A fine-tuned model's file exists only for this list: offer to delete it too.
            answer = QMessageBox.question(
                self, "Remove model",
                f"Remove '{name}' from the list and delete its file {entry.path}?\n\n"
                "Yes: remove it and delete the file. No: remove it, keep the file.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
                | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
            if answer not in (QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No):
                return
            delete_file = answer == QMessageBox.StandardButton.Yes
        elif confirm:
            answer = QMessageBox.question(
                self, "Remove model",
                f"Remove '{name}' from the list? The file itself stays on disk.")
            if answer != QMessageBox.StandardButton.Yes:
                return
        was_default = entry is not None and entry.is_default
        try:
            deleted = self.controller.registry.remove(name, delete_file=delete_file)
        except Exception as exc:
            self._error("Cannot remove model", exc)
            return
        successor = self.controller.registry.default() if was_default else None
        self.status_label.setText(
            f"Removed {name}" + (f" and deleted {deleted}" if deleted else "")
            + (" (still in use until you choose another)" if name == self.controller.current_name() else "")
            + (f". {successor.name} is the default model now." if successor is not None else
               ". No model is the default now." if was_default else "."))
        self.controller.registryChanged.emit()

    def set_selected_default(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        try:
            self.controller.registry.set_default(name)
        except Exception as exc:
            self._error("Cannot set the default model", exc)
            return
        self.status_label.setText(f"{name} is the default model (used at start and by 'sasnet').")
        self.controller.registryChanged.emit()

    def use_selected(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.status_label.setText(f"Loading {name}…")
            self.status_label.setProperty("loading", True)
            self.controller.load(name)

    def _set_engine(self, combo: QComboBox, what: str, value: str) -> None:
        """Apply a device / backend / precision choice; one this machine cannot run is refused
        here, in words, and the combo goes back to what is in use."""
        if self._reverting:
            return
        try:
            setattr(self.controller, what, value)
            self.status_label.setText(f"{what.capitalize()}: {html.escape(value)}.")  # not an earlier error
        except SASNetError as exc:
            self.status_label.setText(f"<span style='color:#c0392b'>{what.capitalize()} {html.escape(value)}: "
                                      f"{html.escape(str(exc))}</span>")
            self.last_error = str(exc)
            self._reverting = True
            try:
                combo.setCurrentText(getattr(self.controller, what))
            finally:
                self._reverting = False

    def _set_max_side(self, value: int) -> None:
        if self._reverting:
            return
        try:
            self.controller.max_side = value
            self.status_label.setText(f"Maximum side: {value} px; the open images are counted again."
                                      if value else "Maximum side: off (images are counted at full size).")
        except ValueError as exc:
            self.status_label.setText(f"<span style='color:#c0392b'>{html.escape(str(exc))}</span>")
            self.last_error = str(exc)
            self._reverting = True
            try:
                self.max_side_spin.setValue(self.controller.max_side or 0)
            finally:
                self._reverting = False

    def _load_failed(self, message: str) -> None:
        self.status_label.setProperty("loading", False)
        self.status_label.setText(f"<span style='color:#c0392b'>Could not load the model: "
                                  f"{html.escape(message)}</span>")
        self._show_current()

    def _error(self, title: str, exc: BaseException | str) -> None:
        message = str(exc)
        self.status_label.setText(f"<span style='color:#c0392b'>{html.escape(message)}</span>")
        errors.show_error(self, exc, what=title)  # the exception itself: a bug keeps its traceback
        self.last_error = message
