"""Head-point annotations: the one in-memory model and its versioned JSON file.

One file per image, either beside it (``IMG_1.jpg.sasnet.json``) or in a project folder
(``PROJECT/annotations/IMG_1.sasnet.json``). On disk the image path is relative to the annotation
file, so a folder of images and annotations can be moved as a whole. Keys this version does not
know are kept in ``extra`` and written back unchanged, so a newer tool's data survives a round trip
through an older one. Files are written atomically (temp file in the same folder, fsync,
``os.replace``): a crash mid-save leaves the previous file intact.

File layout (version 1)::

    {"format": "sasnet-annotation", "version": 1, "image": "IMG_1.jpg", "image_size": [w, h],
     "reviewed": false, "points": [[x, y], ...], "sources": [0, 1, ...],
     "rois": [[[x, y], ...], ...], ...unknown keys...}

Points are float pixel coordinates, x = column, y = row, origin at the top-left corner of the
top-left pixel. ``sources[i]`` says who put point i there: a person (0) or a model (1).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sasnet_core.atomic import atomic_write_text
from sasnet_core.errors import AnnotationFormatError

FORMAT_NAME = "sasnet-annotation"
FORMAT_VERSION = 1
SUFFIX = ".sasnet.json"

SOURCE_PERSON = 0  # a person placed or confirmed the point
SOURCE_MODEL = 1  # a model proposed it and no person has confirmed it yet

_KNOWN_KEYS = {"format", "version", "image", "image_size", "reviewed", "points", "sources", "rois"}


def _as_points(value, what: str = "points") -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2), np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{what} must have shape (N, 2), got {arr.shape}")
    return np.ascontiguousarray(arr)


@dataclass
class Annotation:
    """Head points, regions of interest and review state of one image.

    ``image_path`` is kept as given. ``save_annotation`` writes an absolute path relative to the
    annotation file (a relative one is written as is, taken to be relative to that file already);
    ``load_annotation`` returns it absolute, resolved against the annotation file's folder.
    """

    image_path: str
    image_size: tuple[int, int] | None = None  # (width, height)
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float64))
    sources: np.ndarray | None = None  # (N,) uint8; None -> all SOURCE_PERSON
    rois: list[np.ndarray] = field(default_factory=list)  # polygons, each (M, 2) x, y
    reviewed: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.image_path = os.fspath(self.image_path)
        self.points = _as_points(self.points)
        if self.sources is None:
            self.sources = np.full(len(self.points), SOURCE_PERSON, np.uint8)
        else:
            self.sources = np.asarray(self.sources, dtype=np.uint8).reshape(-1)
            if len(self.sources) != len(self.points):
                raise ValueError(
                    f"sources has {len(self.sources)} entries for {len(self.points)} points"
                )
        self.rois = [_as_points(r, "ROI polygon") for r in self.rois]
        if self.image_size is not None:
            w, h = self.image_size
            self.image_size = (int(w), int(h))
        self.reviewed = bool(self.reviewed)

    # -- queries ----------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return int(len(self.points))

    def inside_roi(self, points: np.ndarray | None = None) -> np.ndarray:
        """(N,) bool: which points lie inside any ROI polygon (all of them when there is none)."""
        pts = self.points if points is None else _as_points(points)
        if not self.rois:
            return np.ones(len(pts), bool)
        inside = np.zeros(len(pts), bool)
        for poly in self.rois:
            inside |= points_in_polygon(pts, poly)
        return inside

    def count_in_roi(self) -> int:
        return int(self.inside_roi().sum())

    def roi_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """(H, W) bool mask of the ROI polygons; all True when there is no ROI.

        A pixel is inside when its centre (col + 0.5, row + 0.5) is inside a polygon, the same
        rule ``inside_roi`` applies to points, so masked density sums match point counts.
        """
        h, w = int(shape[0]), int(shape[1])
        if not self.rois:
            return np.ones((h, w), bool)
        mask = np.zeros((h, w), bool)
        for poly in self.rois:
            mask |= polygon_mask(poly, (h, w))
        return mask

    def copy(self) -> "Annotation":
        return Annotation(
            image_path=self.image_path,
            image_size=self.image_size,
            points=self.points.copy(),
            sources=self.sources.copy(),
            rois=[r.copy() for r in self.rois],
            reviewed=self.reviewed,
            extra=json.loads(json.dumps(self.extra)),
        )

    def __eq__(self, other) -> bool:  # arrays make the dataclass default useless
        if not isinstance(other, Annotation):
            return NotImplemented
        return (
            self.image_path == other.image_path
            and self.image_size == other.image_size
            and np.array_equal(self.points, other.points)
            and np.array_equal(self.sources, other.sources)
            and len(self.rois) == len(other.rois)
            and all(np.array_equal(a, b) for a, b in zip(self.rois, other.rois))
            and self.reviewed == other.reviewed
            and self.extra == other.extra
        )


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over points: (N,) bool."""
    pts = _as_points(points)
    poly = _as_points(polygon, "polygon")
    if len(poly) < 3 or len(pts) == 0:
        return np.zeros(len(pts), bool)
    x, y = pts[:, 0:1], pts[:, 1:2]  # (N, 1)
    x0, y0 = poly[:, 0], poly[:, 1]  # (M,)
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    crosses = (y0 > y) != (y1 > y)  # (N, M): edge spans the horizontal line through the point
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return np.logical_and(crosses, x < xi).sum(axis=1) % 2 == 1


