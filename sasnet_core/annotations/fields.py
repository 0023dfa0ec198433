"""Reading annotation files as data: the file's bytes, text and JSON, and JSON fields checked by
type, with errors that name the file and the field. The file format (``annotation``) and every
foreign format (``formats``) read through these, so one rule holds for all: a number must be
written as a JSON number, a list as a list.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sasnet_core.util.errors import AnnotationFormatError, kind_of


def fail(path, message: str):
    raise AnnotationFormatError(message, path)


def read_bytes(path, allow_empty: bool = False) -> bytes:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        fail(path, "file does not exist")
    except OSError as exc:
        fail(path, f"cannot read file ({exc.strerror or exc})")
    if not allow_empty and not data.strip():
        fail(path, "file is empty")
    return data


def read_text(path, allow_empty: bool = False) -> str:
    data = read_bytes(path, allow_empty)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        fail(path, "not a UTF-8 text file")


def read_json(path):
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
    except RecursionError:  # the decoder recurses once per nesting level
        fail(path, "JSON nested too deeply to be an annotation file")
    except ValueError as exc:  # an integer longer than Python converts (4300 digits)
        fail(path, f"not valid JSON ({exc})")


# -- JSON field types -------------------------------------------------------------------------------
# One rule for every format: a number must be written as a JSON number. "12" is refused, not
# guessed, so a file that one tool reads is never read differently by another.
def json_field(value, kind, path, field: str):
    """``value`` when it is of JSON ``kind`` (list, dict or str), else a named error."""
    names = {list: "a list", dict: "an object", str: "text"}
    if not isinstance(value, kind):
        fail(path, f"field '{field}' must be {names[kind]}, got {kind_of(value)}")
    return value


def json_number(value, path, field: str) -> float:
    """A finite JSON number (not a string, not true/false)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(path, f"field '{field}' must be a number, got {kind_of(value)} {value!r:.40}")
    try:
        value = float(value)
    except OverflowError:  # an integer with hundreds of digits
        value = float("inf")
    if not np.isfinite(value):
        fail(path, f"field '{field}' is not a finite number ({value})")
    return value


def json_size(width, height, path, width_field: str, height_field: str):
    """(w, h) of positive whole numbers, or None when both are absent (null); errors name the
    field as the file spells it."""
    if width is None and height is None:
        return None
    out = []
    for field, v in ((width_field, width), (height_field, height)):
        v = json_number(v, path, field)
        if not v.is_integer() or v <= 0:
            fail(path, f"field '{field}' must be a whole number of pixels above 0, got {v:g}")
        out.append(int(v))
    return tuple(out)


def json_id(value, path, field: str):
    """An id: a whole number or a text, as COCO and VIA tools write them."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        fail(path, f"field '{field}' must be a whole number or a text, got {kind_of(value)} {value!r:.40}")
    return value


_NUMBER = (int, float)  # exact types: true/false are not numbers here


def point_pairs(value, path, field: str) -> np.ndarray:
    """(N, 2) float64 from a JSON list of [x, y] number pairs; the error names the field."""
    json_field(value, list, path, field)
    # Fast path (an image of a data set holds up to 10^4 heads): the exact JSON types checked in
    # one pass and converted at once; anything odd goes through the loop below for its error.
    if all(type(p) is list and len(p) == 2 and type(p[0]) in _NUMBER and type(p[1]) in _NUMBER
           for p in value):
        try:
            out = np.array(value, np.float64).reshape(-1, 2)
        except OverflowError:  # an integer with hundreds of digits: named below
            out = None
        if out is not None and np.isfinite(out).all():
            return out
    out = np.zeros((len(value), 2))
    for i, pair in enumerate(value):
        if not isinstance(pair, list) or len(pair) != 2:
            fail(path, f"field '{field}[{i}]' must be an [x, y] pair, got {kind_of(pair)} "
                       f"{pair!r:.40}")
        out[i] = json_number(pair[0], path, f"{field}[{i}]"), json_number(pair[1], path, f"{field}[{i}]")
    return out


def number_list(value, path, field: str) -> np.ndarray:
    json_field(value, list, path, field)
    return np.array([json_number(v, path, f"{field}[{i}]") for i, v in enumerate(value)], np.float64)
