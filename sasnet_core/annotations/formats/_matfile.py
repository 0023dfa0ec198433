"""MATLAB .mat reading with errors that name the file (scipy raises many kinds on bad files)."""
from __future__ import annotations

import io
import math
from pathlib import Path

from sasnet_core.annotations.fields import fail, read_bytes
from sasnet_core.io.atomic import atomic_path

# MAT v5 element types: numbers (miINT8 .. miUINT64), miMATRIX, miCOMPRESSED, miUTF8/16/32.
_MI_MATRIX, _MI_COMPRESSED = 14, 15
_MI_TYPES = {1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 16, 17, 18}
MAX_DECOMPRESSED = 256 << 20  # bytes; the largest crowd annotation (UCF-QNRF) needs 0.2 MB
_MAX_DEPTH = 32


def check_structure(data: bytes, path) -> None:
    """Walk a MAT v5 file's element tags before scipy reads it: every element must fit inside
    its parent and every compressed element must be a complete zlib stream. scipy's compiled
    reader trusts both, and a damaged file can crash the whole process instead of raising."""
    if len(data) < 128 or data[126:128] not in (b"IM", b"MI"):
        return  # MATLAB v4 or v7.3 (HDF5): scipy's own checks, or its own error
    order = "<" if data[126:128] == b"IM" else ">"
    _walk(data, 128, len(data), order, path, 0)


def _walk(buf: bytes, pos: int, end: int, order: str, path, depth: int) -> None:
    import struct
    import zlib

    if depth > _MAX_DEPTH:
        fail(path, "not a readable MATLAB .mat file: elements nested too deeply")
    while pos < end:
        if end - pos < 8:
            if depth == 0 and not buf[pos:end].strip(b"\0"):
                return  # padding at the end of the file
            fail(path, "not a readable MATLAB .mat file (truncated or damaged?): a cut data element")
        first, size = struct.unpack(order + "II", buf[pos:pos + 8])
        if (first & 0xFFFF if first >> 16 else first) not in _MI_TYPES:
            fail(path, f"not a readable MATLAB .mat file (damaged?): unknown data type "
                       f"{first & 0xFFFF if first >> 16 else first}")
        if first >> 16:  # small data element: up to 4 bytes inside the tag itself
            if first >> 16 > 4:
                fail(path, "not a readable MATLAB .mat file (damaged?): a small data element "
                           f"claims {first >> 16} bytes")
            pos += 8
            continue
        body = pos + 8
        if size > end - body:
            fail(path, f"not a readable MATLAB .mat file (truncated or damaged?): a data element "
                       f"claims {size} bytes where {end - body} remain")
        if first == _MI_COMPRESSED:
            unzip = zlib.decompressobj()
            try:
                inner = unzip.decompress(buf[body:body + size], MAX_DECOMPRESSED)
            except zlib.error as exc:
                fail(path, f"not a readable MATLAB .mat file (damaged?): compressed data: {exc}")
            if unzip.unconsumed_tail:
                fail(path, f"not a readable MATLAB .mat file: a variable decompresses to more than "
                           f"{MAX_DECOMPRESSED >> 20} MB")
            if not unzip.eof:
                fail(path, "not a readable MATLAB .mat file (truncated or damaged?): compressed "
                           "data ends early")
            _walk(inner, 0, len(inner), order, path, depth + 1)
            pos = body + size  # compressed elements are not padded
        else:
            if first == _MI_MATRIX and size:
                _check_matrix_header(buf, body, body + size, order, path)
                _walk(buf, body, body + size, order, path, depth + 1)
            pos = body + size + (-size % 8)


_NUMBERS = {1, 2, 3, 4, 5, 6, 7, 9, 12, 13}  # miINT8 .. miUINT64
_TEXT = _NUMBERS | {16, 17, 18}  # characters may also be miUTF8/16/32
_CELL, _STRUCT, _CHAR, _SPARSE = 1, 2, 4, 5


