"""Staged folders: build something whole in a hidden folder beside where it goes, then rename it
into place, so a reader never sees half of it; and sweep the stages that interrupted stagers left.

A stage is made next to its target (the same file system, so the rename is atomic) and named
``PREFIX + HOST-PID-RANDOM``: who made it is recorded in its name from the instant it exists,
with no window in which a stage without an owner could be swept from under a live stager.

The staleness rule, one for every stage (the converted-model cache, a data set export, the
fine-tuning data), decides whether a stage is abandoned:

* made on this machine by a process that is no longer running: abandoned;
* made on this machine by a process that runs: never swept, however old. A fine-tuning run
  reads its stage for hours, and an age limit would pull its data from under it; a PID reused by
  another process only keeps debris a while longer, which costs disk space, never anyone's work;
* made on another machine (an export into a shared folder), or without an owner in its name
  (made by an older version): abandoned once older than ``UNCLAIMED_AFTER_S``, which no stage of
  another machine's live stager reaches in practice and a live one of an older version rarely.

Where a process's liveness cannot be told (``atomic.process_running`` answers "running"), a stage
is kept: leaving debris is the mistake that loses nothing.
"""
from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

from sasnet_core.io.atomic import MACHINE_TAG, process_running

# A stage without a live owner of this machine is debris once this old.
UNCLAIMED_AFTER_S = 3600.0
# What follows the prefix: "HOST-PID-" (or "PID-", the converted-model cache's names of older
# versions, always of this machine), then mkdtemp's random part, which has no '-'.
_OWNER = re.compile(r"^(?:(?P<host>[0-9a-f]{4})-)?(?P<pid>\d+)-[^-]+$")


def make_stage(folder: str | os.PathLike, prefix: str) -> Path:
    """A new empty stage in ``folder`` (created if missing), named for this process; abandoned
    stages of the same ``prefix`` there are swept first, so they do not pile up."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sweep(folder, prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{MACHINE_TAG}-{os.getpid()}-", dir=folder))


@contextlib.contextmanager
def staged(folder: str | os.PathLike, prefix: str) -> Iterator[Path]:
    """``make_stage`` for the ``with`` block; whatever is left of the stage afterwards (all of it
    on a failure, nothing after ``install``) is removed, however the block ends."""
    stage = make_stage(folder, prefix)
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def install(stage: Path, target: Path) -> bool:
    """Rename the whole ``stage`` into place as ``target`` (which must be absent or an empty
    folder). False when a non-empty ``target`` is already there: another process installed its
    copy first, and the stage is left for its owner to remove."""
    try:
        os.replace(stage, target)
    except OSError:
        if target.is_dir() and any(target.iterdir()):
            return False
        raise
    return True


def install_entries(stage: Path, target: Path, names: Iterable[str]) -> None:
    """Rename each of ``names`` from ``stage`` into ``target``, a folder that holds other things
    too. What stood at those names goes into ``stage/.replaced`` (removed with the stage), and a
    name the stage lacks is removed from ``target``: afterwards ``target`` holds the new set only."""
    old = stage / ".replaced"
    old.mkdir()
    for name in names:
        if (target / name).exists() or (target / name).is_symlink():
            os.replace(target / name, old / name)
        if (stage / name).exists():
            os.replace(stage / name, target / name)


def abandoned(stage: Path, prefix: str, now: float | None = None) -> bool:
    """Whether ``stage`` (named ``prefix`` + owner + random) was abandoned: the rule above."""
    match = _OWNER.match(stage.name[len(prefix):]) if stage.name.startswith(prefix) else None
    if match is not None and match["host"] in (None, MACHINE_TAG):
        return not process_running(int(match["pid"]))
    try:
        age = (time.time() if now is None else now) - stage.lstat().st_mtime
    except OSError:
        return False
    return age > UNCLAIMED_AFTER_S


def sweep(folder: str | os.PathLike, prefix: str) -> list[Path]:
    """Remove the abandoned stages named ``prefix``* in ``folder``; returns them. Only folders
    are touched (a file or a link of that name is someone else's)."""
    removed = []
    try:
        candidates = sorted(Path(folder).glob(f"{glob.escape(prefix)}*"))
    except OSError:
        return removed
    for stage in candidates:
        try:
            if not stage.is_dir() or stage.is_symlink():
                continue
        except OSError:
            continue
        if abandoned(stage, prefix):
            shutil.rmtree(stage, ignore_errors=True)
            if not stage.exists():
                removed.append(stage)
    return removed

