"""Files, folders and videos -> one ordered list of inputs, the same for ``count``, ``eval`` and the app.

What a person expects when pointing the tools at a folder:

- folders are walked recursively; what a folder holds is in natural order of its path below the
  folder (``IMG_2`` before ``IMG_10``, compared part by part); several arguments keep the order
  they were given in, without repeats;
- hidden files and folders (a leading dot) are skipped, and with them the temporary files of our
  own atomic saves (``.<name>.<random>.tmp``); a hidden file named explicitly is taken;
- anything that cannot be taken is reported as a :class:`Problem` naming its path, never skipped
  without a word: a missing path, a folder that cannot be read, a symbolic link that leads back
  into a folder being walked (not followed forever), a file that is not an image or a video, a
  folder that holds none (for example a folder named ``x.jpg``).

Images and videos are told apart by their suffix (``imageio.IMAGE_SUFFIXES`` / ``VIDEO_SUFFIXES``);
whether the bytes really are an image is for the reader to say.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sasnet_core.io.imageio import is_image, is_video


@dataclass(frozen=True)
class Problem:
    """Something given or found that cannot be counted, and why."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Inputs:
    images: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Each image or video -> its path below the folder it was found in (just its name when it was
    # given as a file), so outputs named after inputs can keep the sub-folders apart.
    relative: dict[Path, Path] = field(default_factory=dict)

    def relative_name(self, path: Path) -> Path:
        return self.relative.get(Path(path), Path(Path(path).name))


def natural_key(path: str | os.PathLike) -> tuple:
    """Sort key: numbers inside names compare as numbers, letters without case, folder by folder."""
    return tuple(tuple((0, int(t), "") if t.isdigit() else (1, 0, t.casefold())
                       for t in re.split(r"(\d+)", part) if t)
                 for part in Path(path).parts)


def is_hidden(name: str) -> bool:
    """Hidden by the Unix convention; also covers the temporary files of our atomic saves."""
    return name.startswith(".")


def collect_inputs(paths, recursive: bool = True, absolute: bool = False,
                   empty_ok: bool = False) -> Inputs:
    """Images, videos and problems from files and folders (see the module docstring).

    ``absolute``: return absolute paths (the app's file list), else paths as given (the CLI prints
    them back as the person typed them). ``empty_ok``: a folder without images or videos is no
    problem (the annotation store lists folders that may hold only annotation files).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found = Inputs()
    seen: set[str] = set()

    def take(p: Path, rel: Path, explicit: bool) -> bool:
        kind = found.images if is_image(p) else found.videos if is_video(p) else None
        if kind is None:
            if explicit:
                found.problems.append(Problem(p, "not an image or video file (by its extension)"))
            return False
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            kind.append(p)
            found.relative[p] = rel
        return True

    for raw in paths:
        p = Path(raw).expanduser()
        if absolute:
            p = p.absolute()
        try:
            st = p.stat()
        except FileNotFoundError:
            found.problems.append(Problem(p, "no such file or folder" if not p.is_symlink()
                                          else "broken symbolic link (its target does not exist)"))
            continue
        except OSError as exc:
            found.problems.append(Problem(p, f"cannot be read ({exc.strerror or exc})"))
            continue
        if stat.S_ISDIR(st.st_mode):
            files: list[Path] = []
            _walk(p, recursive, files, found.problems, ancestors=set())
            taken = [take(f, f.relative_to(p), explicit=False)
                     for f in sorted(files, key=lambda f: natural_key(f.relative_to(p)))]
            unreadable = any(problem.path == p for problem in found.problems)
            if not any(taken) and not empty_ok and not unreadable:
                what = "a folder, not an image or video file; it" if is_image(p) or is_video(p) else "folder"
                found.problems.append(Problem(p, f"{what} holds no images or videos"))
        elif stat.S_ISREG(st.st_mode):
            take(p, Path(p.name), explicit=True)
        else:
            found.problems.append(Problem(p, "not a regular file (a device, pipe or socket)"))
    return found


def _walk(folder: Path, recursive: bool, files: list[Path], problems: list[Problem], ancestors: set) -> None:
    """Append the regular files below ``folder`` to ``files``; report what cannot be walked."""
    try:
        ident = _identity(folder)
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: natural_key(e.name))
    except OSError as exc:
        problems.append(Problem(folder, f"folder cannot be read ({exc.strerror or exc}); its files are not counted"))
        return
    ancestors = ancestors | {ident}
    subfolders = []
    for entry in entries:
        if is_hidden(entry.name):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir():  # follows symbolic links, so a loop is caught below
                subfolders.append(path)
            elif entry.is_file():
                files.append(path)
            elif is_image(path) or is_video(path):  # named like one, but nothing to read
                problems.append(Problem(path, "broken symbolic link (its target does not exist)"
                                        if entry.is_symlink() and not path.exists()
                                        else "not a regular file (a device, pipe or socket)"))
        except OSError as exc:
            problems.append(Problem(path, f"cannot be read ({exc.strerror or exc})"))
    if not recursive:
        return
    for sub in subfolders:
        try:
            ident = _identity(sub)
        except OSError as exc:
            problems.append(Problem(sub, f"folder cannot be read ({exc.strerror or exc})"))
            continue
        if ident in ancestors:
            problems.append(Problem(sub, "symbolic link loop (leads back to a folder that contains it); "
                                         "not followed"))
            continue
        _walk(sub, recursive, files, problems, ancestors)


def _identity(folder: Path) -> tuple[int, int]:
    st = folder.stat()
    return st.st_dev, st.st_ino
