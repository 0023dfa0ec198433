"""What a fine-tuning run learns from: the reviewed set, read when the run starts, and its staging.

The reviewed set is read through the annotation store at the moment a run starts, so an image
marked reviewed a second before the click is in it. The trainer reads a folder of annotation files
(``training.data.load_samples``); the person's images stay where they are: each reviewed
annotation is copied, its image path pointing back at the original, into a staging folder in the
cache, beside ``staging.json``, which says where the images really are. The new model's provenance
names that real place, never the staging folder, which is removed when the run ends, however it
ends.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sasnet_core.annotations.annotation import SUFFIX, Annotation, save_annotation
from sasnet_core.annotations.store import survey
from sasnet_core.io.atomic import atomic_write_text
from sasnet_core.io.staging import make_stage
from sasnet_core.util import paths
from sasnet_core.util.errors import DatasetLayoutError

STAGING_INFO = "staging.json"  # {"origin": real data folder, "images": [...]}
STAGE_PREFIX = "run-"  # a stage of ``io.staging``: it records its stager, and is swept once that is gone
STOP_FILE = "STOP"  # touched to ask the trainer to stop after its current step


@dataclass
class ReviewedSet:
    """Images sorted into the reviewed ones (with their annotations) and the rest, with reasons."""

    items: list[tuple[Path, Annotation]] = field(default_factory=list)
    not_reviewed: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)  # no annotation stored for the image
    broken: list[str] = field(default_factory=list)  # "file: problem"

    def __len__(self) -> int:
        return len(self.items)

    def origin(self) -> Path | None:
        """The folder holding every reviewed image (their common folder): where the data lives."""
        folders = {str(image.parent) for image, _ in self.items}
        if not folders:
            return None
        try:
            return Path(os.path.commonpath(sorted(folders)))
        except ValueError:  # images on different drives: no single place
            return None

    def describe(self) -> str:
        n = len(self.items)
        # The head points it learns from: a partly reviewed image's are those in its reviewed cells.
        known = [a.known_count() for _, a in self.items]
        partly = sum(1 for _, a in self.items if not a.reviewed)
        part = f", {partly} of them in part" if partly else ""
        text = f"{n} reviewed image{'s' if n != 1 else ''}{part} ({sum(known)} head points)"
        empty = known.count(0)
        if empty:  # it teaches "nobody here": right for an empty scene, wrong for a lost annotation
            text += f"; {empty} of them with no head point, taught as empty"
        left = []
        if self.not_reviewed:
            left.append(f"{len(self.not_reviewed)} not reviewed yet")
        if self.missing:
            left.append(f"{len(self.missing)} without annotation")
        if self.broken:
            left.append(f"{len(self.broken)} unreadable")
        return text + (f"; left out: {', '.join(left)}" if left else "")


def read_reviewed_set(images) -> ReviewedSet:
    """Read the annotations of ``images`` (image files or folders) now and sort them.

    The one place a run asks the annotation store what it may learn from; nothing is cached, so
    a run started a moment after an image was marked reviewed learns from it.
    """
    out = ReviewedSet()
    for entry in survey(images):
        if entry.error is not None:
            out.broken.append(str(entry.error))
        elif entry.annotation is None:
            out.missing.append(entry.image)
        elif entry.annotation.teaches:
            out.items.append((entry.image, entry.annotation))
        else:
            out.not_reviewed.append(entry.image)
    return out


def staging_root() -> Path:
    return paths.cache_dir() / "finetune-staging"


def stage(reviewed: ReviewedSet) -> Path:
    """Write the reviewed annotations into a new staging folder; returns it."""
    if not len(reviewed):
        raise DatasetLayoutError("no reviewed images to fine-tune on: correct the points of some "
                                 "images and mark them reviewed first")
    folder = make_stage(staging_root(), STAGE_PREFIX)  # sweeps those of killed or crashed apps
    try:
        for i, (image, ann) in enumerate(reviewed.items):
            copy = ann.copy()
            copy.image_path = str(image.resolve())
            save_annotation(copy, folder / f"{i:04d}_{image.stem}{SUFFIX}")
        origin = reviewed.origin()
        atomic_write_text(folder / STAGING_INFO, json.dumps(
            {"origin": str(origin) if origin else None,
             "images": [str(image) for image, _ in reviewed.items]}, indent=1))
    except BaseException:
        remove_staging(folder)
        raise
    return folder


def staged_origin(data: str | os.PathLike) -> str | None:
    """Where the images of a staging folder really are; None for any other data folder."""
    info = Path(data).expanduser() / STAGING_INFO
    if not info.is_file():
        return None
    try:
        origin = json.loads(info.read_text(encoding="utf-8")).get("origin")
    except (OSError, ValueError, AttributeError):
        return None
    return origin if isinstance(origin, str) and origin else None


def remove_staging(folder: str | os.PathLike | None) -> None:
    """Remove a staging folder (only ever one made by :func:`stage`)."""
    if folder is None:
        return
    folder = Path(folder)
    if folder.parent == staging_root() and folder.name.startswith(STAGE_PREFIX):
        shutil.rmtree(folder, ignore_errors=True)
