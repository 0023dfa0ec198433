"""Take the README screenshots of the real window (run under a virtual screen).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py WEIGHTS IMAGE_DIR IMAGE [GT_FILE]

WEIGHTS: a checkpoint (SHHA.pth gives the best pictures). IMAGE_DIR is copied to a temporary
folder first, so nothing is written beside the originals. GT_FILE: an annotation to start the
annotation screenshot from (any format `sasnet convert` reads). Writes counting.png, levels.png and
annotation.png into docs/screenshots/.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "screenshots"


def main(weights: str, image_dir: str, image: str, gt: str | None = None) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sasnet_shots_"))
    os.environ["SASNET_STUDIO_HOME"] = str(tmp / "home")
    images = tmp / "images"
    images.mkdir()
    for p in sorted(Path(image_dir).iterdir()):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png"):
            shutil.copy(p, images / p.name)

    from PySide6.QtCore import QPointF
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    from sasnet_gui.app import apply_dark_palette, create_window

    apply_dark_palette(app)
    w = create_window(weights=weights)
    w.resize(1500, 900)

    def spin(cond, limit=900):
        t0 = time.time()
        while not cond():
            app.processEvents()
            time.sleep(0.01)
            if time.time() - t0 > limit:
                raise TimeoutError("the window did not get there in time")

    def settle(s=0.5):
        t0 = time.time()
        while time.time() - t0 < s:
            app.processEvents()
            time.sleep(0.01)

    spin(lambda: w.controller.predictor() is not None)
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
        w.import_annotation(gt)
    doc.add_roi([[width * 0.05, height * 0.3], [width * 0.7, height * 0.25], [width * 0.95, height * 0.9],
                 [width * 0.1, height * 0.95]])
    doc.select_in_rect(width * 0.5, height * 0.3, width * 0.6, height * 0.4)
    doc.set_reviewed(True)
    ov.levels.setChecked(False)
    w.canvas.set_tool("edit")
    settle(1.0)
    w.grab().save(str(OUT / "annotation.png"))
    w.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(*sys.argv[1:5])
