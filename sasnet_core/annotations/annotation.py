"""Head-point annotations: the one in-memory model and its versioned JSON file.

One file per image, either beside it (``IMG_1.jpg.sasnet.json``) or in a project folder
(``PROJECT/annotations/IMG_1.jpg.sasnet.json``); which one is the annotation store's business
(``sasnet_core.annotations.store``). On disk the image path is relative to the annotation file,
so a folder of images and annotations can be moved as a whole. Keys this version does not know
are kept in ``extra`` and written back unchanged, so a newer tool's data survives a round trip
through an older one. Files are written atomically (temp file in the same folder, fsync,
``os.replace``): a crash mid-save leaves the previous file intact.

File layout (version 2)::

    {"format": "sasnet-annotation", "version": 2, "image": "IMG_1.jpg", "image_size": [w, h],
     "reviewed": false, "points": [[x, y], ...], "sources": [0, 1, ...],
     "rois": [[[x, y], ...], ...],
     "reviewed_cells": {"cell": 128, "cells": [[row, col], ...]}, ...unknown keys...}

Version 2 added ``reviewed_cells``: the review cells (squares of ``cell`` pixels, row and column
counted from the top-left) a person has checked in review mode. A file without reviewed cells is
written as version 1, so tools that read only version 1 still open it; version 1 files open here.

Points are float pixel coordinates, x = column, y = row, origin at the top-left corner of the
top-left pixel. ``sources[i]`` says who put point i there: a person (0) or a model (1).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sasnet_core.annotations.density import inside_image
from sasnet_core.annotations.fields import json_field, json_size, point_pairs, read_json
from sasnet_core.io.atomic import atomic_write_text
from sasnet_core.util.errors import AnnotationFormatError, AnnotationVersionError

FORMAT_NAME = "sasnet-annotation"
FORMAT_VERSION = 2
DEFAULT_REVIEW_CELL_PX = 128  # 4 x 4 patches of 32 pixels (sasnet_core.engine.uncertainty.REVIEW_CELL)
SUFFIX = ".sasnet.json"

SOURCE_PERSON = 0  # a person placed or confirmed the point
SOURCE_MODEL = 1  # a model proposed it and no person has confirmed it yet
# Two points closer than this (pixels) mark one head twice: a double click, a point dragged onto
# another, a model point left under a person's. Distinct heads are further apart even in the
# densest crowds annotated (UCF_CC_50's published points: 9 pairs this close among 63,974 heads).
DUPLICATE_PX = 1.5

_KNOWN_KEYS = {"format", "version", "image", "image_size", "reviewed", "points", "sources", "rois",
               "reviewed_cells"}


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
    reviewed_cells: set = field(default_factory=set)  # {(row, col)} of review cells checked
    review_cell_px: int = DEFAULT_REVIEW_CELL_PX  # side of a review cell, in pixels

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
        self.reviewed_cells = {(int(r), int(c)) for r, c in self.reviewed_cells}
        self.review_cell_px = int(self.review_cell_px)
        if self.review_cell_px < 1:
            raise ValueError(f"review_cell_px must be at least 1, got {self.review_cell_px}")

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

    def misfit(self, image_size: tuple[int, int] | None) -> tuple[list[str], np.ndarray]:
        """How these points fit an image of ``image_size`` (width, height): the sentences that
        say what does not (made on another size, points off the image) and the (N,) bool mask of
        the points off it. Importing another file and reopening an image that changed on disk
        both ask this before a person builds on points that belong elsewhere."""
        problems = []
        if self.image_size and image_size and tuple(self.image_size) != tuple(image_size):
            problems.append(f"it was made on a {self.image_size[0]}x{self.image_size[1]} image; "
                            f"{Path(self.image_path).name or 'this one'} is {image_size[0]}x{image_size[1]}")
        if image_size:
            off = ~inside_image(self.points, (image_size[1], image_size[0]))
        else:
            off = np.zeros(len(self.points), bool)
        if off.any():
            problems.append(f"{int(off.sum())} of {len(off)} points lie outside the image")
        # A region with no area holds no pixel: every count inside it is 0, whatever is there.
        flat = [i + 1 for i, poly in enumerate(self.rois) if polygon_area(poly) < 1.0]
        if flat:
            problems.append(f"region of interest {', '.join(map(str, flat))} encloses no area "
                            "(its corners lie on one line or one spot)")
        return problems, off

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

    def in_reviewed_cells(self, points: np.ndarray | None = None) -> np.ndarray:
        """(N,) bool: which points lie in a reviewed cell (cell (row, col) holds the points with
        floor(y / cell) = row and floor(x / cell) = col, the pixels of ``reviewed_cells_mask``)."""
        pts = self.points if points is None else _as_points(points)
        c = self.review_cell_px
        cells = np.floor(pts[:, ::-1] / c).astype(np.int64)  # (N, 2) row, col
        return np.array([(int(r), int(k)) in self.reviewed_cells for r, k in cells], bool)

    @property
    def teaches(self) -> bool:
        """Whether fine-tuning can learn from this annotation: a person confirmed some of it.

        * marked reviewed as a whole: every point is confirmed, and so is the absence of any other
          head; with no point at all it teaches "nobody here" (an empty scene);
        * reviewed in part (some review cells checked, ``reviewed_cells``): it teaches those cells
          only (``known_count``; ``training.data`` masks the rest), even with no point in them;
        * neither (a model's prediction nobody checked, or points a person is still placing):
          nothing is confirmed, and it teaches nothing.
        """
        return self.reviewed or bool(self.reviewed_cells)

    def known_count(self) -> int:
        """The heads a person has confirmed: those inside the regions of interest (all, without
        one) and, on an image reviewed only in part, inside its reviewed cells; fine-tuning
        learns from those alone."""
        known = self.inside_roi()
        if not self.reviewed and self.reviewed_cells:
            known &= self.in_reviewed_cells()
        return int(known.sum())

    def reviewed_cells_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """(H, W) bool: the pixels of the reviewed cells (all False when there is none)."""
        h, w = int(shape[0]), int(shape[1])
        mask = np.zeros((h, w), bool)
        c = self.review_cell_px
        for r, k in self.reviewed_cells:
            if r >= 0 and k >= 0:  # a cell off the image marks nothing
                mask[r * c : (r + 1) * c, k * c : (k + 1) * c] = True
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
            reviewed_cells=set(self.reviewed_cells),
            review_cell_px=self.review_cell_px,
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
            and self.reviewed_cells == other.reviewed_cells
            and (not self.reviewed_cells or self.review_cell_px == other.review_cell_px)
        )

    def same_marks(self, other: "Annotation") -> bool:
        """Whether ``other`` holds what a person marks: the same points (and who placed them),
        regions of interest, reviewed flag and reviewed cells. Where the image is, its size and
        unknown keys do not count: an editor compares its annotation with the one it opened to
        know whether the edits came back to where they started."""
        return (
            np.array_equal(self.points, other.points)
            and np.array_equal(self.sources, other.sources)
            and len(self.rois) == len(other.rois)
            and all(np.array_equal(a, b) for a, b in zip(self.rois, other.rois))
            and self.reviewed == other.reviewed
            and self.reviewed_cells == other.reviewed_cells
            and (not self.reviewed_cells or self.review_cell_px == other.review_cell_px)
        )

    def duplicate_points(self, within: float = DUPLICATE_PX) -> np.ndarray:
        """Sorted indices of the points that sit on top of another one (see ``duplicate_points``)."""
        return duplicate_points(self.points, within, self.sources)


def duplicate_points(points, within: float = DUPLICATE_PX, sources=None) -> np.ndarray:
    """Sorted indices of the points to drop so that no two points are ``within`` pixels of each
    other or closer: of each such pair one goes, the model's point rather than a person's, else
    the later one. Dropping them leaves one point per cluster of clicks on the same head."""
    from scipy.spatial import cKDTree

    pts = _as_points(points)
    if len(pts) < 2:
        return np.zeros(0, np.int64)
    pairs = cKDTree(pts).query_pairs(float(within), output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros(0, np.int64)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]  # in order, so the outcome is repeatable
    src = None if sources is None else np.asarray(sources).reshape(-1)
    dropped: set[int] = set()
    for i, j in pairs.tolist():
        if i in dropped or j in dropped:
            continue
        if src is not None and src[i] == SOURCE_MODEL and src[j] != SOURCE_MODEL:
            dropped.add(i)
        else:
            dropped.add(j)
    return np.array(sorted(dropped), np.int64)


def polygon_area(polygon: np.ndarray) -> float:
    """Area in square pixels of a simple polygon (shoelace formula); 0 for under three corners."""
    poly = _as_points(polygon, "ROI polygon")
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


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


# -- file naming -----------------------------------------------------------------------------------
def annotation_path_for(image_path) -> Path:
    """The annotation file beside an image: its full name plus ``SUFFIX`` (``a.jpg.sasnet.json``).

    Which file holds an image's annotation (beside it or in a project folder) is decided by
    ``sasnet_core.annotations.store``; this is only the naming rule of a file beside the image.
    """
    image_path = Path(image_path)
    return image_path.with_name(image_path.name + SUFFIX)


# -- reading -------------------------------------------------------------------------------------
# Limits that tell a damaged file from an odd one: no camera or scan comes near a million pixels
# on a side, and coordinates are pixels of such an image (points a little off the image are kept,
# as published data sets have them).
MAX_IMAGE_SIDE = 1 << 20
MAX_COORDINATE = 1e7
# Unknown keys are kept and written back; deeper nesting than this is damage, and would make
# writing the file back (recursive JSON encoding) fail later.
MAX_NESTING = 64


def _fail(path, message: str):
    raise AnnotationFormatError(message, path)


def _short(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_xy_list(value, path, name: str) -> np.ndarray:
    """(N, 2) float64 from a JSON list of [x, y] number pairs, by the rule every format follows
    (numbers as JSON numbers, finite), and within ``MAX_COORDINATE``."""
    arr = point_pairs(value, path, name)
    far = ~(np.abs(arr) <= MAX_COORDINATE).all(axis=1)
    if far.any():
        i = int(np.argmax(far))
        _fail(path, f"field '{name}[{i}]' lies beyond {MAX_COORDINATE:.0e} pixels: {_short(value[i])}")
    return arr


def _check_kept_value(value, path, key: str) -> None:
    """An unknown key's value is written back as it is: refuse what would make the file damaged
    or not JSON then (nesting deeper than ``MAX_NESTING``, NaN or infinite numbers). Iterative, so
    a value nested deeper than Python's recursion limit is answered, not crashed on."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not np.isfinite(item):
            _fail(path, f"field '{key}' holds {item}, which JSON cannot write")
        if isinstance(item, (list, dict)):
            if depth == MAX_NESTING:
                _fail(path, f"field '{key}' nests lists or objects more than {MAX_NESTING} levels deep")
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))


