"""The annotation store: where the annotation of an image is kept, beside the image or (read-only
folders, such as a shared data set) in a per-folder project under the user data folder."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sasnet_core import paths
from sasnet_core.annotation import Annotation, annotation_path_for, load_annotation


def fallback_project_dir(folder) -> Path:
    """A project folder for images in ``folder`` when we may not write beside them."""
    key = hashlib.sha1(str(Path(folder).absolute()).encode("utf-8")).hexdigest()[:16]
    return paths.data_dir() / "projects" / key


def _writable(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def candidates(image_path) -> list[Path]:
    image_path = Path(image_path)
    return [annotation_path_for(image_path), annotation_path_for(image_path, fallback_project_dir(image_path.parent))]


def annotation_file_for(image_path) -> Path:
    """The file to read and write: an existing one wins; new ones go beside a writable image."""
    beside, project = candidates(image_path)
    if beside.is_file():
        return beside
    if project.is_file() or not _writable(Path(image_path).parent):
        return project
    return beside


def read_annotation(image_path) -> Annotation | None:
    """The saved annotation of an image (its image_path set to the image), or None."""
    path = annotation_file_for(image_path)
    if not path.is_file():
        return None
    ann = load_annotation(path)
    ann.image_path = str(Path(image_path).absolute())
    return ann
