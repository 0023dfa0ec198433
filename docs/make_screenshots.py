"""Take the README screenshots of the real window (run under a virtual screen).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py WEIGHTS IMAGE_DIR IMAGE [GT_FILE]
    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py --finetune WEIGHTS SHANGHAITECH_SPLIT_DIR
    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py --welcome
    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py --review WEIGHTS IMAGE_DIR IMAGE [GT_FILE]
    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/make_screenshots.py --workbench [DATASET_DIR [IMAGE]]

WEIGHTS: a checkpoint (SHHA.pth gives the best pictures). Images are copied to a temporary folder
first, so nothing is written beside the originals. GT_FILE: an annotation to start the annotation
screenshot from (any format `sasnet convert` reads). The first form writes counting.png, levels.png
and annotation.png into docs/screenshots/; the second imports the ground truth of a ShanghaiTech
layout split (images/ + ground-truth/), marks every image reviewed, runs a short one-click
fine-tuning and writes finetune.png. The third writes welcome.png: the first start, with no model
and no images. The fourth writes review.png: review mode on IMAGE (a dense one), the uncertainty
overlay on, a few cells reviewed with N and the next one outlined, zoomed in to click on heads.
The fifth needs no model: it opens a copy of a data set folder (default the shared UCF_CC_50) with
File > Open Folder, shows IMAGE (default 1.jpg, 4,633 heads) with its ground truth and writes
workbench.png; then the shared street set (ShanghaiTech layout) at 1:1 on one image's heads,
workbench_sparse.png. Both at 1280 x 800, with 1920 x 1080 copies in /tmp/shots/ for checking.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "screenshots"


class Window:
    """The real main window on a copy of some images, with helpers to wait for it."""

    def __init__(self, weights: str | None, image_dir: Path, whole_folder: bool = False):
        """``weights`` None: no model at all (the annotation workflow). ``whole_folder``: copy the
        folder as it is (a data set with its ground-truth files and sub-folders), under its own name."""
        self.tmp = Path(tempfile.mkdtemp(prefix="sasnet_shots_"))
        os.environ["SASNET_STUDIO_HOME"] = str(self.tmp / "home")
        if whole_folder:
            self.images = self.tmp / Path(image_dir).name
            shutil.copytree(image_dir, self.images)
        else:
            self.images = self.tmp / "images"
            self.images.mkdir()
            for p in sorted(Path(image_dir).iterdir()):
                if p.suffix.lower() in (".jpg", ".jpeg", ".png"):
                    shutil.copy(p, self.images / p.name)
        from PySide6.QtWidgets import QApplication

        self.app = QApplication.instance() or QApplication([sys.argv[0]])
        from sasnet_gui.app import apply_dark_palette, create_window

        apply_dark_palette(self.app)
        self.w = create_window(weights=weights, no_model=weights is None)
        self.w.resize(1500, 900)
        if weights is not None:
            self.spin(lambda: self.w.controller.predictor() is not None)

    def spin(self, cond, limit=1800):
        t0 = time.time()
        while not cond():
            self.app.processEvents()
            time.sleep(0.01)
            if time.time() - t0 > limit:
                raise TimeoutError("the window did not get there in time")

    def settle(self, s=0.5):
        t0 = time.time()
        while time.time() - t0 < s:
            self.app.processEvents()
            time.sleep(0.01)

    def open_folder(self, folder: Path) -> None:
        """File > Open Folder..., the person picking ``folder``; waits for the list's scan."""
        from PySide6.QtWidgets import QFileDialog

        w, pick = self.w, QFileDialog.getExistingDirectory
        QFileDialog.getExistingDirectory = staticmethod(lambda *a, **k: str(folder))
        try:
            w.act_open_folder.trigger()
        finally:
            QFileDialog.getExistingDirectory = pick
        self.spin(lambda: w.session.current is not None and w.document.is_open and not w.file_dock.scanning())

    def show_image(self, path: Path) -> None:
        w, target = self.w, str(path)
        w.file_dock.select_path(target)
        w.session.show(target)
        self.spin(lambda: w.session.current == target and w.document.is_open)

    def save(self, out: Path, size: tuple[int, int], arrange=None) -> None:
        """Grab the window at ``size``; after the resize the image is fitted (View > Fit to Window),
        or ``arrange()`` sets the view."""
        from PySide6.QtGui import QCursor

        self.w.resize(*size)
        self.settle(0.5)
        (arrange or self.w.act_fit.trigger)()
        self.settle(0.5)
        # The pointer over the canvas's centre, so the status bar's pixel readout is of this view.
        canvas = self.w.canvas
        QCursor.setPos(canvas.mapToGlobal(canvas.rect().center()))
        self.settle(1.0)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.w.grab().save(str(out))

    def close(self):
        self.w.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def welcome_shot() -> None:
    """The window a new user sees first: no model registered, nothing open."""
    tmp = Path(tempfile.mkdtemp(prefix="sasnet_shots_"))
    os.environ["SASNET_STUDIO_HOME"] = str(tmp / "home")
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    from sasnet_gui.app import apply_dark_palette, create_window

    apply_dark_palette(app)
    w = create_window()
    w.resize(1500, 900)
    w.show()
    t0 = time.time()
    while time.time() - t0 < 1.5:
        app.processEvents()
        time.sleep(0.01)
    OUT.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(OUT / "welcome.png"))
    w.close()
    shutil.rmtree(tmp, ignore_errors=True)


