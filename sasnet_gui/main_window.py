"""The main window: composes the canvas, docks and controllers, and holds the menus. No logic of
its own beyond wiring: data lives in the document, files in the file model, the model in the
ModelController, counting in the CountingQueue, the current image in the ImageSession."""
from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, QUrl, Signal, qInstallMessageHandler
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from sasnet_core.annotations.annotation import SOURCE_PERSON
from sasnet_core.io.inputs import collect_inputs
from sasnet_core.util.errors import GroundTruthError
from sasnet_core.util.paths import log_dir
from sasnet_gui import errors
from sasnet_gui.canvas.appearance import AppearanceActions, AppearanceControls
from sasnet_gui.canvas.controls import OverlayControls
from sasnet_gui.canvas.view import CanvasView
from sasnet_gui.canvas.welcome import WelcomeOverlay
from sasnet_gui.canvas.zoom import ZoomBar
from sasnet_gui.counts_controller import CountsController
from sasnet_gui.editing.document import AnnotationDocument
from sasnet_gui.editing.duplicates import DuplicateWarning, DuplicateWatcher
from sasnet_gui.editing.review import ReviewNavigator, keys_text, next_image_to_review
from sasnet_gui.editing.session import ImageSession
from sasnet_gui.files.counting import CountingQueue
from sasnet_gui.files.dock import FileListDock
from sasnet_gui.files.model import FileListModel
from sasnet_gui.last_session import LastSession
from sasnet_gui.misfit_notice import STATUS_MS as MISFIT_STATUS_MS
from sasnet_gui.misfit_notice import misfit_texts, open_misfit_box
from sasnet_gui.models.file_adder import ModelFileAdder, is_checkpoint_path
from sasnet_gui.recent_menu import RecentMenu
from sasnet_gui.settings import AppSettings
from sasnet_gui.status_bar import ImageStatusBar
from sasnet_gui.transfer import AnnotationTransfer
from sasnet_gui.widgets import (
    HOW_TO_GET_A_MODEL,
    CountPanel,
    FitScrollArea,
    NoModelBanner,
    icon,
)

log = logging.getLogger(__name__)


SIDE_DOCK_SHARE = 0.3  # the most of the window's width a restored side dock gets back


# After a save, the Fine-tune panel reads the open images' marks again once editing pauses this
# long (it reads every annotation file; not at every autosave of a busy editing session).
LEARN_FROM_REFRESH_MS = 1000


@contextlib.contextmanager
def _quiet_desktop_services():
    """Drops Qt's "no launcher" warnings (qt.qpa.services, QPlatformServices) while it is active;
    every other Qt message goes on to the handler that was there before."""
    previous = None

    def handler(kind, context, message):
        if context.category == "qt.qpa.services" or "QPlatformServices" in message:
            return
        if previous is not None:
            previous(kind, context, message)
        else:
            sys.stderr.write(message + "\n")

    previous = qInstallMessageHandler(handler)
    try:
        yield
    finally:
        qInstallMessageHandler(previous)


def _default_controller(parent):
    try:
        # deferred: the model controller brings torch; the window opens first
        from sasnet_gui.models.controller import ModelController
    except ImportError:  # the models package is optional for the canvas to work
        return None
    return ModelController(parent)


