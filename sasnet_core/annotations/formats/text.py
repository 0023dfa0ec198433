"""Plain text, one head per line, ``x y`` (the SASNet and P2PNet convention). Extra columns are
ignored; an empty file is an image without people."""
from __future__ import annotations

from pathlib import Path

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.formats._common import find_image, fmt, write_text_atomic
from sasnet_core.annotations.formats.jhu import parse_rows

NAME = "text"
DESCRIPTION = "plain text, 'x y' per line (SASNet, P2PNet)"
EXTENSIONS = (".txt",)
FIELD = "x y"
MULTI = False
# The file says nothing of its image: the image it is read with is only guessed from its name.
NAMES_IMAGE = False


def default_name(image_path: str) -> str:
    return f"{Path(image_path).stem}.txt"


def read(path: Path) -> list[Annotation]:
    rows = parse_rows(path, 2, "2 values 'x y'")
    image = find_image([path.stem], [path.parent, path.parent.parent / "images"])
    return [Annotation(image, None, rows[:, :2])]


def write(anns: list[Annotation], path: Path) -> None:
    (ann,) = anns
    write_text_atomic(path, "".join(f"{fmt(x)} {fmt(y)}\n" for x, y in ann.points))