def _read_image_size(size, path):
    if size is None:
        return None
    if len(json_field(size, list, path, "image_size")) != 2:
        _fail(path, f"field 'image_size' must be [width, height], got {_short(size)}")
    size = json_size(size[0], size[1], path, "image_size[0] (width)", "image_size[1] (height)")
    if size is not None and max(size) > MAX_IMAGE_SIDE:
        _fail(path, f"field 'image_size' {list(size)} exceeds {MAX_IMAGE_SIDE} pixels on a side")
    return size


def annotation_from_dict(data, path=None, base_dir=None) -> Annotation:
    """Build an Annotation from the parsed JSON; ``path`` is only used in error messages.

    Every field is checked for its JSON type, range and finiteness; a problem raises
    ``AnnotationFormatError`` naming the file and the field.
    """
    if not isinstance(data, dict):
        _fail(path, f"expected a JSON object at the top level, got {type(data).__name__}")
    if data.get("format") != FORMAT_NAME:
        _fail(path, f"field 'format' must be '{FORMAT_NAME}', got {_short(data.get('format'))}")
    version = data.get("version")
    if type(version) is not int or version < 1:
        _fail(path, f"field 'version' must be a positive integer, got {_short(version)}")
    if version > FORMAT_VERSION:
        raise AnnotationVersionError(f"field 'version' is {version}: written by a newer version of SASNet "
                                     f"Studio (this one reads up to {FORMAT_VERSION}); update to edit it", path)
    image = data.get("image")
    if not isinstance(image, str) or not image.strip():
        _fail(path, "field 'image' must be a non-empty string (the image path)")
    if "\0" in image:
        _fail(path, "field 'image' holds a NUL character, which no file name can")
    if base_dir is not None and not os.path.isabs(image):
        image = os.path.normpath(os.path.join(base_dir, image))
    size = _read_image_size(data.get("image_size"), path)
    points = _read_xy_list(data.get("points", []), path, "points")
    sources = data.get("sources")
    if sources is None:
        sources = np.zeros(len(points), np.uint8)
    else:
        if not isinstance(sources, list) or len(sources) != len(points):
            _fail(path, f"field 'sources' must be a list with one entry per point ({len(points)})")
        for i, s in enumerate(sources):
            if type(s) is not int or s not in (SOURCE_PERSON, SOURCE_MODEL):
                _fail(path, f"field 'sources': entry {i} must be 0 (person) or 1 (model), got {_short(s)}")
        sources = np.array(sources, np.uint8)
    rois = []
    for i, poly in enumerate(json_field(data.get("rois", []), list, path, "rois")):
        arr = _read_xy_list(poly, path, f"rois[{i}]")
        if len(arr) < 3:
            _fail(path, f"field 'rois[{i}]' needs at least 3 vertices, got {len(arr)}")
        rois.append(arr)
    reviewed = data.get("reviewed", False)
    if not isinstance(reviewed, bool):
        _fail(path, f"field 'reviewed' must be true or false, got {_short(reviewed)}")
    cells, cell_px = _read_reviewed_cells(data.get("reviewed_cells"), path)
    extra = {k: v for k, v in data.items() if k not in _KNOWN_KEYS}
    for key, value in extra.items():
        _check_kept_value(value, path, key)
    return Annotation(image, size, points, sources, rois, reviewed, extra, cells, cell_px)


