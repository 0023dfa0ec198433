"""The checkpoints the SASNet authors released, recognised by their content.

SHHA.pth and SHHB.pth are known byte for byte (sha256 and size below), so a file is identified by
hashing it, never by its name: a renamed copy of SHHA.pth is still the released model, and a file
called SHHA.pth with other bytes is not.

What counts as *claiming* to be a released model (then a hash mismatch is reported as "modified"
rather than as just another checkpoint):

* its file name is a released file's name (``SHHA.pth``, ``shhb.pth``; case does not matter), or
* its own metadata names a released model (``name`` is ``SHHA``/``SHHB``/the released title), or
* it is a bare state dict in the authors' layout with exactly a released file's size (both files
  have the same size, so which of the two it claims to be stays open).

Hashing streams the file in 1 MiB chunks and reports progress, so a 156 MB file neither fills
memory nor freezes a window; the registry stores sha256, size and modification time so that a
listing re-hashes a file only when it changed.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sasnet_core.weights.provenance import provenance

REPOSITORY_URL = "https://github.com/TencentYoutuResearch/CrowdCounting-SASNet"
# The Google Drive folder the authors' README links to ("Download ShanghaiTech dataset and
# models"); it holds the data sets too, so a download picks the one file out of its listing.
DRIVE_FOLDER_ID = "17WobgYjekLTq3QIRW3wPyNByq9NJTmZ9"
DRIVE_FOLDER_URL = f"https://drive.google.com/drive/folders/{DRIVE_FOLDER_ID}"
PAPER = "To Choose or to Fuse? Scale Selection for Crowd Counting (Song et al., AAAI 2021)"
CHUNK = 1 << 20

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


@dataclass(frozen=True)
class ReleasedModel:
    key: str  # the name it is registered and downloaded under: "shha"
    file_name: str  # as in the authors' folder: "SHHA.pth"
    sha256: str
    size: int
    dataset: str  # what it was trained and evaluated on
    mae: float  # what the paper reports on that data set's test split
    mse: float
    good_for: str

    @property
    def title(self) -> str:
        return f"SASNet {self.file_name.removesuffix('.pth')} (released by the authors, verified)"

    @property
    def url_variable(self) -> str:
        """Environment variable that points the download elsewhere (a mirror, a test server)."""
        return f"SASNET_RELEASED_URL_{self.key.upper()}"

    def figures(self) -> str:
        return f"{self.dataset}: MAE {self.mae:g} / MSE {self.mse:g} (as reported in the paper)"


RELEASED: dict[str, ReleasedModel] = {
    m.key: m for m in (
        ReleasedModel("shha", "SHHA.pth", "04ff748309a6c7e447fb0974325bf69fc424ebb2cc1ba1e32139cb3322da3b9a",
                      155_720_893, "ShanghaiTech A", 53.59, 88.38, "dense crowds"),
        ReleasedModel("shhb", "SHHB.pth", "72f49648ae05d27ded507f1116982f5c3d579cf1cac854519dc0ebfa02265cf3",
                      155_720_893, "ShanghaiTech B", 6.35, 9.9, "sparse street scenes"),
    )
}

VERIFIED, MODIFIED, OTHER = "verified", "modified", "other"


def manual_steps(key: str | None = None) -> str:
    """How a person gets a released model by hand, in one paragraph."""
    files = RELEASED[key].file_name if key else "SHHA.pth (dense crowds) or SHHB.pth (sparse street scenes)"
    name = key or "shha"
    return (f"To get it by hand: open {DRIVE_FOLDER_URL} (linked from {REPOSITORY_URL}), download {files}, "
            f"then run 'sasnet models add {name} {RELEASED[name].file_name}' or drag the file onto the "
            "app's window.")


def sha256_file(path: str | os.PathLike, progress: Progress | None = None) -> str:
    """sha256 of a file, read in 1 MiB chunks; ``progress(done, total)`` after each chunk (it may
    raise to cancel)."""
    path = Path(path)
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def released_by_hash(sha256: str, size: int | None = None) -> ReleasedModel | None:
    return next((m for m in RELEASED.values() if m.sha256 == sha256 and (size is None or m.size == size)), None)


def claimed_release(path: Path, size: int, kind: str | None, metadata: dict | None) -> tuple[ReleasedModel | None, str]:
    """(which released model the file claims to be, by what): see the module docstring for the
    rule; "" when it claims none. A size-and-layout claim names no single model."""
    for m in RELEASED.values():
        if path.name.lower() == m.file_name.lower():
            return m, "by its file name"
    name = str((metadata or {}).get("name") or "").strip().lower()
    for m in RELEASED.values():
        if name and name in (m.key, m.file_name.lower(), m.title.lower()):
            return m, "by the name in its metadata"
    if kind == "released" and any(size == m.size for m in RELEASED.values()):
        return None, "by its size and layout"
    return None, ""


@dataclass
class Identity:
    """What a checkpoint file is, decided from its bytes and its own metadata."""
    status: str  # VERIFIED, MODIFIED or OTHER
    sha256: str
    size: int
    mtime: float
    description: str
    released: ReleasedModel | None = None

    def to_dict(self) -> dict:
        """The form stored in a registry entry (plain JSON)."""
        out = {"status": self.status, "sha256": self.sha256, "size": self.size, "mtime": self.mtime,
               "description": self.description}
        if self.released is not None:
            out["released"] = self.released.key  # for a modified file: the one it claims to be
        if self.status == VERIFIED:
            m = self.released
            out.update(title=m.title, dataset=m.dataset,
                       paper={"mae": m.mae, "mse": m.mse, "reference": PAPER},
                       source={"repository": REPOSITORY_URL, "drive_folder": DRIVE_FOLDER_URL,
                               "file": m.file_name})
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Identity | None":
        try:
            released = RELEASED.get(data.get("released")) if data.get("released") else None
            return cls(str(data["status"]), str(data["sha256"]), int(data["size"]), float(data["mtime"]),
                       str(data.get("description", "")), released)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None  # a hand-edited or older entry: the file is identified again


def kind_label(kind: str | None, metadata: dict | None = None, status: str | None = None) -> str:
    """What kind of model a file is, in the words every listing uses (``sasnet models list``, the
    Models dialog, the Fine-tune panel). "released" only for a file whose content is a released
    one (``status`` VERIFIED, from ``identify``); a checkpoint merely in the authors' key layout,
    random weights included, is "authors' layout". ``kind`` is the checkpoint reader's ("released"
    for the authors' layout, "ours"), ``metadata`` the file's own ("finetuned" says more than
    "ours"); ``status`` None: not hashed (then nothing is called released)."""
    if status == VERIFIED:
        return "released (authors', verified)"
    if status == MODIFIED:
        return "modified released model"
    if kind == "released":
        return "authors' layout"
    own = (metadata or {}).get("kind")
    return own if isinstance(own, str) and own.strip() else str(kind or "?")


def describe_metadata(kind: str | None, metadata: dict | None) -> str:
    """A checkpoint that is not a released file, described from what it says about itself."""
    meta = metadata or {}
    if kind == "released" and not meta:
        return "SASNet weights in the authors' layout (not one of the released files)"
    return provenance(meta).describe()


def identify(path: str | os.PathLike, *, kind: str | None = None, metadata: dict | None = None,
             progress: Progress | None = None, original_name: str | None = None) -> Identity:
    """Identify a checkpoint file by hashing it. ``kind`` and ``metadata`` are what the checkpoint
    reader found in it ("released"/"ours", its metadata); ``original_name`` is the name the person
    gave the file when it was copied under another (the claim rule reads that name)."""
    path = Path(path)
    stat = path.stat()
    digest = sha256_file(path, progress)
    match = released_by_hash(digest, stat.st_size)
    if match is not None:
        return Identity(VERIFIED, digest, stat.st_size, stat.st_mtime, match.title, match)
    claimed, how = claimed_release(Path(original_name or path.name), stat.st_size, kind, metadata)
    if how:
        which = claimed.file_name if claimed else "SHHA.pth or SHHB.pth"
        own = f"; it says of itself: {describe_metadata(kind, metadata)}" if kind == "ours" else ""
        return Identity(MODIFIED, digest, stat.st_size, stat.st_mtime,
                        f"modified: claims to be the released {which} ({how}) but its content differs "
                        f"(sha256 does not match){own}", claimed)
    return Identity(OTHER, digest, stat.st_size, stat.st_mtime, describe_metadata(kind, metadata))


def recheck(path: str | os.PathLike, stored: dict | None, *, kind: str | None = None,
            metadata: dict | None = None, progress: Progress | None = None) -> Identity | None:
    """The identity of a registered file: the stored one while the file's size and modification
    time are unchanged (no hashing), else the file is hashed again. None if the file is gone."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return None
    known = Identity.from_dict(stored) if isinstance(stored, dict) else None
    if known is not None and known.size == stat.st_size and known.mtime == stat.st_mtime:
        return known
    return identify(path, kind=kind, metadata=metadata, progress=progress)
