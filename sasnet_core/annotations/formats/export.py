"""Export: annotations to any format, or to the ShanghaiTech data set layout, for the app's Export
dialog and ``sasnet convert`` alike.

One function, ``export``, with one set of promises:

- nothing that exists is replaced unless ``overwrite=True`` (the CLI's ``--overwrite``; the app
  asks the person first);
- two images never go to one file: per-image files keep the image's sub-folder below the images'
  common folder, and images that would still share a file are named in the refusal;
- everything is checked before the first byte is written, and every file is written atomically;
- image paths inside the written files are relative to the written file;
- image width and height are filled in from the image when the annotation lacks them;
- coordinates are written without float noise (see ``_common.clean``);
- the data set layout copies only images below ``source_root``, unless an image is named in
  ``allowed_images``: an annotation file must not be able to smuggle out ``../../secret.jpg``;
- the data set layout never goes inside the images' own folders: its copies (``IMG_1.jpg``...)
  would be read back as new images by the file list and ``sasnet count``;
- a file's name must end with its format's extension (``.json`` for NWPU, ``.xml`` for CVAT...), so
  a slip of ``--out`` never turns ``IMG_4.jpg`` into JSON; an image or video is never replaced,
  even with ``overwrite``; nor is the annotation file the app itself keeps for an exported image.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sasnet_core.annotations.annotation import SUFFIX, Annotation, annotation_path_for
from sasnet_core.annotations.formats import FORMATS, get_format, write_annotations
from sasnet_core.annotations.formats._common import image_size_of
from sasnet_core.annotations.formats.shanghaitech_export import (
    SPLIT_DIRS,
    STAGE_PREFIX,
    export_shanghaitech,
)
from sasnet_core.annotations.store import annotation_file_for
from sasnet_core.io.imageio import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from sasnet_core.util.errors import (
    AnnotationFormatError,
    OutputExistsError,
    OutputWriteError,
    SASNetError,
)

DATASET = "shanghaitech-dataset"  # the whole-folder layout: train_data/ + test_data/


@dataclass
class ExportResult:
    target: Path  # the file or folder written
    files: list[Path] = field(default_factory=list)  # every file written
    images: int = 0
    points: int = 0
    splits: dict[str, int] = field(default_factory=dict)  # data set layout: images per split
    left_out: list[str] = field(default_factory=list)  # what the target cannot hold, said not dropped


def targets() -> list[str]:
    """Every export target: each registered format, then the data set layout."""
    return [*FORMATS, DATASET]


def target_kind(target_format: str, n_images: int) -> str:
    """"file" when the export is one file, "folder" when it is a folder."""
    if target_format == DATASET:
        return "folder"

    return "file" if get_format(target_format).multi or n_images == 1 else "folder"


def export(anns: list[Annotation], target_format: str, target, *, overwrite: bool = False,
           test_fraction: float = 0.2, seed: int = 0, splits: list[str] | None = None,
           source_root=None, allowed_images=()) -> ExportResult:
    """Write ``anns`` in ``target_format`` (a format name or ``DATASET``) to ``target``.

    ``target`` is a file for a multi-image format (a folder gets the format's default name) or for
    one image with a name that has a suffix; otherwise a folder. Raises ``OutputExistsError`` for
    anything that exists (unless ``overwrite``) or for two images that would share one file,
    ``OutputWriteError`` when the disk refuses, ``AnnotationFormatError`` for a missing image.
    ``source_root``: a folder, or several, that the data set layout may copy images from (None:
    any image, for callers whose images a person chose one by one).
    """
    target = Path(target)
    if not anns:
        raise SASNetError("there are no annotated images to export", target)
    anns = [_prepared(a) for a in anns]
    if target_format == DATASET:
        return _export_dataset(anns, target, overwrite, test_fraction, seed, splits, source_root,
                               allowed_images)

    spec = get_format(target_format)
    plan = _plan(anns, spec, target)
    own = _own_annotation_files(anns)
    for dst in plan:
        _check_name(dst, spec, own)
        _check_free(dst, overwrite)
    result = ExportResult(target, images=len(anns), points=sum(a.count for a in anns),
                          left_out=left_out(anns, spec.name, spec.keeps))
    for dst, group in plan.items():
        with _naming_output(dst):
            write_annotations(group, dst, target_format)
        result.files.append(dst)
    if spec.multi or len(plan) == 1 and not target.is_dir():
        result.target = next(iter(plan))
    return result


def left_out(anns: list[Annotation], target: str, keeps) -> list[str]:
    """What of ``anns`` a target that keeps only ``keeps`` ("rois", "review") will not hold: a
    region of interest changes every in-region count, so its loss is said, never silent."""
    out = []
    rois = sum(len(a.rois) for a in anns)
    if rois and "rois" not in keeps:
        out.append(f"{rois} region(s) of interest: {target} cannot hold them")
    marked = sum(1 for a in anns if a.reviewed or a.reviewed_cells)
    if marked and "review" not in keeps:
        out.append(f"the reviewed marks of {marked} image(s): {target} cannot hold them")
    return out


def _prepared(ann: Annotation) -> Annotation:
    """A copy with an absolute image path and, where the image can be read, its size."""
    out = ann.copy()
    out.image_path = os.path.abspath(out.image_path)
    if out.image_size is None:
        out.image_size = image_size_of(out)
    return out


def _plan(anns: list[Annotation], spec, target: Path) -> dict[Path, list[Annotation]]:
    """Destination file -> annotations written there; refuses two images to one file."""
    if spec.multi:
        dst = target / spec.default_name("") if target.is_dir() else target
        return {dst: anns}
    if len(anns) == 1 and not target.is_dir() and (target.suffix or target.exists()):
        return {target: anns}  # one image to a file name (or onto a file that exists: /dev/full)
    try:
        root = os.path.commonpath([os.path.dirname(a.image_path) for a in anns])
    except ValueError:  # images on different drives: no common folder
        root = None
    plan: dict[Path, list[Annotation]] = {}
    for ann in anns:
        sub = os.path.relpath(os.path.dirname(ann.image_path), root) if root else "."
        plan.setdefault(target / sub / spec.default_name(ann.image_path), []).append(ann)
    for dst, group in plan.items():
        if len(group) > 1:
            names = ", ".join(g.image_path for g in group[:4])
            raise OutputExistsError(
                f"{len(group)} images would be written to this one file ({names}); export "
                "them apart, or to a multi-image format (coco, cvat, via)", dst)
    return plan


def _check_name(dst: Path, spec, own: dict[str, str]) -> None:
    """Refuse a destination that is an image or video, the app's own annotation file of an
    exported image, or a name whose extension does not fit the format."""
    name = dst.name.lower()
    if dst.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
        raise SASNetError(
            f"is an image or video name; an export never writes {spec.name} annotations there "
            f"(use a {' or '.join(spec.extensions)} file)", dst)
    image = own.get(os.path.realpath(dst))
    if image is None and name.endswith(SUFFIX):  # beside an image not in this export: its file too
        beside = dst.with_name(dst.name[:-len(SUFFIX)])
        image = os.fspath(beside) if beside.suffix.lower() in IMAGE_SUFFIXES and beside.is_file() else None
    if image is not None:
        raise OutputExistsError(
            f"is the annotation file the app keeps for {image}; export to another file or folder "
            "(for example an exports/ sub-folder)", dst)
    # A device such as /dev/full has no suffix and is no regular file: the write itself reports.
    has_name = bool(dst.suffix) or dst.is_file() or not dst.exists()
    if has_name and not name.endswith(tuple(e.lower() for e in spec.extensions)):
        raise SASNetError(
            f"does not end with {' or '.join(spec.extensions)}, the extension of the "
            f"{spec.name} format; choose a file name that does", dst)


def _own_annotation_files(anns: list[Annotation]) -> dict[str, str]:
    """Real path of each file the app saves an exported image's annotation to -> that image."""
    own: dict[str, str] = {}
    for ann in anns:
        for f in (annotation_path_for(ann.image_path), annotation_file_for(ann.image_path)):
            own[os.path.realpath(f)] = ann.image_path
    return own


def _check_free(dst: Path, overwrite: bool) -> None:
    if dst.is_dir():
        raise OutputExistsError("is a folder; the export writes a file here", dst)
    if dst.exists() or dst.is_symlink():
        if not overwrite:
            raise OutputExistsError("already exists; not replaced unless overwriting is asked for",
                                    dst)
    else:
        for parent in dst.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise OutputWriteError("is a file, not a folder", parent)
                break


class _naming_output:
    """Turn an OS error while writing (full disk, read-only, permission) into a one-line error
    naming the output path."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, OSError) and not isinstance(exc, SASNetError):
            # A temp file or the staging folder means nothing to a person: name the output.
            name = os.fspath(exc.filename) if exc.filename else ""
            hidden = not name or Path(name).name.startswith(".") or f"{os.sep}{STAGE_PREFIX}" in name
            raise OutputWriteError(f"cannot write ({exc.strerror or exc})",
                                   self.path if hidden else name) from exc
        return False


# -- the ShanghaiTech data set layout ----------------------------------------------------------------
def _inside(path: str, root: str) -> bool:
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _export_dataset(anns, target: Path, overwrite, test_fraction, seed, splits, source_root,
                    allowed_images) -> ExportResult:
    allowed = {os.path.realpath(p) for p in allowed_images}
    roots = None if source_root is None else (
        [source_root] if isinstance(source_root, (str, os.PathLike)) else list(source_root))
    for ann in anns:  # every image checked before anything is written
        if roots is not None and not any(_inside(ann.image_path, r) for r in roots) \
                and os.path.realpath(ann.image_path) not in allowed:
            raise AnnotationFormatError(
                f"image lies outside the source folder {os.fspath(roots[0])}; it is copied "
                "only when named explicitly", ann.image_path)
        if not Path(ann.image_path).is_file():
            raise AnnotationFormatError("image of this annotation not found", ann.image_path)
    if target.exists() and not target.is_dir():
        raise OutputExistsError("is a file; the data set layout is a folder", target)
    # The source folders that hold an exported image, and each image's own folder: what the file
    # list and ``sasnet count`` read when pointed at the images.
    folders = [r for r in roots or [] if any(_inside(a.image_path, r) for a in anns)]
    for folder in [*folders, *sorted({os.path.dirname(a.image_path) for a in anns})]:
        if _inside(target, folder):
            raise OutputExistsError(
                f"lies inside the images' folder {os.fspath(folder)}: the copied images would be "
                "read back as new images; export the data set beside that folder, not into it",
                target)
    for name in (*SPLIT_DIRS.values(), "sources.csv"):
        if (target / name).exists() and not overwrite:
            raise OutputExistsError("already exists; not replaced unless overwriting is asked for",
                                    target / name)
    with _naming_output(target):
        counts, files = export_shanghaitech(anns, target, test_fraction, seed, splits)
    return ExportResult(target, files, len(anns), sum(a.count for a in anns), counts,
                        left_out(anns, "the ShanghaiTech layout", ()))