# No image has a million pixels on a side (MAX_IMAGE_SIDE), so no cell index reaches this.
_MAX_CELL_INDEX = MAX_IMAGE_SIDE


def _read_reviewed_cells(value, path) -> tuple[set, int]:
    """``{"cell": pixels, "cells": [[row, col], ...]}`` -> ({(row, col)}, pixels)."""
    if value is None:
        return set(), DEFAULT_REVIEW_CELL_PX
    if not isinstance(value, dict):
        _fail(path, f"field 'reviewed_cells' must be an object with 'cell' and 'cells', got {_short(value)}")
    cell = value.get("cell")
    if type(cell) is not int or not 1 <= cell <= MAX_IMAGE_SIDE:
        _fail(path, f"field 'reviewed_cells.cell' must be a cell size in pixels (1 to {MAX_IMAGE_SIDE}), "
                    f"got {_short(cell)}")
    cells = value.get("cells")
    if not isinstance(cells, list):
        _fail(path, f"field 'reviewed_cells.cells' must be a list of [row, col], got {_short(cells)}")
    out = set()
    for i, rc in enumerate(cells):
        if (not isinstance(rc, list) or len(rc) != 2
                or not all(type(v) is int and 0 <= v < _MAX_CELL_INDEX for v in rc)):
            _fail(path, f"field 'reviewed_cells.cells[{i}]' must be [row, col] of non-negative integers, "
                        f"got {_short(rc)}")
        out.add((rc[0], rc[1]))
    return out, cell