class MainWindow(QMainWindow):
    filesOpened = Signal(list)

    def __init__(self, controller=None, settings: AppSettings | None = None):
        super().__init__()
        self.setWindowTitle("SASNet Studio")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.resize(1400, 900)
        self.settings = settings or AppSettings()
        self.controller = controller if controller is not None else _default_controller(self)

        self.document = AnnotationDocument(self)
        self.canvas = CanvasView(self.document)
        self.files = FileListModel(self)
        self.counter = CountingQueue(self)
        self.session = ImageSession(self.document, self.canvas, self.files, self.counter, self)
        self.counts = CountPanel()
        self.overlays = OverlayControls(self.canvas)
        self.appearance = AppearanceControls(self.canvas)  # marker style, brightness / contrast / gamma
        self.last_session = LastSession(self)
        self.review = ReviewNavigator(self.document, self.canvas, self)
        self.duplicates = DuplicateWatcher(self.document, self)
        self.banner = NoModelBanner(HOW_TO_GET_A_MODEL)
        self.banner.openModels.connect(self.show_models_dialog)
        self.banner.getReleased.connect(self.get_released_model)
        self.welcome = WelcomeOverlay(self.canvas)
        self.model_adder = ModelFileAdder(self.controller, self) if self.controller is not None else None

        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.banner)
        lay.addWidget(self.canvas, 1)
        self.setCentralWidget(central)

        self.file_dock = FileListDock(self.files, self)
        self.addDockWidget(Qt.LeftDockWidgetArea, self.file_dock)
        self.view_dock = QDockWidget("Counts and overlays", self)
        self.view_dock.setObjectName("ViewDock")
        side = QWidget()
        side_lay = QVBoxLayout(side)
        side_lay.setContentsMargins(4, 4, 4, 4)
        side_lay.addWidget(self.counts)
        side_lay.addWidget(DuplicateWarning(self.duplicates))
        side_lay.addWidget(self.overlays)
        side_lay.addWidget(self.appearance)
        side_lay.addStretch(1)
        self.view_dock.setWidget(FitScrollArea(side))  # scrolls on a short screen instead of squeezing
        self.addDockWidget(Qt.RightDockWidgetArea, self.view_dock)
        self._extra_docks: dict[str, QDockWidget] = {}
        self._panels: dict[str, QWidget] = {}
        self.resizeDocks([self.file_dock, self.view_dock], [self.file_dock.preferred_width(), 300], Qt.Horizontal)
        # The side docks keep the full height, so the video dock only takes room under the canvas
        # (stacked under the side docks too, the window would outgrow a laptop screen).
        self.setCorner(Qt.BottomLeftCorner, Qt.LeftDockWidgetArea)
        self.setCorner(Qt.BottomRightCorner, Qt.RightDockWidgetArea)

        self._side_docks_fitted = False  # once, on the first show, after the saved state is back
        self._build_status_bar()
        self.transfer = AnnotationTransfer(self)
        self._build_actions()
        self.zoom_bar = ZoomBar(self.canvas, self.act_fit, self.act_actual_size)
        self.document.pointsChanged.connect(self.appearance.refresh_auto_size)
        self._connect()
        self._restore_settings()
        self.canvas.set_tool("edit")
        self._on_predictor(self.controller.predictor() if self.controller is not None else None)

    # -- construction -----------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        sb = ImageStatusBar(lambda: self.session.current, self)
        self.setStatusBar(sb)
        self.cursor_label = QLabel("")
        self.cursor_label.setMinimumWidth(260)
        self.model_label = QLabel("no model")
        self.get_model_button = QPushButton("Get the Released Model\u2026", flat=True)
        self.get_model_button.setObjectName("statusGetModel")
        self.get_model_button.setStyleSheet("QPushButton#statusGetModel { color: palette(link); padding: 0 6px; }")
        self.get_model_button.clicked.connect(self.get_released_model)
        self.progress = QProgressBar(maximumWidth=160, textVisible=True)
        self.progress.hide()
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cursor_label)
        sb.addPermanentWidget(self.model_label)
        sb.addPermanentWidget(self.get_model_button)

    def _act(self, text, slot=None, shortcut=None, icon_name=None, checkable=False, tip=None) -> QAction:
        a = QAction(text, self)
        if icon_name:
            a.setIcon(icon(icon_name))
        if shortcut is not None:
            a.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
        a.setCheckable(checkable)
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip)
        if slot is not None:
            (a.toggled if checkable else a.triggered).connect(slot)
        self.addAction(a)  # shortcuts work even when the menu bar is hidden
        return a

    def _build_actions(self) -> None:
        self._build_file_actions()
        self._build_edit_actions()
        self._build_view_actions()
        self._build_review_actions()
        self._build_image_and_model_actions()
        self._build_menus()
        self._build_toolbar()

    def _build_file_actions(self) -> None:
        A, K = self._act, QKeySequence
        self.act_open = A("&Open\u2026", self.open_dialog, K.Open, "open", tip="Open images or videos")
        self.act_open_folder = A("Open &Folder\u2026", self.open_folder_dialog, "Ctrl+Shift+O", "folder")
        self.act_import = A("&Import Annotation\u2026", self.transfer.import_dialog, "Ctrl+I")
        # triggered(bool checked) must not arrive as the export scope
        self.act_export = A("&Export Annotations\u2026", lambda: self.transfer.export_dialog(), "Ctrl+E")
        self.act_export_csv = A("Export &Counts as CSV\u2026", self.transfer.export_counts_dialog)
        self.act_export_density = A("Export &Density Overlay as PNG\u2026",
                                    lambda: self.transfer.export_overlay_dialog("density"))
        self.act_export_levels = A("Export &Level Overlay as PNG\u2026",
                                   lambda: self.transfer.export_overlay_dialog("levels"))
        self.act_quit = A("&Quit", self.close, K.Quit)
        self.act_reopen = A("Reopen Last Session at Start", self.last_session.set_reopen_at_start, checkable=True,
                            tip="Open the folders and files of the last session, its image and zoom, at start")

    def _build_edit_actions(self) -> None:
        A, K = self._act, QKeySequence
        doc, canvas = self.document, self.canvas
        self.act_undo = doc.undo_group.createUndoAction(self, "&Undo")  # the open image's own history
        self.act_undo.setShortcuts(K.Undo)
        self.act_undo.setIcon(icon("undo"))
        self.act_redo = doc.undo_group.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts([K("Ctrl+Shift+Z"), K("Ctrl+Y")])
        self.act_redo.setIcon(icon("redo"))
        self.addActions([self.act_undo, self.act_redo])
        self.act_delete = A("&Delete Selected Points", doc.delete_selection, [K(K.Delete), K("Backspace")], "delete")
        self.act_select_all = A("Select &All Points", doc.select_all, K.SelectAll)
        self.act_escape = A("Clear Selection / Cancel", self._escape, "Esc")
        self.act_from_model = A("Start from &Model Points", self.start_from_model, "Ctrl+M", "model-points",
                                tip="Replace the points by the heads the model estimated (one undo step)")
        self.act_clear_points = A("Clear All Points", self.clear_points)
        self.act_reviewed = A("Mark as &Reviewed", doc.set_reviewed, "Ctrl+R", "reviewed", checkable=True,
                              tip="The points of this image are right: fine-tuning may learn from it")
        self.act_finish_roi = A("Finish Region", canvas.finish_roi, [K(Qt.Key_Return), K(Qt.Key_Enter)])
        self.act_remove_roi = A("Remove Last Region", self._remove_last_roi)
        tools = QActionGroup(self)
        self.act_tool_edit = A("&Edit Points", lambda on: on and canvas.set_tool("edit"), "E", "edit-points", True,
                               "Click to add a head, drag to move, right-click to delete, Shift+drag to select")
        self.act_tool_roi = A("Region of &Interest", lambda on: on and canvas.set_tool("roi"), "G", "roi", True,
                              "Click the corners of a polygon; double-click or Enter closes it")
        self.act_tool_pan = A("&Pan", lambda on: on and canvas.set_tool("pan"), "H", "pan", True)
        for a in (self.act_tool_edit, self.act_tool_roi, self.act_tool_pan):
            tools.addAction(a)
        self.act_tool_edit.setChecked(True)
        self.act_select_duplicates = A("Select D&uplicate Points",
                                       tip="Select the points that sit on top of another one")
        self.act_remove_duplicates = A("Remove Duplicate Points",
                                       tip="Remove one point of each pair on top of each other (one undo step)")
        self.duplicates.bind_actions(self.act_select_duplicates, self.act_remove_duplicates)

    def _build_view_actions(self) -> None:
        A, K, canvas = self._act, QKeySequence, self.canvas
        self.act_fit = A("&Fit to Window", canvas.fit, "Ctrl+0", "fit")
        self.act_zoom_in = A("Zoom &In", lambda: canvas.zoom(1.25), K.ZoomIn)
        self.act_zoom_out = A("Zoom &Out", lambda: canvas.zoom(0.8), K.ZoomOut)
        self.act_actual_size = A("&Actual Size (1:1)", canvas.actual_size, "Ctrl+1",
                                 tip="One image pixel per screen pixel")
        self.act_keep_zoom = A("&Keep Zoom Between Images", self._set_keep_zoom, checkable=True,
                               tip="Another image of the same size opens at this zoom and pan instead of fitted")
        self.appearance_actions = AppearanceActions(A, self.appearance, self)
        self.act_shortcuts = A("&Keyboard Shortcuts…", self.show_shortcuts, "F1")
        self.act_show_density = self._toggle_for(self.overlays.density, "Show &Density", "D")
        self.act_show_levels = self._toggle_for(self.overlays.levels, "Show &Levels", "L")
        self.act_show_points = self._toggle_for(self.overlays.points, "Show &Points", "P")
        self.act_show_unsure = self._toggle_for(self.overlays.unsure, "Show &Uncertainty", "U")

    def _build_review_actions(self) -> None:
        A, K = self._act, QKeySequence
        self.act_next_cell = A("Confirm Cell and Go to Next &Unsure Cell", self.review.confirm_and_next, "N",
                               tip="Mark the outlined review cell checked and zoom to the most unsure unchecked one")
        self.act_prev_cell = A("Back to Previous Cell (Marks Nothing)", self.review.back, "Shift+N",
                               tip="Look again at the cell before this one in the review order; nothing is marked")
        self.act_mark_cell = A("&Mark Cell Reviewed", self._mark_cell, "M",
                               tip="Mark the outlined review cell checked without moving on")
        self.act_next = A("&Next Image", lambda: self._step(1), [K(Qt.Key_PageDown), K("]")])
        self.act_prev = A("&Previous Image", lambda: self._step(-1), [K(Qt.Key_PageUp), K("[")])
        self.act_next_to_review = A("Next Image to Re&view", self._next_image_to_review, "Ctrl+N",
                                    tip="Open the next image in the list with review cells nobody confirmed yet")
        self.counts.set_review_keys(keys_text(self.act_next_cell, self.act_prev_cell, self.act_mark_cell,
                                              self.act_next, self.act_prev, self.act_next_to_review))

    def _build_image_and_model_actions(self) -> None:
        A = self._act
        self.act_count = A("&Count This Image", self.count_current, "F5", "count")
        self.act_count_all = A("Count &All Images", self.count_all, "Shift+F5")
        self.act_stop = A("&Stop Counting", self.stop_counting, "Ctrl+.", "stop")
        self.act_stop.setEnabled(False)
        self.act_models = A("&Models\u2026", self.show_models_dialog, None, "model")
        self.act_get_released = A("Get the &Released Model\u2026", self.get_released_model,
                                  tip="Download SHHA (dense crowds) or SHHB (sparse street scenes) from the SASNet authors")
        self.act_add_model = A("&Add a Model File\u2026", self.add_model_dialog,
                               tip="Register a SASNet checkpoint (.pth) you have")
        self.act_video = A("&Video\u2026", lambda: self._show_extra("video"), None, "video")
        self.act_finetune = A("&Fine-tune\u2026", lambda: self._show_extra("finetune"), None, "finetune",
                              tip="Fine-tune the model on the reviewed images")
        self.act_about = A("&About SASNet Studio", self._about)
        self.act_log_folder = A("Open &Log Folder", self.open_log_folder,
                                tip="The log files say what happened; send them with a problem report")

    def _build_menus(self) -> None:
        sep, recent = "separator", "recent"  # places in the menus' table that are not actions
        menus = {
            "&File": [self.act_open, self.act_open_folder, recent, sep, self.act_import, self.act_export,
                      self.act_export_csv, self.act_export_density, self.act_export_levels, sep, self.act_reopen,
                      sep, self.act_quit],
            "&Edit": [self.act_undo, self.act_redo, sep, self.act_delete, self.act_select_all, self.act_escape,
                      self.act_select_duplicates, self.act_remove_duplicates, sep, self.act_from_model,
                      self.act_clear_points, self.act_reviewed, sep, self.act_tool_edit, self.act_tool_roi,
                      self.act_tool_pan, self.act_finish_roi, self.act_remove_roi],
            "&View": [self.act_fit, self.act_actual_size, self.act_zoom_in, self.act_zoom_out, self.act_keep_zoom,
                      sep, self.appearance_actions, sep, self.act_show_density, self.act_show_levels,
                      self.act_show_unsure, self.act_show_points, sep, self.file_dock.toggleViewAction(),
                      self.view_dock.toggleViewAction(), self.act_video, self.act_finetune],
            "&Image": [self.act_count, self.act_count_all, self.act_stop, sep, self.act_next, self.act_prev,
                       self.act_next_to_review, sep, self.act_next_cell, self.act_prev_cell, self.act_mark_cell],
            "&Model": [self.act_models, self.act_get_released, self.act_add_model, self.act_finetune],
            "&Help": [self.act_shortcuts, self.act_log_folder, self.act_about],
        }
        for title, items in menus.items():
            menu = self.menuBar().addMenu(title)
            for item in items:
                if item is sep:
                    menu.addSeparator()
                elif item is recent:
                    self.recent_menu = menu.addMenu("Open &Recent")
                    self.recent = RecentMenu(self.recent_menu, self.settings, lambda path: self.open_paths([path]))
                elif isinstance(item, QAction):
                    menu.addAction(item)
                else:  # a group that adds its own actions and submenus (head markers, display)
                    item.add_to(menu)

    def _build_toolbar(self) -> None:
        short = {self.act_open: "Open", self.act_open_folder: "Folder", self.act_count_all: "Count all",
                 self.act_stop: "Stop", self.act_undo: "Undo", self.act_redo: "Redo", self.act_tool_edit: "Points",
                 self.act_tool_roi: "ROI", self.act_tool_pan: "Pan", self.act_from_model: "Model points",
                 self.act_reviewed: "Reviewed", self.act_finetune: "Fine-tune"}
        for a, text in short.items():
            a.setIconText(text)  # toolbar labels stay short; menus keep the full text
        self.act_count_all.setIcon(icon("count"))
        tb = self.addToolBar("Main")
        tb.setObjectName("MainToolBar")
        tb.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        groups = [[self.act_open, self.act_open_folder], [self.act_count_all, self.act_stop],
                  [self.act_undo, self.act_redo], [self.act_tool_edit, self.act_tool_roi, self.act_tool_pan],
                  [self.act_from_model, self.act_reviewed], [self.act_finetune]]
        for i, group in enumerate(groups):
            if i:
                tb.addSeparator()
            tb.addActions(group)

    def _set_keep_zoom(self, on: bool) -> None:
        self.canvas.keep_zoom = bool(on)
        self.settings.set_value("view/keep_zoom", bool(on))

    def show_shortcuts(self):
        # deferred: built when first shown
        from sasnet_gui.shortcuts import ShortcutSheet

        sheet = self.shortcut_sheet = ShortcutSheet(self)  # read from the actions as they are now
        sheet.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        sheet.open()
        return sheet

    def _toggle_for(self, checkbox, text, shortcut) -> QAction:
        a = self._act(text, checkbox.setChecked, shortcut, checkable=True)
        a.setChecked(checkbox.isChecked())
        checkbox.toggled.connect(a.setChecked)
        return a

    def _connect(self) -> None:
        self.file_dock.fileActivated.connect(self.session.show)
        self.session.imageShown.connect(self.statusBar().image_shown)  # before a new message
        self.session.imageShown.connect(self._on_image_shown)
        self.session.imageFailed.connect(self._on_image_failed)
        self.counts_controller = CountsController(self.counts, self.session, self.files, self.document, self)
        self.counts_controller.message.connect(self.statusBar().showMessage)
        self.document.reviewedChanged.connect(self._on_reviewed_changed)
        self.review.progressChanged.connect(self.counts_controller.review_progress)
        self.review.cellChanged.connect(self._on_review_cell)
        self.document.saveFailed.connect(lambda exc: errors.show_error(self, exc, what="Could not save the annotation"))
        self.document.loadFailed.connect(self._on_annotation_unreadable)
        self.document.misfit.connect(self._on_annotation_misfit)
        self.document.changedOnDisk.connect(lambda path: self.statusBar().showMessage(
            f"{Path(path).name}: its annotation file was changed on disk by another program and is left as "
            "it is; open the image again to see its points", 15000))
        self.duplicates.appeared.connect(lambda n: self.statusBar().showMessage(
            f"{n} point{'s' if n != 1 else ''} now on top of another one: Ctrl+Z takes the edit back, "
            "Edit \u25b8 Remove Duplicate Points removes them", 10000))
        self.counter.progress.connect(self._on_progress)
        self.counter.tileProgress.connect(self.counts_controller.tiles)
        self.counter.started.connect(lambda p: self._set_counting(True))
        self.counter.idle.connect(lambda: self._set_counting(False))
        self.counter.failed.connect(lambda p, msg: self.statusBar().showMessage(f"{Path(p).name}: {msg}", 8000))
        self.canvas.cursorMoved.connect(self._on_cursor)
        self.canvas.cursorLeft.connect(lambda: self.cursor_label.setText(""))
        self.canvas.toolChanged.connect(self._on_tool_changed)
        if self.controller is not None:
            self.controller.predictorChanged.connect(self._on_predictor)
            self.controller.loadFailed.connect(self._on_model_failed)
            if hasattr(self.controller, "busyChanged"):
                self.controller.busyChanged.connect(lambda _busy: self._show_model_state())
            if hasattr(self.controller, "registryChanged"):
                self.controller.registryChanged.connect(self._show_model_state)
            if hasattr(self.controller, "stageChanged"):  # "Preparing the model for this CPU…"
                self.controller.stageChanged.connect(lambda _stage: self._show_model_state())
                self.controller.engineNote.connect(lambda note: self.statusBar().showMessage(note, 15000))
                # int8 calibrates on the images of the file list.
                self.controller.set_calibration_images(lambda: [e.path for e in self.files.entries()])
                self.filesOpened.connect(self.controller.images_opened)
        self.welcome.openImages.connect(self.act_open.trigger)
        self.welcome.openFolder.connect(self.act_open_folder.trigger)
        self.welcome.getReleasedModel.connect(self.act_get_released.trigger)
        self.welcome.addModelFile.connect(self.act_add_model.trigger)

    # -- opening ----------------------------------------------------------------------------------
    def open_paths(self, paths, show_first: bool = True, remember: bool = True) -> list[str]:
        """Add images (files or whole folders) to the list and show the first new one; videos
        go to the video panel. Returns the image paths added. ``remember``: list the paths under
        Open Recent and in the session reopened at the next start (not for files the app made
        itself, such as a stored video frame: the video they came from is what was opened)."""
        found = collect_inputs(paths, absolute=True)
        images, videos, skipped = found.images, found.videos, found.problems
        if remember:  # what was opened, as it was opened: one video stays one entry
            self.last_session.note_opened(paths)
            for p in reversed(list(paths)):  # the first path ends on top
                if Path(p).exists():
                    self.settings.add_recent(p)
        added = self.files.add_paths([str(p) for p in images])
        if show_first and images:
            first = str(images[0])
            self.file_dock.select_path(first)
            self.session.show(first)
        if added and self.session.auto_count and self.counter.predictor() is not None:
            self.counter.enqueue(added)
        for v in videos:
            self.open_video(str(v))
        log.info("opened %d new image(s) and %d video(s) from %d path(s)", len(added), len(videos), len(paths))
        for problem in skipped:  # the status bar names the first; the log keeps them all
            log.warning("skipped %s", problem)
        if skipped:
            more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
            self.statusBar().showMessage(f"Skipped {skipped[0]}{more}", 8000)
        self.filesOpened.emit(added)
        return added

    def open_dialog(self) -> None:
        # deferred: OpenCV, which the window does not load to open
        from sasnet_core.io.imageio import IMAGE_SUFFIXES, VIDEO_SUFFIXES

        pattern = " ".join(f"*{s}" for s in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images or videos", self.last_folder(),
                                                f"Images and videos ({pattern});;All files (*)")
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", self.last_folder())
        if folder:
            self.open_paths([folder])

    def last_folder(self) -> str:
        """Where a file dialog starts: the most recently opened folder, else the home folder."""
        recent = self.settings.recent_folders()
        return recent[0] if recent else str(Path.home())

    def open_video(self, path: str) -> None:
        panel = self._show_extra("video")
        if panel is not None:
            panel.open_video(path)
            if self.session.current is None:  # nothing else open: not the first-start card
                self.canvas.set_image(None, f"{Path(path).name} is open in the Video panel below. Frames "
                                            "stored there open here to annotate.")

    def dragEnterEvent(self, ev) -> None:
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        ev.acceptProposedAction()
        models = [p for p in paths if is_checkpoint_path(p)]  # .pth files become models
        others = [p for p in paths if p not in models]
        if models:
            self.add_model_files(models)
        if others:
            self.open_paths(others)

    # -- counting ---------------------------------------------------------------------------------
    def _on_predictor(self, predictor) -> None:
        had = self.counter.predictor() is not None
        self.counter.set_predictor(predictor)
        self._show_model_state()
        for a in (self.act_count, self.act_count_all, self.act_from_model):
            a.setEnabled(predictor is not None)
        if predictor is None:
            return
        if had:
            self.session.forget_results()
        if self.session.auto_count:  # the shown image first, then the rest of the list
            if self.session.current:
                self.counter.enqueue([self.session.current], front=True)
            self.counter.enqueue([e.path for e in self.files.entries() if e.path not in self.session.results])

    def _model_loading(self) -> bool:
        return self.controller is not None and bool(getattr(self.controller, "is_busy", lambda: False)())

    def _show_model_state(self) -> None:
        """Status-bar model name and the "no model" banner; while a model loads, say so instead."""
        predictor = self.counter.predictor()
        loading = self._model_loading()
        self.banner.setVisible(predictor is None and not loading)
        self.get_model_button.setVisible(predictor is None and not loading and self.controller is not None)
        self.welcome.set_has_model(self._model_registered())
        name = self.controller.current_name() if self.controller is not None and predictor is not None else None
        engine = getattr(self.controller, "engine_text", lambda: None)() if predictor is not None else None
        if loading:
            self.model_label.setText(getattr(self.controller, "stage", lambda: "Loading model\u2026")())
        else:  # "SHHA · OpenVINO bf16 · cpu": what auto resolved to
            fallback = f"model: {name}" if name else ("model loaded" if predictor else "no model")
            self.model_label.setText(engine or fallback)
        notes = getattr(self.controller, "engine_notes", lambda: [])() if predictor is not None else []
        self.model_label.setToolTip("\n".join(notes))

    def _model_registered(self) -> bool:
        if self.controller is None:
            return False
        if self.controller.has_model():
            return True
        try:
            return bool(self.controller.registry.entries())
        except Exception:  # noqa: BLE001 - a damaged registry is reported where it is read
            return False

    def _on_model_failed(self, message: str) -> None:
        self._show_model_state()
        errors.show_error(self, message, what="Could not load the model")

    def stop_counting(self) -> None:
        if not self.act_stop.isEnabled():
            return
        self.counter.cancel()
        self.statusBar().showMessage("Counting stopped; images not counted yet keep their status.", 6000)

    def count_current(self) -> None:
        if self.session.current:
            self.session.results.pop(self.session.current, None)
            self.counter.enqueue([self.session.current], front=True)

    def count_all(self) -> None:
        self.counter.enqueue(self.files.paths())

    def _set_counting(self, on: bool) -> None:
        self.act_stop.setEnabled(on)
        self.progress.setVisible(on)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"counted {done}/{total}")

    # -- editing ----------------------------------------------------------------------------------
    def start_from_model(self) -> None:
        if self.session.current_result() is None:
            self.statusBar().showMessage("Count this image first (F5): there are no model points yet.", 6000)
            return
        if self.may_replace_placed_points("Replace points", "with the model's points"):
            self.session.start_from_model()

    def clear_points(self) -> None:
        if self.may_replace_placed_points("Clear points", "(remove them all)"):
            self.document.replace_points([], text="Clear points")

    def may_replace_placed_points(self, title: str, how: str) -> bool:
        """Ask before points a person placed are replaced; True to go on. Undo history belongs
        to the open image, so the question says how long Undo can bring them back."""
        placed = int((self.document.sources == SOURCE_PERSON).sum()) if self.document.is_open else 0
        if not placed:
            return True
        answer = QMessageBox.question(
            self, title,
            f"Replace the {placed} point{'s' if placed != 1 else ''} placed by a person {how}? "
            "(Edit \u25b8 Undo brings them back while SASNet Studio is open, also after other images.)")
        return answer == QMessageBox.StandardButton.Yes

    def _escape(self) -> None:
        if self.canvas.roi_layer.draft:
            self.canvas.cancel_roi()
        else:
            self.document.set_selection([])

    def _remove_last_roi(self) -> None:
        if self.document.rois:
            self.document.remove_roi(len(self.document.rois) - 1)

    def _on_reviewed_changed(self, value: bool) -> None:
        self.act_reviewed.blockSignals(True)
        self.act_reviewed.setChecked(value)
        self.act_reviewed.blockSignals(False)

    def _on_tool_changed(self, tool: str) -> None:
        {"edit": self.act_tool_edit, "roi": self.act_tool_roi, "pan": self.act_tool_pan}[tool].setChecked(True)

    def _step(self, delta: int) -> None:
        path = self.file_dock.step(delta)
        if path:
            self.file_dock.select_path(path)
            self.session.show(path)

    def _next_image_to_review(self) -> None:
        path = next_image_to_review(self.file_dock, self.files, self.session.current)
        if path:
            self.file_dock.select_path(path)
            self.session.show(path)
        else:
            self.statusBar().showMessage("No other image in the list has review cells left to confirm", 6000)

    def _mark_cell(self) -> None:
        if not self.review.mark_current():
            self.statusBar().showMessage("No review cell is outlined: N shows the most unsure one", 6000)

    # -- video and fine-tuning panels, created on first use ----------------------------------------
    def _show_extra(self, kind: str):
        dock = self._extra_docks.get(kind)
        new = False
        if dock is None:
            try:
                if kind == "video":
                    # deferred: the panels bring OpenCV and torch; built when first shown
                    from sasnet_gui.video.panel import VideoPanel as Panel
                else:
                    # deferred: the panels bring OpenCV and torch; built when first shown
                    from sasnet_gui.finetune.panel import FineTunePanel as Panel
                panel = Panel(self.controller, self)
            except ImportError as exc:
                errors.show_error(self, f"This part of SASNet Studio is not installed ({exc}).", what=kind.title())
                return None
            dock = QDockWidget("Video" if kind == "video" else "Fine-tuning", self)
            dock.setObjectName(f"{kind.title()}Dock")
            # Scrolls when squeezed: a panel's minimum height (the fine-tuning one stacks under
            # the counts) must not grow the window past a 1280 x 800 screen.
            dock.setWidget(FitScrollArea(panel))
            self._panels[kind] = panel
            self.addDockWidget(Qt.BottomDockWidgetArea if kind == "video" else Qt.RightDockWidgetArea, dock)
            self._extra_docks[kind] = dock
            new = True
            if kind == "video" and hasattr(panel, "frameStored"):
                panel.frameStored.connect(lambda p: self.open_paths([p], remember=False))
        panel = self._panels[kind]
        if kind == "finetune" and hasattr(panel, "set_image_source"):
            panel.set_image_source(self._images_to_learn_from)
            if new:  # what it will learn from follows the person's saved marks while it is open
                self._learn_from_timer = QTimer(self, singleShot=True, interval=LEARN_FROM_REFRESH_MS)
                self._learn_from_timer.timeout.connect(
                    lambda: panel.refresh() if panel.isVisible() and not panel.is_running() else None)
                self.document.saved.connect(lambda _file: self._learn_from_timer.start())
        dock.show()
        dock.raise_()
        self._keep_on_screen()
        if new and kind == "video":  # image and video share the height; the video does not take it all
            self.layout().activate()
            room = self.centralWidget().height() + dock.height()
            want = max(room // 2, panel.minimumSizeHint().height() + dock.height() - dock.widget().height())
            self.resizeDocks([dock], [min(want, room - 200)], Qt.Vertical)
        return panel

    def panel(self, kind: str):
        """The "video" or "finetune" panel, or None before its first use."""
        return self._panels.get(kind)

    def _keep_on_screen(self) -> None:
        """A new dock may have grown the window: bring it back inside the screen."""
        screen = self.screen()
        if screen is None or self.isMaximized() or self.isFullScreen():
            return
        avail = screen.availableGeometry()
        frame = self.frameGeometry().size() - self.size()  # title bar and borders
        w = min(self.width(), avail.width() - frame.width())
        h = min(self.height(), avail.height() - frame.height())
        if (w, h) != (self.width(), self.height()):
            self.resize(w, h)

    def _images_to_learn_from(self) -> list[str]:
        """Every open image, the current one's edits saved: fine-tuning asks at each start and
        learns from those reviewed by then."""
        self.document.flush()
        return self.files.paths()

    def show_models_dialog(self) -> None:
        if self.controller is None:
            errors.show_error(self, "Model management is not installed.", what="Models")
            return
        # deferred: brings torch; built when first shown
        from sasnet_gui.models.dialog import ModelsDialog

        dlg = ModelsDialog(self.controller, self)
        dlg.open()

    def get_released_model(self):
        """The dialog that downloads, verifies, registers and loads a released model."""
        if self.controller is None:
            errors.show_error(self, "Model management is not installed.", what="Models")
            return None
        # deferred: brings torch; built when first shown
        from sasnet_gui.models.get_released import GetReleasedDialog

        old = getattr(self, "released_dialog", None)
        if old is not None and (old.is_running() or old.isVisible()):
            old.show()  # one download at a time: bring the running one back
            old.raise_()
            return old
        if old is not None:
            old.deleteLater()
        dlg = self.released_dialog = GetReleasedDialog(self.controller, self)
        dlg.modelReady.connect(lambda name: self.statusBar().showMessage(
            f"Downloaded and verified {name}; loading it\u2026", 10000))
        dlg.open()
        return dlg

    def add_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a SASNet checkpoint", self.last_folder(),
                                              "PyTorch checkpoints (*.pth *.pt);;All files (*)")
        if path:
            self.add_model_files([path])

    def add_model_files(self, paths) -> None:
        """Register checkpoint files (checked and recognised off the GUI thread), then offer them."""
        if self.model_adder is None:
            errors.show_error(self, "Model management is not installed.", what="Models")
            return
        self.model_adder.add(paths)

    def open_log_folder(self) -> None:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        # Without a desktop launcher Qt's openUrl fails and prints its own warning on stderr; the
        # path in the status bar is the answer then, so that warning is kept out of the terminal.
        with _quiet_desktop_services():
            opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        if not opened:
            self.statusBar().showMessage(f"The log files are in {folder}", 10000)

    def _about(self) -> None:
        QMessageBox.about(self, "About SASNet Studio",
                          "<b>SASNet Studio</b><br>Crowd counting with SASNet (Song et al., AAAI 2021):"
                          " count, see what the model sees, correct head points, fine-tune.")

    # -- status -----------------------------------------------------------------------------------
    def _on_annotation_misfit(self, image: str, problems: list) -> None:
        """The points may not fit the image: say so, without blocking."""
        status, heading = misfit_texts(image, self.document.truth)
        self.statusBar().showMessage(status, MISFIT_STATUS_MS)
        self.misfit_box = open_misfit_box(self, heading, problems)

    def _on_annotation_unreadable(self, exc) -> None:
        kept = self.document.kept_aside
        if isinstance(exc, GroundTruthError):
            what = ("The data set's ground truth of this image could not be read; its file is left as it "
                    "is, and the points you place are kept in your annotation store")
        elif self.document.left_alone == "newer":
            what = "The saved annotation is a newer version's; it is left unchanged on disk"
        elif kept:
            what = "The saved annotation could not be read; a copy was kept as " + kept.name
        else:
            what = ("The saved annotation could not be read, and no copy of it could be kept; it is left "
                    "unchanged on disk")
        errors.show_error(self, exc, what=what)

    def _on_image_failed(self, path: str, exc) -> None:
        # The canvas must not keep showing (and editing) the previous image under this one's name.
        reason = getattr(exc, "detail", None) or str(exc)
        self.session.close_image(f"{Path(path).name} could not be opened: {reason}")
        self.statusBar().showMessage(f"{Path(path).name}: {reason}")  # not an earlier image's error
        self.setWindowTitle(f"{Path(path).name} (not opened) \u2013 SASNet Studio")
        # Once per file and reason: on later visits the list, counts panel and status bar say it.
        errors.show_error_once(self, (path, reason), exc, what="Could not open the image")

    def _on_review_cell(self, cell) -> None:
        if cell is not None:
            ordered = "" if self.session.current_result() is not None else " (in reading order: count the image " \
                                                                            "to visit the most unsure cells first)"
            state = "reviewed" if self.review.is_reviewed(cell) else "not reviewed yet"
            self.statusBar().showMessage(f"Review cell {cell[0] + 1}, {cell[1] + 1}, {state}{ordered}: N confirm "
                                         f"and next, M confirm, Shift+N back", 6000)
        elif self.document.is_open:
            self.statusBar().showMessage("Every review cell of this image is reviewed; mark the image Reviewed "
                                         "(Ctrl+R) when its points are right, Ctrl+N: next image to review", 8000)

    def _on_image_shown(self, path: str) -> None:
        self.file_dock.select_path(path)
        self.review.refresh()
        w, h = self.canvas.image_shape[1], self.canvas.image_shape[0]
        self.setWindowTitle(f"{Path(path).name} ({w}\u00d7{h}) \u2013 SASNet Studio")

    def _on_cursor(self, x: float, y: float, value) -> None:
        if value is None:  # off the image: its coordinates mean nothing to a person
            self.cursor_label.setText("")
            return
        self.cursor_label.setText(f"x {x:.1f}  y {y:.1f}  RGB " + ",".join(str(v) for v in value))

    # -- settings and closing ---------------------------------------------------------------------
    def showEvent(self, ev) -> None:  # noqa: N802 - Qt name
        super().showEvent(ev)
        if not self._side_docks_fitted:
            self._side_docks_fitted = True
            # After the first layout pass: until then the restored dock sizes are not applied yet.
            QTimer.singleShot(0, self, self._fit_side_docks)

    def _fit_side_docks(self) -> None:
        """The canvas keeps the most room: a side dock restored wider than ``SIDE_DOCK_SHARE`` of the
        window (its area was once widened for the fine-tuning panel) comes back at that share."""
        self.layout().activate()
        cap = int(self.width() * SIDE_DOCK_SHARE)
        wide = [d for d in (self.file_dock, self.view_dock)
                if d.isVisible() and not d.isFloating() and d.width() > cap]
        if wide:
            self.resizeDocks(wide, [max(cap, d.minimumSizeHint().width()) for d in wide], Qt.Horizontal)

    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        self.overlays.restore(self.settings.group("overlays"))
        self.session.auto_count = self.settings.bool("counting/auto", True)
        self.overlays.changed.connect(lambda: self.settings.set_group("overlays", self.overlays.state()))
        self.appearance.restore(self.settings.group("appearance"))
        self.appearance.changed.connect(lambda: self.settings.set_group("appearance", self.appearance.state()))
        self.act_keep_zoom.setChecked(self.settings.bool("view/keep_zoom", False))
        self.act_reopen.setChecked(self.last_session.reopen_at_start)

    def _confirm_quit(self) -> bool:
        """Closing during a fine-tuning run would lose it: ask first. Stop and Quit cancels the
        run (its staging is removed) without waiting for the trainer's step; Cancel keeps both
        the app and the run."""
        panel = self._panels.get("finetune")
        if panel is None or not panel.is_running():
            return True
        box = QMessageBox(QMessageBox.Icon.Question, "Quit SASNet Studio",
                          f"A fine-tuning run is in progress ({panel.progress_text()}). "
                          "Stop it and quit?", parent=self)
        stop = box.addButton("Stop and Quit", QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        box.exec()
        if box.clickedButton() is not stop:
            return False
        panel.shutdown()
        return True

    def closeEvent(self, ev) -> None:
        if not self._confirm_quit():
            ev.ignore()
            return
        self.document.flush()  # the last edits reach the disk before anything else
        self.counter.shutdown()  # stops the image being counted; waits about a second at most
        self.settings.set_value("window/geometry", self.saveGeometry())
        self.settings.set_value("window/state", self.saveState())
        self.settings.set_group("overlays", self.overlays.state())
        self.settings.set_group("appearance", self.appearance.state())
        self.last_session.remember_view()
        self.settings.sync()
        super().closeEvent(ev)
