"""Cache entries that cannot lie: the sha256 of every file written, checked before the entry is used.

A cache folder (a converted OpenVINO model, an int8 model with its report) is sealed when it is
written: ``DIGEST_FILE`` beside its files lists each file's size and sha256. A reader checks the
seal before using anything in the folder, so a file changed on disk after it was written
(a bit flipped on a failing disk, a sync tool, a person's edit: a scaled weight keeps the
file's size and OpenVINO reads it without a word) is found and the entry rebuilt, never used.

Hashing is the price: about 0.3 s per 150 MB here (the full model's weights), paid once per
process and model, beside the several seconds the first count of an image takes.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

DIGEST_FILE = "sha256.json"
_CHUNK = 4 << 20


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def seal(folder: str | os.PathLike) -> None:
    """Write the digest of every file in ``folder`` (a cache entry, before it is renamed into place)."""
    folder = Path(folder)
    files = {p.name: {"size": p.stat().st_size, "sha256": file_sha256(p)}
             for p in sorted(folder.iterdir()) if p.is_file() and p.name != DIGEST_FILE}
    (folder / DIGEST_FILE).write_text(json.dumps({"version": 1, "files": files}, indent=1), encoding="utf-8")


def damage(folder: str | os.PathLike) -> str | None:
    """None when every file of the entry ``folder`` is as it was written; else what is wrong, as
    words that follow "the cached ...": "has no digest", "its sasnet.bin was changed after ..."."""
    folder = Path(folder)
    try:
        listed = json.loads((folder / DIGEST_FILE).read_text(encoding="utf-8"))["files"]
    except FileNotFoundError:
        return f"has no {DIGEST_FILE} (written by an older version, or its writer was cut short)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"has a damaged {DIGEST_FILE} ({type(exc).__name__})"
    if not isinstance(listed, dict) or not listed:
        return f"has a damaged {DIGEST_FILE} (it lists no files)"
    for name, want in listed.items():
        path = folder / name
        if not isinstance(want, dict) or Path(name).name != name:
            return f"has a damaged {DIGEST_FILE} (entry {name!r})"
        try:
            if path.stat().st_size != want.get("size"):
                return f"has a {name} whose size changed after it was written"
            if file_sha256(path) != want.get("sha256"):
                return f"has a {name} whose content changed after it was written (sha256 differs)"
        except OSError as exc:
            return f"has a {name} that cannot be read ({exc.strerror or exc})"
    return None