def load_annotation(path) -> Annotation:
    """Read one annotation file; ``image_path`` comes back resolved against the file's folder.

    Whatever is wrong with the file (missing, unreadable, not UTF-8, not JSON, nested too deeply,
    a field of the wrong type or range) raises ``AnnotationFormatError`` naming the file.
    """
    path = Path(path)
    if path.is_dir():
        _fail(path, "is a folder, not an annotation file")
    return annotation_from_dict(read_json(path), path, base_dir=str(path.parent.absolute()))


# -- writing -------------------------------------------------------------------------------------
def annotation_to_dict(ann: Annotation, relative_to=None) -> dict:
    image = ann.image_path
    if relative_to is not None and os.path.isabs(image):
        try:
            image = os.path.relpath(image, os.path.abspath(relative_to))
        except ValueError:  # another drive on Windows: keep it absolute
            pass
    image = image.replace(os.sep, "/")
    # The lowest version that holds the data: a file without reviewed cells stays readable by
    # tools that know only version 1.
    version = FORMAT_VERSION if ann.reviewed_cells else 1
    data = {"format": FORMAT_NAME, "version": version, "image": image}
    data["image_size"] = list(ann.image_size) if ann.image_size is not None else None
    data["reviewed"] = ann.reviewed
    # repr of a Python float round-trips exactly, so points are stored without loss.
    data["points"] = ann.points.tolist()
    data["sources"] = ann.sources.tolist()
    data["rois"] = [r.tolist() for r in ann.rois]
    if ann.reviewed_cells:
        data["reviewed_cells"] = {"cell": ann.review_cell_px,
                                  "cells": [list(rc) for rc in sorted(ann.reviewed_cells)]}
    for key, value in ann.extra.items():
        if key not in _KNOWN_KEYS:
            data[key] = value
    if data["image_size"] is None:
        del data["image_size"]
    return data


def _check_savable(ann: Annotation, path) -> None:
    """Refuse to write what ``load_annotation`` would refuse to read."""
    for name, arr in [("points", ann.points)] + [(f"rois[{i}]", r) for i, r in enumerate(ann.rois)]:
        if not np.isfinite(arr).all():
            raise AnnotationFormatError(f"refusing to save: field '{name}' holds NaN or infinity", path)
        if arr.size and np.abs(arr).max() > MAX_COORDINATE:
            raise AnnotationFormatError(
                f"refusing to save: field '{name}' holds a coordinate beyond {MAX_COORDINATE:.0e}", path)
    for key, value in ann.extra.items():
        if key not in _KNOWN_KEYS:
            try:
                _check_kept_value(value, path, key)
            except AnnotationFormatError as exc:
                raise AnnotationFormatError(f"refusing to save: {exc.detail}", path) from None
    for i, roi in enumerate(ann.rois):  # load_annotation refuses these: never write them
        if len(roi) < 3:
            raise AnnotationFormatError(
                f"refusing to save: field 'rois[{i}]' needs at least 3 vertices, got {len(roi)}", path)


def save_annotation(ann: Annotation, path) -> Path:
    """Write atomically: a temp file in the same folder, flushed and fsynced, then os.replace."""
    path = Path(path)
    _check_savable(ann, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(annotation_to_dict(ann, relative_to=path.parent), separators=(",", ":"),
                      allow_nan=False)
    atomic_write_text(path, text + "\n")
    return path
