"""Synthetic crowds for tests, demos and benchmarks: dark round "heads" on a textured background.

Not a substitute for real data; it only has to be learnable, so that a test can show the count
error falling, and writable in the layouts the loaders read.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.store import write_annotation


def blob_image(points: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
               radius: float = 3.0) -> np.ndarray:
    """(H, W, 3) uint8: noisy light background with a dark disk at every point."""
    h, w = size
    img = 170 + 20 * rng.standard_normal((h, w, 1)) + 10 * rng.standard_normal((h, w, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    for x, y in points:
        d2 = (xx - x) ** 2 + (yy - y) ** 2
        img[d2 <= radius ** 2] = (40, 30, 30)
    return np.clip(img, 0, 255).astype(np.uint8)


def random_points(n: int, size: tuple[int, int], rng: np.random.Generator, margin: int = 4):
    h, w = size
    return np.stack([rng.uniform(margin, w - margin, n), rng.uniform(margin, h - margin, n)], 1)


def make_blob_dataset(folder: str | Path, n_images: int = 6, size: tuple[int, int] = (96, 128),
                      max_heads: int = 12, layout: str = "shanghaitech", split: str = "train",
                      seed: int = 0, reviewed: bool | list[bool] = True) -> list[Path]:
    """Write images with blobs and their head points; returns the image paths.

    layout "shanghaitech": FOLDER/{split}_data/images/IMG_i.jpg + ground-truth/GT_IMG_i.mat
    (MATLAB ``image_info{1}.location``, 1-based x, y as in the real files);
    layout "annotations": FOLDER/IMG_i.png + IMG_i.png.sasnet.json (our format).
    """
    import cv2

    rng = np.random.default_rng(seed)
    folder = Path(folder)
    paths = []
    for i in range(1, n_images + 1):
        n = int(rng.integers(0, max_heads + 1))
        pts = random_points(n, size, rng)
        img = blob_image(pts, size, rng)
        if layout == "shanghaitech":
            img_dir, gt_dir = folder / f"{split}_data" / "images", folder / f"{split}_data" / "ground-truth"
            img_dir.mkdir(parents=True, exist_ok=True)
            gt_dir.mkdir(parents=True, exist_ok=True)
            path = img_dir / f"IMG_{i}.jpg"
            cv2.imwrite(str(path), img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 98])
            _write_shanghaitech_mat(gt_dir / f"GT_IMG_{i}.mat", pts + 1.0)
        elif layout == "annotations":
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"IMG_{i}.png"
            cv2.imwrite(str(path), img[:, :, ::-1])
            rev = reviewed[i - 1] if isinstance(reviewed, list) else reviewed
            ann = Annotation(image_path=str(path), image_size=(size[1], size[0]), points=pts,
                             reviewed=bool(rev))
            write_annotation(ann)
        else:
            raise ValueError(f"unknown layout {layout!r}")
        paths.append(path)
    return paths


def _write_shanghaitech_mat(path: Path, points: np.ndarray) -> None:
    import scipy.io as sio

    info = np.zeros((1, 1), dtype=[("location", "O"), ("number", "O")])
    info[0, 0]["location"] = np.asarray(points, np.float64).reshape(-1, 2)
    info[0, 0]["number"] = np.array([[len(points)]], np.uint16)
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = info
    sio.savemat(str(path), {"image_info": cell})
