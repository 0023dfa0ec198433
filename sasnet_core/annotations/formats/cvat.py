"""CVAT for images 1.1 XML: ``<image name width height>`` with ``<points points="x,y;x,y">``
heads (``source="auto"`` marks model proposals) and ``<polygon label="roi">`` regions."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from sasnet_core.annotations.annotation import SOURCE_MODEL, SOURCE_PERSON, Annotation
from sasnet_core.annotations.fields import fail, read_bytes
from sasnet_core.annotations.formats._common import (
    fmt,
    relative_name,
    resolve_image,
    write_text_atomic,
)

NAME = "cvat"
DESCRIPTION = "CVAT for images 1.1 XML (points; polygons labelled 'roi')"
EXTENSIONS = (".xml",)
FIELD = "points"
MULTI = True
KEEPS = ("rois",)  # beyond points (regions of interest as polygons labelled "roi"); see export.left_out


def default_name(image_path: str) -> str:
    return "annotations.xml"


def _xy(text: str, path, where: str) -> np.ndarray:
    try:
        pairs = [tuple(float(v) for v in p.split(",")) for p in text.split(";") if p.strip()]
        return np.array(pairs, np.float64).reshape(-1, 2)
    except ValueError:
        fail(path, f"{where}: attribute 'points' must be 'x,y;x,y;...', got {text[:60]!r}")


def _size(im, path, where: str):
    w, h = im.get("width"), im.get("height")
    if w is None and h is None:
        return None
    try:
        size = int(w), int(h)
    except (TypeError, ValueError):
        fail(path, f"{where}: 'width' and 'height' must be whole numbers, got {w!r:.20} and {h!r:.20}")
    if min(size) <= 0:
        fail(path, f"{where}: image size {size[0]}x{size[1]} is not a size")
    return size


class _Declared(Exception):
    pass


def _refuse_declarations(data: bytes, path) -> None:
    """CVAT never writes a DTD; entity declarations are how XML bombs and external-file reads
    arrive, so a file that declares any is refused before the tree is built."""
    from xml.parsers import expat

    def refuse(*_):
        raise _Declared

    scan = expat.ParserCreate()
    scan.StartDoctypeDeclHandler = scan.EntityDeclHandler = refuse
    try:
        scan.Parse(data, True)
    except _Declared:
        fail(path, "XML with a DOCTYPE or ENTITY declaration is refused (CVAT files have none)")
    except expat.ExpatError as exc:
        fail(path, f"not valid XML ({expat.ErrorString(exc.code)}: line {exc.lineno}, "
                   f"column {exc.offset})")
    except (LookupError, ValueError) as exc:  # an encoding Python does not know
        fail(path, f"not valid XML ({exc})")


def read(path: Path) -> list[Annotation]:
    data = read_bytes(path)
    _refuse_declarations(data, path)
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, LookupError, ValueError) as exc:
        fail(path, f"not valid XML ({exc})")
    if root.tag != "annotations":
        fail(path, f"root element is <{root.tag}>, expected <annotations> (CVAT for images 1.1)")
    anns = []
    for i, im in enumerate(root.iter("image")):
        name = im.get("name")
        if not name:
            fail(path, f"<image> number {i + 1} has no attribute 'name'")
        pts, src, rois = [], [], []
        for el in im:
            where = f"image '{name}' <{el.tag}>"
            if el.tag == "points":
                xy = _xy(el.get("points", ""), path, where)
                pts.append(xy)
                auto = el.get("source", "manual") != "manual"
                src += [SOURCE_MODEL if auto else SOURCE_PERSON] * len(xy)
            elif el.tag == "polygon" and el.get("label", "").lower() == "roi":
                poly = _xy(el.get("points", ""), path, where)
                if len(poly) >= 3:  # as LabelMe and VIA: a 1- or 2-vertex "polygon" is no region
                    rois.append(poly)
        size = _size(im, path, f"image '{name}'")
        points = np.concatenate(pts) if pts else np.zeros((0, 2))
        anns.append(Annotation(resolve_image(name, path.parent), size, points, src, rois))
    return anns


def write(anns: list[Annotation], path: Path) -> None:
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    meta = ET.SubElement(ET.SubElement(root, "meta"), "task")
    labels = ET.SubElement(meta, "labels")
    for name, kind in (("head", "points"), ("roi", "polygon")):
        lab = ET.SubElement(labels, "label")
        ET.SubElement(lab, "name").text = name
        ET.SubElement(lab, "type").text = kind
    for i, ann in enumerate(anns):
        attrs = {"id": str(i), "name": relative_name(ann.image_path, path)}
        if ann.image_size is not None:
            attrs["width"], attrs["height"] = str(ann.image_size[0]), str(ann.image_size[1])
        im = ET.SubElement(root, "image", attrs)
        for (x, y), s in zip(ann.points, ann.sources):
            ET.SubElement(im, "points", {"label": "head", "source": "auto" if s == SOURCE_MODEL
                                         else "manual", "occluded": "0", "z_order": "0",
                                         "points": f"{fmt(x)},{fmt(y)}"})
        for r in ann.rois:
            ET.SubElement(im, "polygon", {"label": "roi", "source": "manual", "occluded": "0",
                                          "z_order": "0",
                                          "points": ";".join(f"{fmt(x)},{fmt(y)}" for x, y in r)})
    ET.indent(root)
    write_text_atomic(path, '<?xml version="1.0" encoding="utf-8"?>\n'
                      + ET.tostring(root, encoding="unicode") + "\n")