def _check_matrix_header(buf: bytes, pos: int, end: int, order: str, path) -> None:
    """One array's layout, as scipy's compiled reader assumes it: flags (a known class), at least
    two non-negative dimensions, a name, then the parts its class has, each of a type that
    class allows. Classes annotation files never hold (objects, functions) are refused."""
    import struct

    def damaged(what: str):
        fail(path, f"not a readable MATLAB .mat file (damaged?): {what}")

    parts = []  # (type, byte size, offset of the data) of each sub-element
    while end - pos >= 8:
        first, size = struct.unpack(order + "II", buf[pos:pos + 8])
        if first >> 16:  # small data element: up to 4 bytes inside the tag itself
            if first >> 16 > 4:
                damaged(f"a small data element claims {first >> 16} bytes")
            parts.append((first & 0xFFFF, first >> 16, pos + 4))
            pos += 8
        else:
            if size > end - pos - 8:
                damaged(f"a data element claims {size} bytes where {end - pos - 8} remain")
            parts.append((first, size, pos + 8))
            pos += 8 + size + (-size % 8)
    if len(parts) < 3:
        damaged("an array without its flags, dimensions and name")
    (ftype, fsize, fpos), (dtype, dsize, dpos), (ntype, _, _) = parts[:3]
    flags = struct.unpack(order + "I", buf[fpos:fpos + 4])[0] if fsize >= 4 else -1
    # byte 0: the class; byte 1: complex (0x08), global (0x04), logical (0x02); bytes 2-3: zero
    cls = flags & 0xFF
    if ftype != 6 or fsize != 8 or cls not in (_CELL, _STRUCT, _CHAR, _SPARSE, *range(6, 16)) \
            or flags & ~0x0EFF:
        damaged("an array with damaged flags, or of a class annotation files do not hold")
    if dtype != 5 or dsize % 4 or dsize < 8:
        damaged("an array with damaged dimensions")
    dims = struct.unpack(f"{order}{dsize // 4}i", buf[dpos:dpos + dsize])
    if min(dims) < 0:
        damaged(f"an array with negative dimensions {dims}")
    if ntype != 1:
        damaged("an array with a damaged name")
    # Every element takes at least a byte (a cell or struct element far more); a damaged size
    # would otherwise have scipy build an array of billions of elements from a few bytes.
    rest, count = parts[3:], math.prod(dims)
    if cls != _SPARSE and count > max(sum(8 + size for _, size, _ in rest), 1):
        damaged(f"an array of {' x '.join(map(str, dims))} elements stored in fewer bytes")
    complex_ = bool(flags & 0x0800)
    if cls == _CELL:
        ok = len(rest) == count and all(t == _MI_MATRIX for t, _, _ in rest)
    elif cls == _STRUCT:
        ok = (len(rest) >= 2 and rest[0][0] == 5 and rest[0][1] == 4 and rest[1][0] == 1
              and all(t == _MI_MATRIX for t, _, _ in rest[2:]))
    elif cls == _CHAR:
        ok = len(rest) == 1 and rest[0][0] in _TEXT
    elif cls == _SPARSE:
        ok = len(rest) == 4 + complex_ - 1 and all(t in _NUMBERS for t, _, _ in rest)
    else:  # numbers: the real part, and the imaginary part when complex
        ok = len(rest) == 1 + complex_ and all(t in _NUMBERS for t, _, _ in rest)
    if not ok:
        damaged("an array whose parts do not match its class")


def load(path: Path) -> dict:
    import scipy.io

    data = read_bytes(path)
    check_structure(data, path)
    try:
        return scipy.io.loadmat(io.BytesIO(data))
    except NotImplementedError:
        fail(path, "MATLAB v7.3 (HDF5) files are not supported; save with -v7")
    except Exception as exc:  # truncated or corrupt files raise ValueError, OSError, zlib.error...
        fail(path, f"not a readable MATLAB .mat file (truncated or damaged?): {exc}")


def variables(path: Path) -> list[str]:
    import scipy.io

    try:
        data = Path(path).read_bytes()
        check_structure(data, path)
        return [v[0] for v in scipy.io.whosmat(io.BytesIO(data))]
    except Exception:  # noqa: BLE001 - a damaged file: ``load`` says what is wrong with it
        return []


def names(mat: dict) -> str:
    return ", ".join(k for k in mat if not k.startswith("__")) or "nothing"


def save(path: Path, variables_: dict) -> None:
    import scipy.io

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            scipy.io.savemat(fh, variables_, do_compression=True)