def _busiest_view(points, view: tuple[float, float], image: tuple[int, int]) -> tuple[float, float]:
    """The centre of a ``view``-sized window (w, h) around the head with the most other heads
    inside it, moved so the window stays on the ``image`` (w, h) where it fits."""
    import numpy as np

    pts = np.asarray(points, float)
    near = (np.abs(pts[:, None, 0] - pts[None, :, 0]) < view[0] / 2) & \
        (np.abs(pts[:, None, 1] - pts[None, :, 1]) < view[1] / 2)
    centre = pts[int(near.sum(axis=1).argmax())]
    return tuple(float(np.clip(c, v / 2, n - v / 2)) if v < n else n / 2
                 for c, v, n in zip(centre, view, image))


def workbench_shot(dense_dir: str = "/work/shared/data/ucf_cc_50", dense_image: str = "1.jpg",
                   sparse_dir: str = "/work/shared/data/street_b_layout",
                   sparse_image: str = "train_data/images/IMG_4.jpg", brightness: int = 0,
                   gamma: int = 0, check_dir: str = "/tmp/shots") -> None:
    """The annotator's workbench with no model: a data set folder opened with File > Open Folder,
    every image listed with its ground-truth count, the dense image fitted with its points; then
    a sparse street image at 1:1 on its busiest heads, with circle markers so the faces under them
    show. Writes workbench.png and workbench_sparse.png (1280 x 800) and, for checking,
    1920 x 1080 copies into ``check_dir``. ``brightness`` / ``gamma``: the side panel's display
    sliders for the dense image (-100..100; UCF_CC_50's image 1 reads well as it is)."""
    from PySide6.QtCore import QPointF

    checks = Path(check_dir)
    win = Window(None, Path(dense_dir), whole_folder=True)
    win.open_folder(win.images)
    win.show_image(win.images / dense_image)
    look = win.w.appearance
    look.brightness.setValue(brightness)  # the sliders a person drags; display only
    look.gamma.setValue(gamma)
    win.save(OUT / "workbench.png", (1280, 800))
    win.save(checks / "workbench_1920.png", (1920, 1080))
    win.close()

    win = Window(None, Path(sparse_dir), whole_folder=True)
    win.open_folder(win.images)
    win.show_image(win.images / sparse_image)
    canvas, look = win.w.canvas, win.w.appearance
    look.shape.setCurrentIndex(look.shape.findData("circle"))  # the side panel's marker style

    def one_to_one() -> None:  # View > Actual Size (1:1), centred on the most heads in view
        h, w = canvas.image_shape[:2]
        x, y = _busiest_view(win.w.document.points, (canvas.vb.width(), canvas.vb.height()), (w, h))
        canvas.zoom_to(1.0, QPointF(x, y))

    win.save(OUT / "workbench_sparse.png", (1280, 800), one_to_one)
    win.save(checks / "workbench_sparse_1920.png", (1920, 1080), one_to_one)
    win.close()


