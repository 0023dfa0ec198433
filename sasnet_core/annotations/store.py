"""The annotation store: which file holds the annotation of an image, and reading, writing and
listing annotations through it. The editor, the file list, video frames, data set layouts,
training data and fine-tuning all locate annotations here and nowhere else.

Where an image's annotation lives, in the order it is looked for:

1. in a project folder, when one is given and the image lies under the project's image folder:
   ``PROJECT/annotations/<image path relative to that folder>.sasnet.json``, for example
   ``x/a.jpg`` -> ``annotations/x/a.jpg.sasnet.json``. The full relative name is the key, so
   ``a.jpg`` and ``a.png``, or ``x/img.jpg`` and ``y/img.jpg``, never share a file;
2. in the per-folder project under the user data folder (``fallback_project``), which holds what
   a person saved for images in a folder we may not write to (a shared data set, a read-only
   mount); it comes before the file beside the image because it holds that person's later edits;
3. beside the image: ``a.jpg.sasnet.json``.

A save goes to the file found, when its folder is writable; a new annotation goes to the given
project, else beside the image when its folder is writable, else to the fallback project. Earlier
versions keyed project files by the image's stem (``annotations/a.sasnet.json``), which ``a.jpg``
and ``a.png`` shared: such a file is still read, but only for the image its ``image`` field
names, and the next save goes to the full-name file.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from sasnet_core.annotations.annotation import (
    SUFFIX,
    Annotation,
    annotation_path_for,
    load_annotation,
    save_annotation,
)
from sasnet_core.io.imageio import image_size
from sasnet_core.io.inputs import collect_inputs, is_hidden, natural_key
from sasnet_core.util import paths
from sasnet_core.util.errors import AnnotationFormatError, SASNetError

ANNOTATIONS = "annotations"  # the sub-folder of a project that holds its annotation files


@dataclass(frozen=True)
class Project:
    """Annotations of the images under ``images``, kept in ``folder/annotations/``."""

    folder: Path
    images: Path

    def file_for(self, image) -> Path | None:
        """The full-name annotation file of ``image``; None when the image is not under ``images``."""
        try:
            rel = Path(os.path.abspath(image)).relative_to(os.path.abspath(self.images))
        except ValueError:
            return None
        if not rel.parts:
            return None
        return Path(self.folder) / ANNOTATIONS / rel.parent / (rel.name + SUFFIX)

    def stem_file_for(self, image) -> Path:
        """Where earlier versions kept it: keyed by the stem, shared by ``a.jpg`` and ``a.png``."""
        return Path(self.folder) / ANNOTATIONS / (Path(image).stem + SUFFIX)


def fallback_project_dir(folder) -> Path:
    """A project folder for images in ``folder`` when we may not write beside them."""
    key = hashlib.sha1(str(Path(folder).absolute()).encode("utf-8")).hexdigest()[:16]
    return paths.data_dir() / "projects" / key


def fallback_project(folder) -> Project:
    return Project(fallback_project_dir(folder), Path(folder).absolute())


def writable_folder(folder: Path) -> bool:
    """A folder new files can be made in (a read-only share or card is not one)."""
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _keyed_files(image: Path, project: Project | None) -> list[Path]:
    """Full-name candidates in the order they are looked for."""
    files = [project.file_for(image) if project is not None else None,
             fallback_project(image.parent).file_for(image), annotation_path_for(image)]
    return [f for f in files if f is not None]


def _same_image(named: str, image: Path) -> bool:
    named_path = Path(os.path.abspath(named))
    if os.path.normcase(named_path) == os.path.normcase(image):
        return True
    return not named_path.exists() and named_path.name == image.name  # the images were moved


def _lookup(image, project: Project | None) -> tuple[Path | None, Annotation | None]:
    """(the file holding the image's annotation, the annotation when finding it meant reading it)."""
    image = Path(os.path.abspath(image))
    for f in _keyed_files(image, project):
        if f.exists():  # a folder in the way is reported when read, not passed over
            return f, None
    for proj in (project, fallback_project(image.parent)):
        old = proj.stem_file_for(image) if proj is not None else None
        if old is not None and old.is_file():
            ann = load_annotation(old)  # damage is reported: the file may be this image's
            if _same_image(ann.image_path, image):
                return old, ann
    return None, None


def find_annotation_file(image, project: Project | None = None) -> Path | None:
    """The existing file that holds the annotation of ``image``, or None when it has none."""
    return _lookup(image, project)[0]


def annotation_file_for(image, project: Project | None = None) -> Path:
    """The file a save of the annotation of ``image`` goes to: the existing full-name file when we
    may write there; else ``project``, else beside a writable image, else the fallback project."""
    image = Path(os.path.abspath(image))
    for f in _keyed_files(image, project):
        if f.exists() and writable_folder(f.parent):
            return f
    if project is not None and project.file_for(image) is not None:
        return project.file_for(image)
    if writable_folder(image.parent):
        return annotation_path_for(image)
    return fallback_project(image.parent).file_for(image)


def read_annotation(image, project: Project | None = None) -> Annotation | None:
    """The saved annotation of an image (its ``image_path`` set to the image), or None.

    A damaged file raises ``AnnotationFormatError`` naming it."""
    file, ann = _lookup(image, project)
    if file is None:
        return None
    if ann is None:
        ann = load_annotation(file)
    ann.image_path = str(Path(image).absolute())
    return ann


def fit_problems(image, ann: Annotation, file=None) -> list[str]:
    """What of ``ann``, the annotation read for ``image`` (from the store's ``file``), does not fit
    that image: the check an import makes (``Annotation.misfit``: made on another size, points
    off the image, a region of interest with no area) and, for a file of the store, that it is
    the annotation of another image. ``sasnet rank``, ``eval`` and training ask it before the
    points count as the image's; an image whose size cannot be read gets no size check."""
    image = Path(image)
    problems = []
    named = _named_image(file) if file is not None else None
    if named and os.path.normcase(Path(named).name) != os.path.normcase(image.name):
        problems.append(f"it is the annotation of {Path(named).name}, not of {image.name}")
    try:
        size = image_size(image)
    except SASNetError:
        size = None
    return problems + ann.misfit(size)[0]


def _named_image(file) -> str | None:
    """The image an annotation file says it belongs to (its ``image`` field), as written."""
    import json

    try:
        named = json.loads(Path(file).read_text(encoding="utf-8")).get("image")
    except (OSError, ValueError, AttributeError):
        return None
    return named.replace("\\", "/") if isinstance(named, str) else None


def write_annotation(ann: Annotation, image=None, project: Project | None = None) -> Path:
    """Save ``ann`` (atomically) as the annotation of ``image`` (default: its ``image_path``)."""
    path = annotation_file_for(ann.image_path if image is None else image, project)
    save_annotation(ann, path)
    return path


# -- listing -------------------------------------------------------------------------------------
@dataclass
class Entry:
    """One image of a listing and what the store knows of its annotation."""

    image: Path | None  # None only for a damaged annotation file whose image cannot be known
    file: Path | None = None  # the annotation file; None when the image has none
    annotation: Annotation | None = None
    error: SASNetError | None = None  # why the annotation (or the folder) could not be read

    @property
    def annotated(self) -> bool:
        return self.annotation is not None


def _annotation_files(folder: Path) -> list[Path]:
    """Our annotation files below ``folder``, in natural order; hidden names skipped, symbolic
    links to folders not followed (the input collector reports loops and unreadable folders)."""
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not is_hidden(d)]
        files += [Path(dirpath) / n for n in filenames if n.endswith(SUFFIX) and not is_hidden(n)]
    return sorted(files, key=lambda f: natural_key(f.relative_to(folder)))


