"""How an image is named in the file list: its file name, or, where several opened images share
that name (a data set's train_data/images/IMG_4.jpg and test_data/images/IMG_4.jpg), the shortest
end of its path that tells it apart from the others."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import PurePath

ELLIPSIS = "\u2026"


def shown_names(paths) -> dict[str, str]:
    """``{path: text}`` for paths that all have the same file name (distinct paths). Each text
    is the name with the fewest parent folders that no other path of the group ends in; the
    folders between the deciding one and the name, shared with another row, are left out
    (``test_data/\u2026/IMG_4.jpg``) unless that would read the same as another row's text."""
    paths = [str(p) for p in paths]
    if len(paths) < 2:
        return {p: PurePath(p).name for p in paths}
    folders = {p: PurePath(p).parts[:-1] for p in paths}
    depth = max(len(f) for f in folders.values())
    # How many paths end in each run of k folders, for every k: a path keeps the first k whose
    # run is its own.
    ends = [Counter(f[-k:] for f in folders.values()) for k in range(depth + 1)]
    full = {}
    for p, f in folders.items():
        k = next((k for k in range(1, len(f) + 1) if ends[k][f[-k:]] == 1), None)
        full[p] = None if k is None or k == len(f) else f[-k:]  # None: only the whole path will do
    name = PurePath(paths[0]).name
    texts = {p: p if kept is None else os.sep.join(kept + (name,)) for p, kept in full.items()}
    short = {p: os.sep.join((kept[0], ELLIPSIS, name)) for p, kept in full.items()
             if kept is not None and len(kept) > 1}
    taken = Counter(short.get(p, t) for p, t in texts.items())
    return {p: short[p] if p in short and taken[short[p]] == 1 else t for p, t in texts.items()}