def finetune_shot(weights: str, split_dir: str, steps: int = 20) -> None:
    split = Path(split_dir)
    win = Window(weights, split / "images")
    w = win.w
    w.open_paths([str(win.images)])
    for path in w.files.paths():
        w.file_dock.select_path(path)
        w.session.show(path)
        win.spin(lambda: w.session.current == path and w.document.is_open)
        w.transfer.import_annotation(split / "ground-truth" / f"GT_{Path(path).stem}.mat")
        w.document.set_reviewed(True)
        w.document.flush()
    win.spin(lambda: len(w.session.results) == len(w.files.paths()))
    panel = w._show_extra("finetune")
    panel.steps_radio.setChecked(True)
    panel.steps_spin.setValue(steps)
    finished = []
    panel.runFinished.connect(finished.append)
    panel.start()
    win.spin(lambda: bool(finished))
    w.overlays.density.setChecked(True)
    win.settle(1.0)
    OUT.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(OUT / "finetune.png"))
    win.close()


def main(weights: str, image_dir: str, image: str, gt: str | None = None) -> None:
    from PySide6.QtCore import QPointF

    win = Window(weights, Path(image_dir))
    w, spin, settle, images = win.w, win.spin, win.settle, win.images
    w.open_paths([str(images)])
    spin(lambda: len(w.session.results) == len(w.files.paths()))
    target = str(images / image)
    w.file_dock.select_path(target)
    w.session.show(target)
    spin(lambda: w.session.current == target and w.session.current_result() is not None)
    OUT.mkdir(parents=True, exist_ok=True)

    ov = w.overlays
    ov.density.setChecked(True)
    ov.levels.setChecked(False)
    ov.points.setChecked(False)
    ov.density_opacity.setValue(70)
    settle()
    w.grab().save(str(OUT / "counting.png"))

    # Levels: the model's head points coloured by their patch's level, hover on a patch.
    ov.density.setChecked(False)
    ov.levels.setChecked(True)
    ov.points.setChecked(True)
    ov.level_opacity.setValue(45)
    w.start_from_model()
    result = w.session.current_result()
    width, height = result.image_size
    w.canvas.scene().sigMouseMoved.emit(w.canvas.vb.mapViewToScene(QPointF(width * 0.45, height * 0.4)))
    settle()
    w.grab().save(str(OUT / "levels.png"))

    # Annotation: people's points (imported), a region of interest, a selection, reviewed.
    doc = w.document
    if gt:
        w.transfer.import_annotation(gt)
    doc.add_roi([[width * 0.05, height * 0.3], [width * 0.7, height * 0.25], [width * 0.95, height * 0.9],
                 [width * 0.1, height * 0.95]])
    doc.select_in_rect(width * 0.5, height * 0.3, width * 0.6, height * 0.4)
    doc.set_reviewed(True)
    ov.levels.setChecked(False)
    w.canvas.set_tool("edit")
    settle(1.0)
    w.grab().save(str(OUT / "annotation.png"))
    win.close()


def review_shot(weights: str, image_dir: str, image: str, gt: str | None = None, cells: int = 4) -> None:
    """Review mode as a person uses it: the overlay and the cells by their menu actions."""
    win = Window(weights, Path(image_dir))
    w, spin, settle, images = win.w, win.spin, win.settle, win.images
    target = str(images / image)
    w.open_paths([target])
    spin(lambda: w.session.current == target and w.session.current_result() is not None)
    if gt:
        w.transfer.import_annotation(gt)
    else:
        w.start_from_model()
    w.overlays.density.setChecked(False)
    w.overlays.points.setChecked(True)
    w.act_show_unsure.trigger()
    settle()
    for _ in range(cells):  # View > Next Unsure Cell, the N key's action
        w.act_next_cell.trigger()
        settle(0.3)
    settle(1.0)
    OUT.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(OUT / "review.png"))
    win.close()


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--welcome":
        welcome_shot()
    elif len(sys.argv) in (2, 3, 4) and sys.argv[1] == "--workbench":
        workbench_shot(*sys.argv[2:4])
    elif len(sys.argv) >= 5 and sys.argv[1] == "--review":
        review_shot(*sys.argv[2:6])
    elif len(sys.argv) >= 4 and sys.argv[1] == "--finetune":
        finetune_shot(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 4:
        main(*sys.argv[1:5])
    else:
        sys.exit(__doc__)