def _entry(image: Path, project: Project | None) -> Entry:
    try:
        file, ann = _lookup(image, project)
        if file is not None and ann is None:
            ann = load_annotation(file)
    except SASNetError as exc:
        return Entry(image, Path(exc.path) if exc.path else None, None, exc)
    if ann is not None:
        ann.image_path = str(image)
    return Entry(image, file, ann)


def _entry_from_file(file: Path) -> Entry:
    try:
        ann = load_annotation(file)
    except SASNetError as exc:
        return Entry(None, file, None, exc)
    image = Path(ann.image_path)
    if not image.is_file():
        return Entry(image, file, None, AnnotationFormatError(
            f"field 'image' names an image that does not exist: {image}", file))
    return Entry(image, file, ann)


def survey(items, project: Project | None = None) -> list[Entry]:
    """Every image in ``items`` with its annotation, or None, or the error reading it.

    ``items``: image files, annotation files and folders, in any mix. A folder gives its images
    as the input collector lists them (recursively, natural order, hidden names skipped), then
    the images named by annotation files inside it that none of those images had found (a folder
    of annotation files whose images live elsewhere, a project's ``annotations/``). An image
    appears once, with the first annotation found for it. Nothing is raised: damage, and what the
    collector could not take (a missing path, an unreadable folder), is in ``Entry.error``.
    """
    out: list[Entry] = []
    by_image: dict[str, Entry] = {}
    used: set[str] = set()

    def add(entry: Entry) -> None:
        key = os.path.normcase(os.path.abspath(entry.image)) if entry.image is not None else None
        if entry.file is not None:
            used.add(os.path.abspath(entry.file))
        if key is None:
            out.append(entry)
        elif key not in by_image:
            by_image[key] = entry
            out.append(entry)
        elif not by_image[key].annotated and by_image[key].error is None and entry.annotated:
            by_image[key].file, by_image[key].annotation = entry.file, entry.annotation

    for raw in items:
        item = Path(raw).expanduser().absolute()
        if item.name.endswith(SUFFIX) and item.is_file():
            add(_entry_from_file(item))
            continue
        # The images of a folder are the ones `sasnet count` and the app's file list see.
        found = collect_inputs([item], absolute=True, empty_ok=True)
        for problem in found.problems:
            out.append(Entry(None, None, None, SASNetError(problem.message, problem.path)))
        for image in found.images:
            add(_entry(image, project))
        if item.is_dir():
            for file in _annotation_files(item):
                if os.path.abspath(file) not in used:
                    add(_entry_from_file(file))
    return out


