"""Take the README screenshots of the real window (run under a virtual screen).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py WEIGHTS IMAGE_DIR IMAGE [GT_FILE]
    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py --finetune WEIGHTS SHANGHAITECH_SPLIT_DIR
    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py --welcome
    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py --review WEIGHTS IMAGE_DIR IMAGE [GT_FILE]

WEIGHTS: a checkpoint (SHHA.pth gives the best pictures). Images are copied to a temporary folder
first, so nothing is written beside the originals. GT_FILE: an annotation to start the annotation
screenshot from (any format `sasnet convert` reads). The first form writes counting.png, levels.png
and annotation.png into docs/screenshots/; the second imports the ground truth of a ShanghaiTech
layout split (images/ + ground-truth/), marks every image reviewed, runs a short one-click
fine-tuning and writes finetune.png. The third writes welcome.png: the first start, with no model
and no images. The fourth writes review.png: review mode on IMAGE (a dense one), the uncertainty
overlay on, a few cells reviewed with N and the next one outlined, zoomed in to click on heads.
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

    def __init__(self, weights: str, image_dir: Path):
        self.tmp = Path(tempfile.mkdtemp(prefix="sasnet_shots_"))
        os.environ["SASNET_STUDIO_HOME"] = str(self.tmp / "home")
        self.images = self.tmp / "images"
        self.images.mkdir()
        for p in sorted(Path(image_dir).iterdir()):
            if p.suffix.lower() in (".jpg", ".jpeg", ".png"):
                shutil.copy(p, self.images / p.name)
        from PySide6.QtWidgets import QApplication

        self.app = QApplication([sys.argv[0]])
        from sasnet_gui.app import apply_dark_palette, create_window

        apply_dark_palette(self.app)
        self.w = create_window(weights=weights)
        self.w.resize(1500, 900)
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
    elif len(sys.argv) >= 5 and sys.argv[1] == "--review":
        review_shot(*sys.argv[2:6])
    elif len(sys.argv) >= 4 and sys.argv[1] == "--finetune":
        finetune_shot(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 4:
        main(*sys.argv[1:5])
    else:
        sys.exit(__doc__)
