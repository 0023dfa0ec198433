"""Turn dropped or opened paths into image and video lists (Qt-free)."""
from __future__ import annotations

import re
from pathlib import Path

from sasnet_core.imageio import is_image, is_video


def natural_key(path) -> list:
    """IMG_2 before IMG_10, case-insensitive."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def collect(paths, recursive: bool = True) -> tuple[list[Path], list[Path], list[Path]]:
    """(images, videos, skipped) from files and folders, each list in natural order, no repeats.

    Hidden files and our own temporary files are skipped; folders are walked recursively.
    """
    images: dict[str, Path] = {}
    videos: dict[str, Path] = {}
    skipped: list[Path] = []

    def take(p: Path, explicit: bool):
        if p.name.startswith("."):
            return
        if is_image(p):
            images.setdefault(str(p), p)
        elif is_video(p):
            videos.setdefault(str(p), p)
        elif explicit:
            skipped.append(p)

    for raw in paths:
        p = Path(raw).expanduser().absolute()
        if p.is_dir():
            it = p.rglob("*") if recursive else p.iterdir()
            for child in it:
                if child.is_file() and not any(part.startswith(".") for part in child.relative_to(p).parts):
                    take(child, explicit=False)
        elif p.is_file():
            take(p, explicit=True)
        else:
            skipped.append(p)
    return (sorted(images.values(), key=natural_key), sorted(videos.values(), key=natural_key), skipped)