def annotated_images(items, project: Project | None = None, report: list | None = None
                     ) -> list[tuple[Path, Annotation]]:
    """(image, annotation) of every annotated image in ``items`` (see ``survey``), in order.

    A damaged annotation file, an annotation that does not fit its image (``fit_problems``: the
    points of another image must not count as this one's) or an unreadable folder raises its
    error (naming the file), unless ``report`` is a list: then the error's message is appended
    there and the image left out.
    """
    out = []
    for entry in survey(items, project):
        if entry.error is None and entry.annotated:
            problems = fit_problems(entry.image, entry.annotation, entry.file)
            if problems:
                entry.error = AnnotationFormatError(
                    f"does not fit {entry.image.name}: {'; '.join(problems)}; fix or remove it", entry.file)
        if entry.error is not None:
            if report is None:
                raise entry.error
            report.append(str(entry.error))
        elif entry.annotated:
            out.append((entry.image, entry.annotation))
    return out


def reviewed_annotations(items, project: Project | None = None, report: list | None = None
                         ) -> list[tuple[Path, Annotation]]:
    """(image, annotation) of the images in ``items`` a fine-tuning run can learn from
    (``Annotation.teaches``: reviewed as a whole or in part), read from disk now.

    Call it when the run starts, so an image reviewed a moment ago is in. Errors as in
    ``annotated_images``.
    """
    return [(image, ann) for image, ann in annotated_images(items, project, report) if ann.teaches]


def has_annotations(folder) -> bool:
    """Whether ``folder`` (or a folder below it) holds annotation files, beside its images or in
    their fallback projects."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not is_hidden(d)]
        if any(name.endswith(SUFFIX) for name in filenames):
            return True
        if (fallback_project_dir(dirpath) / ANNOTATIONS).is_dir():
            return True
    return False
