"""The ground truth of one image: the one place that decides it for ``sasnet eval``, training,
``sasnet rank`` and the app.

Two sources, in this order:

1. a person's annotation kept by the annotation store (``annotation_store.read_annotation``):
   their own points, or their correction of a data set's ground truth;
2. the data set's own file of the image, in any layout ``datasets.detect.LAYOUTS`` reads
   (``locate``): ShanghaiTech ``ground-truth/GT_IMG_3.mat``, UCF ``3_ann.mat``, NWPU
   ``jsons/0001.json``, JHU ``gt/0001.txt``, a LabelMe ``a.json`` beside ``a.jpg``, or the entry
   of the image in a COCO / CVAT / VIA file beside it.

A data set's file is only ever read: corrections go to the annotation store, which keeps them
beside the image when its folder is writable and in the person's project folder when it is not.
``Truth.baseline`` is the data set's annotation, so an editor can tell "back to the data set's
points" (nothing to keep) from a correction.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.formats import read_points
from sasnet_core.annotations.store import (
    find_annotation_file,
    fit_problems,
    read_annotation,
)
from sasnet_core.datasets import layouts, tool_files
from sasnet_core.io.imageio import image_size as read_image_size
from sasnet_core.util.errors import GroundTruthError, SASNetError

# The format each layout's files are written in: Export offers it first, so a corrected set goes
# back in its data set's own format (ShanghaiTech as the whole train_data/test_data layout).
EXPORT_FORMAT = {"shanghaitech": "shanghaitech-dataset", "ucf_cc_50": "ucf", "ucf_qnrf": "ucf",
                 "nwpu": "nwpu", "jhu": "jhu", "labelme": "labelme"}


@dataclass(frozen=True)
class DatasetFile:
    """Where a data set keeps the ground truth of one image (the file may be missing)."""

    layout: str  # a name of datasets.detect.LAYOUTS
    file: Path
    format: str  # the formats name to read it with
    image: Path

    @property
    def label(self) -> str:
        """The file as a person finds it from the image: ``ground-truth/GT_IMG_3.mat`` from
        ``test_data/images/IMG_3.jpg``, ``3_ann.mat`` beside ``3.jpg``."""
        for base in (self.image.parent, self.image.parent.parent):
            try:
                return self.file.relative_to(base).as_posix()
            except ValueError:
                continue
        return str(self.file)

    @property
    def export_format(self) -> str:
        return EXPORT_FORMAT.get(self.layout, self.format)

    def read(self) -> Annotation:
        """The data set's annotation of the image. A file that is missing or cannot be read
        raises ``GroundTruthError`` naming it."""
        if not self.file.is_file():
            raise GroundTruthError(f"the ground truth of {self.image.name} is missing", self.file)
        try:
            if self.format in tool_files.COLLECTION_FORMATS:
                ann = tool_files.collection_annotation(self.file, self.image)
            else:
                ann = read_points(self.file, self.format, report=[])
        except GroundTruthError:
            raise
        except SASNetError as exc:
            raise GroundTruthError(exc.detail, exc.path or self.file) from None
        ann.image_path = str(self.image)
        return ann


def locate(image) -> DatasetFile | None:
    """The data set file that holds the ground truth of ``image``, by the layout its folders
    show; None when the image belongs to no layout we read."""
    img = Path(os.path.abspath(image))
    up1, up2 = img.parent, img.parent.parent
    if up1.name == "images":
        if up2.name in layouts.SHANGHAITECH_SPLITS and (up2 / "ground-truth").is_dir():
            return DatasetFile("shanghaitech", layouts.shanghaitech_gt_file(img), "shanghaitech", img)
        if up2.name in layouts.JHU_SPLITS and (up2 / "gt").is_dir():
            return DatasetFile("jhu", layouts.jhu_gt_file(img), "jhu", img)
        if (up2 / "jsons").is_dir():
            return DatasetFile("nwpu", layouts.nwpu_gt_file(img), "nwpu", img)
    ann = layouts.ucf_gt_file(img)
    if ann.is_file():
        return DatasetFile("ucf_qnrf" if up1.name in layouts.UCF_QNRF_SPLITS else "ucf_cc_50", ann, "ucf", img)
    labelme = tool_files.labelme_file(img)
    if labelme is not None:
        return DatasetFile("labelme", labelme, "labelme", img)
    entry = tool_files.collection_entry(img)
    if entry is not None:
        return DatasetFile("annotation_file", entry[0], entry[1], img)
    return None


@dataclass
class Truth:
    """What counts as the annotation of one image now, and where it came from."""

    image: Path
    annotation: Annotation | None  # None: no annotation anywhere
    kept: Path | None = None  # the annotation store's file, when the annotation is a person's
    dataset: DatasetFile | None = None  # the data set's file of the image, when it has one
    baseline: Annotation | None = None  # the data set's annotation (read only when needed)
    dataset_error: GroundTruthError | None = None  # the data set's file could not be read

    @property
    def from_dataset(self) -> bool:
        return self.kept is None and self.annotation is not None and self.dataset is not None

    def describe(self) -> str:
        """One line for a person: where these points come from."""
        if self.kept is not None:
            if self.dataset is not None:
                return f"your correction of {self.dataset.label}"
            return "your annotation"
        if self.dataset is not None:
            if self.dataset_error is not None:
                if not self.dataset.file.exists():
                    return f"no ground truth: {self.dataset.label} is missing"
                return f"ground truth unreadable: {self.dataset.label}"
            return f"ground truth: {self.dataset.label}"
        return ""


def truth_of(image, project=None, *, baseline: bool = False) -> Truth:
    """The annotation that counts for ``image``: the annotation store's when it has one, else its
    data set's. A damaged file of the store raises its error (the editor keeps such a file
    aside); a data set file that is missing or damaged is in ``Truth.dataset_error`` and the image
    has no annotation. ``baseline``: also read the data set's annotation under a person's one."""
    image = Path(os.path.abspath(image))
    own = read_annotation(image, project)
    kept = find_annotation_file(image, project) if own is not None else None
    found = locate(image)
    truth = Truth(image, own, kept, found)
    if found is None or (own is not None and not baseline):
        return truth
    try:
        truth.baseline = found.read()
    except GroundTruthError as exc:
        truth.dataset_error = exc
        return truth
    if own is None:
        truth.annotation = truth.baseline.copy()
    return truth


def misfit(truth: Truth, image_size: tuple[int, int] | None) -> list[str]:
    """What of a data set's ground truth does not fit its image (points off it, made on another
    size): said when the image opens, never silently dropped. Empty for a person's annotation,
    which the editor checks when the image changed on disk."""
    if not truth.from_dataset or image_size is None:
        return []
    return truth.annotation.misfit(image_size)[0]


def apply_corrections(samples: list, report: list) -> int:
    """Give every sample of a data set that a person corrected in the app the corrected points
    (scaled as its image is when loaded); returns how many. A correction that cannot be read, or
    that does not fit its image (``annotation_store.fit_problems``, the check ``rank`` and an
    import make: another image's file, made on another size, points off the image), is named in
    ``report`` in one line and the data set's points are kept."""
    n = 0
    for s in samples:
        try:
            ann = read_annotation(s.image_path)
        except SASNetError as exc:
            report.append(f"{exc} (its correction is not used: the data set's file counts)")
            continue
        if ann is None:
            continue
        file = find_annotation_file(s.image_path)
        problems = fit_problems(s.image_path, ann, file)
        if problems:  # another image's points would train and score this one as if they were its own
            report.append(f"{file}: it does not fit {Path(s.image_path).name}: {'; '.join(problems)} "
                          "(its correction is not used: the data set's file counts)")
            continue
        scale = np.ones(2)
        if s.resize is not None:
            w, h = read_image_size(s.image_path)
            scale = np.array([s.resize[0] / w, s.resize[1] / h])
        s.points = ann.points * scale
        s.rois = [r * scale for r in ann.rois]
        n += 1
    if n:
        report.append(f"{n} image(s) with the corrections saved in SASNet Studio instead of the "
                      "data set's files")
    return n


def shanghaitech_splits(anns) -> list[str] | None:
    """"train" / "test" of every image when each lies in a ShanghaiTech ``train_data`` or
    ``test_data`` folder, else None: an export of a corrected ShanghaiTech set keeps its split
    instead of drawing a new one."""
    out = []
    for ann in anns:
        split_folder = Path(os.path.abspath(ann.image_path)).parent.parent.name
        if split_folder not in layouts.SHANGHAITECH_SPLITS:
            return None
        out.append(layouts.SHANGHAITECH_SPLITS[split_folder])
    return out or None