def polygon_mask(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: pixels whose centre is inside the polygon (even-odd rule, as above).

    Scanline fill, vectorised over rows: memory O(H * vertices), never O(H * W * vertices).
    """
    h, w = int(shape[0]), int(shape[1])
    mask = np.zeros((h, w), bool)
    poly = _as_points(polygon, "polygon")
    if len(poly) < 3 or h == 0 or w == 0:
        return mask
    r0 = max(int(np.floor(poly[:, 1].min())), 0)
    r1 = min(int(np.ceil(poly[:, 1].max())) + 1, h)
    if r0 >= r1:
        return mask
    yc = (np.arange(r0, r1) + 0.5)[:, None]  # (R, 1) row centres
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    crosses = (y0 > yc) != (y1 > yc)  # (R, M)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.where(crosses, x0 + (yc - y0) * (x1 - x0) / (y1 - y0), np.inf)
    if xi.shape[1] % 2:  # an even column count so crossings pair up
        xi = np.concatenate([xi, np.full((len(xi), 1), np.inf)], axis=1)
    xi.sort(axis=1)  # crossings come in pairs; inf pads the rest
    # A centre c + 0.5 is inside when xi[2k] <= c + 0.5 < xi[2k+1].
    starts = np.clip(np.ceil(xi[:, 0::2] - 0.5), 0, w)
    ends = np.clip(np.ceil(xi[:, 1::2] - 0.5), 0, w)
    valid = np.isfinite(xi[:, 1::2])
    diff = np.zeros((r1 - r0, w + 1), np.int32)
    rows = np.broadcast_to(np.arange(r1 - r0)[:, None], starts.shape)
    np.add.at(diff, (rows[valid], starts[valid].astype(int)), 1)
    np.add.at(diff, (rows[valid], ends[valid].astype(int)), -1)
    mask[r0:r1] = np.cumsum(diff, axis=1)[:, :w] > 0
    return mask


# -- file locations ------------------------------------------------------------------------------
def annotation_path_for(image_path, project_dir=None) -> Path:
    """Where the annotation of ``image_path`` lives: beside it, or in ``project_dir/annotations``."""
    image_path = Path(image_path)
    if project_dir is not None:
        return Path(project_dir) / "annotations" / f"{image_path.stem}{SUFFIX}"
    return image_path.with_name(image_path.name + SUFFIX)


def find_annotation(image_path, project_dir=None) -> Annotation | None:
    """The saved annotation of an image, or None when it has none yet."""
    path = annotation_path_for(image_path, project_dir)
    if not path.is_file():
        return None
    return load_annotation(path)


# -- reading -------------------------------------------------------------------------------------
def _fail(path, message: str):
    raise AnnotationFormatError(message, path)


def _read_xy_list(value, path, name: str) -> np.ndarray:
    if not isinstance(value, list):
        _fail(path, f"field '{name}' must be a list of [x, y] pairs, got {type(value).__name__}")
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        _fail(path, f"field '{name}' must be a list of [x, y] number pairs")
    if arr.size == 0:
        return np.zeros((0, 2), np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        _fail(path, f"field '{name}' must be a list of [x, y] pairs, got shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        _fail(path, f"field '{name}': entry {int(np.argmax(bad))} is not a finite number pair")
    return arr


def annotation_from_dict(data, path=None, base_dir=None) -> Annotation:
    """Build an Annotation from the parsed JSON; ``path`` is only used in error messages."""
    if not isinstance(data, dict):
        _fail(path, "expected a JSON object at the top level")
    if data.get("format") != FORMAT_NAME:
        _fail(path, f"field 'format' must be '{FORMAT_NAME}', got {data.get('format')!r}")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        _fail(path, f"field 'version' must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        _fail(path, f"field 'version' is {version}; this program reads up to {FORMAT_VERSION}")
    image = data.get("image")
    if not isinstance(image, str) or not image:
        _fail(path, "field 'image' must be a non-empty string (the image path)")
    if base_dir is not None and not os.path.isabs(image):
        image = os.path.normpath(os.path.join(base_dir, image))
    size = data.get("image_size")
    if size is not None:
        if (
            not isinstance(size, list)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        ):
            _fail(path, f"field 'image_size' must be [width, height] positive integers, got {size!r}")
        size = (size[0], size[1])
    points = _read_xy_list(data.get("points", []), path, "points")
    sources = data.get("sources")
    if sources is None:
        sources = np.zeros(len(points), np.uint8)
    else:
        if not isinstance(sources, list) or len(sources) != len(points):
            _fail(path, f"field 'sources' must be a list with one entry per point ({len(points)})")
        sources = np.array(sources)
        if sources.size and (
            sources.dtype.kind not in "iu" or not np.isin(sources, (SOURCE_PERSON, SOURCE_MODEL)).all()
        ):
            _fail(path, "field 'sources' entries must be 0 (person) or 1 (model)")
        sources = sources.astype(np.uint8)
    rois_raw = data.get("rois", [])
    if not isinstance(rois_raw, list):
        _fail(path, "field 'rois' must be a list of polygons")
    rois = []
    for i, poly in enumerate(rois_raw):
        arr = _read_xy_list(poly, path, f"rois[{i}]")
        if len(arr) < 3:
            _fail(path, f"field 'rois[{i}]' needs at least 3 vertices, got {len(arr)}")
        rois.append(arr)
    reviewed = data.get("reviewed", False)
    if not isinstance(reviewed, bool):
        _fail(path, f"field 'reviewed' must be true or false, got {reviewed!r}")
    extra = {k: v for k, v in data.items() if k not in _KNOWN_KEYS}
    return Annotation(image, size, points, sources, rois, reviewed, extra)


def load_annotation(path) -> Annotation:
    """Read one annotation file; ``image_path`` comes back resolved against the file's folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AnnotationFormatError("annotation file does not exist", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationFormatError(f"cannot read annotation file: {exc}", path) from None
    if not text.strip():
        _fail(path, "file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationFormatError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", path
        ) from None
    return annotation_from_dict(data, path, base_dir=str(path.parent.absolute()))


# -- writing -------------------------------------------------------------------------------------
def annotation_to_dict(ann: Annotation, relative_to=None) -> dict:
    image = ann.image_path
    if relative_to is not None and os.path.isabs(image):
        try:
            image = os.path.relpath(image, os.path.abspath(relative_to))
        except ValueError:  # another drive on Windows: keep it absolute
            pass
    image = image.replace(os.sep, "/")
    data = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "image": image}
    data["image_size"] = list(ann.image_size) if ann.image_size is not None else None
    data["reviewed"] = ann.reviewed
    # repr of a Python float round-trips exactly, so points are stored without loss.
    data["points"] = ann.points.tolist()
    data["sources"] = ann.sources.tolist()
    data["rois"] = [r.tolist() for r in ann.rois]
    for key, value in ann.extra.items():
        if key not in _KNOWN_KEYS:
            data[key] = value
    if data["image_size"] is None:
        del data["image_size"]
    return data


def _check_finite(ann: Annotation, path) -> None:
    for name, arr in [("points", ann.points)] + [(f"rois[{i}]", r) for i, r in enumerate(ann.rois)]:
        if not np.isfinite(arr).all():
            raise AnnotationFormatError(f"refusing to save: field '{name}' holds NaN or infinity", path)
    for i, roi in enumerate(ann.rois):  # load_annotation refuses these: never write them
        if len(roi) < 3:
            raise AnnotationFormatError(
                f"refusing to save: field 'rois[{i}]' needs at least 3 vertices, got {len(roi)}", path)


def save_annotation(ann: Annotation, path) -> Path:
    """Write atomically: a temp file in the same folder, flushed and fsynced, then os.replace."""
    path = Path(path)
    _check_finite(ann, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(annotation_to_dict(ann, relative_to=path.parent), separators=(",", ":"))
    atomic_write_text(path, text + "\n")
    return path
