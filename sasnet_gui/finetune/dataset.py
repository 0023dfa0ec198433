"""The data a one-click fine-tuning run learns from: a temporary folder `sasnet finetune` reads.

The person's images stay where they are. For each reviewed image we write a copy of its
annotation (``*.sasnet.json``, image path pointing back at the original) into one folder; the
trainer's loader (``sasnet_core.training.data.load_samples``) finds annotation files in a folder
and, by default, learns only from those marked reviewed.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sasnet_core import paths
from sasnet_core.annotation import SUFFIX, Annotation, annotation_path_for, load_annotation, save_annotation
from sasnet_core.errors import SASNetError


@dataclass
class TrainingSet:
    items: list[tuple[Path, Annotation]] = field(default_factory=list)  # (image, its annotation)
    not_reviewed: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)  # no annotation file found
    broken: list[str] = field(default_factory=list)  # "file: problem"

    def __len__(self) -> int:
        return len(self.items)

    @property
    def point_count(self) -> int:
        return sum(a.count for _, a in self.items)

    def describe(self) -> str:
        n = len(self.items)
        text = f"{n} reviewed image{'s' if n != 1 else ''} ({self.point_count} head points)"
        left = []
        if self.not_reviewed:
            left.append(f"{len(self.not_reviewed)} not reviewed yet")
        if self.missing:
            left.append(f"{len(self.missing)} without annotation")
        if self.broken:
            left.append(f"{len(self.broken)} unreadable")
        return text + (f"; left out: {', '.join(left)}" if left else "")


def _annotation_file(item: Path, project_dir: Path | None) -> Path | None:
    if item.name.endswith(SUFFIX):
        return item
    candidates = [annotation_path_for(item)]
    if project_dir is not None:
        candidates.insert(0, annotation_path_for(item, project_dir))
    try:  # where the annotation view keeps annotations of images in read-only folders
        from sasnet_core.annotation_store import candidates as editor_candidates

        candidates += [c for c in editor_candidates(item) if c not in candidates]
    except ImportError:
        pass
    return next((c for c in candidates if c.is_file()), None)


def collect_training_set(items, project_dir: str | os.PathLike | None = None) -> TrainingSet:
    """Sort images (or annotation files) into reviewed ones and the rest, saying why."""
    project = Path(project_dir) if project_dir else None
    out = TrainingSet()
    seen: set[Path] = set()
    for raw in items:
        item = Path(raw)
        ann_file = _annotation_file(item, project)
        if ann_file is None:
            out.missing.append(item)
            continue
        try:
            ann = load_annotation(ann_file)
        except SASNetError as exc:
            out.broken.append(str(exc))
            continue
        # An image given by path is that image, wherever its annotation lives.
        image = Path(ann.image_path) if item.name.endswith(SUFFIX) else item.absolute()
        if image in seen:
            continue
        seen.add(image)
        if not image.is_file():
            out.broken.append(f"{ann_file}: the image it names does not exist ({image})")
        elif ann.reviewed:
            out.items.append((image, ann))
        else:
            out.not_reviewed.append(image)
    return out


def write_training_folder(training_set: TrainingSet, folder: str | os.PathLike | None = None) -> Path:
    """Write the annotations into ``folder`` (default: a new folder in the cache); returns it."""
    if folder is None:
        base = paths.cache_dir()
        base.mkdir(parents=True, exist_ok=True)
        folder = tempfile.mkdtemp(prefix="finetune-data-", dir=base)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, (image, ann) in enumerate(training_set.items):
        copy = ann.copy()
        copy.image_path = str(image.resolve())  # stored relative to the folder, resolved on load
        save_annotation(copy, folder / f"{i:04d}_{image.stem}{SUFFIX}")
    return folder
