"""Atomic file writes: a crash or a cancel leaves the old file or the new one, never half of one.

A write goes to a temp file beside the target, is fsynced, renamed over the target with
``os.replace`` and the folder is fsynced, so a power cut keeps either name complete. Temp files are
named ``.TARGET.HOST-PID.RANDOM.tmp``: a writer that was killed leaves one behind, and the next write
of the same target removes those whose writer is gone (same machine, process no longer running) or
that are older than ``STALE_AFTER_S`` (another machine on a shared folder, or a recycled PID).

Errors are ``OSError`` naming the target (not the temp file), so the CLI can print one line:
full disk, read-only folder, permission, a file where a folder should be.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import glob
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

from sasnet_core.util.errors import OutputExistsError, OutputWriteError

# A temp file of a live writer on another machine is left alone for this long; a large checkpoint
# on a slow network folder takes well under it to write.
STALE_AFTER_S = 3600.0
# Without a PID in the name (written by an older version) a temp file counts as stale sooner.
STALE_UNNAMED_AFTER_S = 300.0
# Below this much free space a write that was cut short is taken to have met a full disk.
FULL_DISK_BYTES = 4 << 20
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:4]
# The same tag for other names that record their maker (``staging``): this machine, in four hex digits.
MACHINE_TAG = _HOST
# The part of a temp name between ".TARGET." and ".tmp": "HOST-PID.RANDOM", or mkstemp's bare
# RANDOM (8 characters) for temp files of older versions.
_MIDDLE = re.compile(r"^(?:(?P<host>[0-9a-f]{4})-(?P<pid>\d+)\.)?[A-Za-z0-9_]{8}$")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and ``os.replace`` it into place.

    A stream (``is_stream``: ``/dev/null``, ``/dev/stdout``, a FIFO) is written in place: it must
    not be replaced by a file.
    """
    path = Path(path)
    if is_stream(path):
        with _naming(path):
            yield path
        return
    with _naming(path):
        ensure_folder(path.parent)
        remove_stale_temp_files(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _naming(path):
            yield tmp_path
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
            # mkstemp makes 0600 files; give the result the mode a plain open() would (or keep the old one).
            os.chmod(tmp_path, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
            os.replace(tmp_path, path)
            _fsync_folder(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Re-raise OS errors that name no file or name our temp file as errors naming ``path``."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None and not Path(exc.filename).name.startswith(f".{path.name}."):
            raise
        code = exc.errno or _errno_of_short_write(path)
        reason = exc.strerror or os.strerror(code)
        raise type(exc)(code, reason, os.fspath(path)) from exc


def _errno_of_short_write(path: Path) -> int:
    """A write cut short raises an OSError without an errno (numpy's ``save``, for one): on a full
    disk that is ENOSPC, which the person can act on; otherwise an input/output error."""
    try:
        full = shutil.disk_usage(path.parent).free < FULL_DISK_BYTES
    except OSError:
        full = False
    return errno.ENOSPC if full else errno.EIO


def is_stream(path: Path) -> bool:
    """A device, pipe or socket, or anything under ``/dev`` (``/dev/stdout`` redirected to a file
    still names the stream, not a file to replace)."""
    if path.is_absolute() and path.parts[:2] == ("/", "dev"):
        return True
    return path.exists() and not path.is_file() and not path.is_dir()


def check_output_file(path: str | os.PathLike, overwrite: bool = False) -> None:
    """Refuse now what writing ``path`` at the end of a long run would refuse then: it exists
    (without ``overwrite``), a file stands where a folder of its path should be, or nothing can
    be created where it goes (read-only, no permission). Missing folders are fine: the write
    makes them. Counting a whole folder first and then failing to write its table throws the
    run away."""
    path = Path(path)
    if is_stream(path):
        return  # written in place, as atomic_path does
    if path.exists() and not overwrite:
        raise OutputExistsError("already exists; --overwrite replaces it", path)
    # Missing folders are created by the write (``atomic_path``): the nearest one that exists
    # must be a folder that takes new files.
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputWriteError(f"cannot be written: {folder} is a file, not a folder", path)
    try:
        with _naming(path):
            fd, probe = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".tmp",
                                         dir=folder)
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise OutputWriteError(f"cannot be written: {exc.strerror or exc}", path) from None


def keep_aside(path: str | os.PathLike, label: str, move: bool = False) -> Path:
    """Keep a damaged file for a person to look at before it is replaced: copied (or moved) to
    ``NAME.LABEL-TIMESTAMP`` beside it, never over an earlier copy, which may be the only one left
    of someone's work. A file already kept with the same content is not copied again."""
    path = Path(path)
    if not move:
        data = path.read_bytes()
        for earlier in sorted(path.parent.glob(f"{glob.escape(path.name)}.{label}*")):
            with contextlib.suppress(OSError):
                if earlier.is_file() and earlier.read_bytes() == data:
                    return earlier
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    aside, n = path.with_name(f"{path.name}.{label}-{stamp}"), 2
    while aside.exists():
        aside, n = path.with_name(f"{path.name}.{label}-{stamp}-{n}"), n + 1
    if move:
        os.replace(path, aside)
    else:
        shutil.copy2(path, aside)
    return aside


def ensure_folder(folder: str | os.PathLike) -> None:
    """Create ``folder`` and its parents; a file in the way is a NotADirectoryError naming that
    file (mkdir's own error says "File exists" and names the folder it wanted)."""
    folder = Path(folder)
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder", os.fspath(parent))
            break
    folder.mkdir(parents=True, exist_ok=True)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # platforms without directory handles (Windows): rename is as durable as it gets
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename itself has happened
    finally:
        os.close(fd)


def remove_stale_temp_files(path: str | os.PathLike, now: float | None = None) -> list[Path]:
    """Remove temp files that interrupted writes of ``path`` left beside it; returns them.

    Only names of our own pattern for this very target are touched; a temp file whose writer is
    still running on this machine is kept.
    """
    path = Path(path)
    prefix, now = f".{path.name}.", time.time() if now is None else now
    removed = []
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except OSError:
        return removed
    for tmp in candidates:
        match = _MIDDLE.match(tmp.name[len(prefix):-len(".tmp")])
        if not match:
            continue
        try:
            age = now - tmp.lstat().st_mtime
            if not tmp.is_file() or tmp.is_symlink():
                continue
        except OSError:
            continue
        if match["pid"] is not None and match["host"] != _HOST:
            stale = age > STALE_AFTER_S
        else:
            stale = writer_gone(None if match["pid"] is None else int(match["pid"]), age)
        if stale:
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def writer_gone(pid: int | None, age: float) -> bool:
    """Whether a temp file ``age`` seconds old, made by process ``pid`` of this machine
    (None: a name without one, from an older version), was abandoned: its writer is not running,
    or it is older than any write takes (the PID may have been reused)."""
    if pid is None:
        return age > STALE_UNNAMED_AFTER_S
    return not process_running(pid) or age > STALE_AFTER_S


def process_running(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs (its temp files, staging, are in use)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return _windows_process_running(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists but is not ours, or cannot tell: keep its file
    return True


# Windows: os.kill(pid, 0) would end the process there, so the kernel is asked instead.
_STILL_ACTIVE = 259  # GetExitCodeProcess's code for a process that has not exited
_ERROR_ACCESS_DENIED = 5  # OpenProcess on another user's (or a protected) process
_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000


def _windows_process_running(pid: int, kernel32=None) -> bool:
    """Whether ``pid`` runs, from OpenProcess and GetExitCodeProcess; a process that exists but
    cannot be opened, or an answer that cannot be read, counts as running (its files are kept)."""
    import ctypes

    if kernel32 is None:
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handle = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, int(pid))
    if not handle:
        return ctypes.get_last_error() == _ERROR_ACCESS_DENIED
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == _STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_identity(path: str | os.PathLike) -> tuple | None:
    """What tells this very file from another one written at the same name since (device,
    inode, size, modification time in ns); None when there is no file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def remove_written_file(path: str | os.PathLike, identity: tuple | None) -> bool:
    """Remove ``path`` only if it is still the file we wrote (``file_identity`` taken right after
    writing it): one rename out of the name (atomic: a reader sees the whole file or none), a check
    of what was moved, then the unlink. A file written there by anyone since is put back and kept.
    Returns whether the file is gone."""
    path = Path(path)
    if identity is None or file_identity(path) != identity:
        return False
    moved = path.with_name(f".{path.name}.{_HOST}-{os.getpid()}.removing.tmp")
    try:
        os.replace(path, moved)
    except FileNotFoundError:
        return True
    if file_identity(moved) != identity:  # replaced between the check and the rename: keep it
        try:
            os.link(moved, path)  # back, but never over a file that appeared at the name meanwhile
            os.unlink(moved)
        except FileExistsError:  # a third file at the name: that one stays there, this one beside it
            stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
            aside, n = path.with_name(f"{path.name}.kept-{stamp}"), 2
            while aside.exists():
                aside, n = path.with_name(f"{path.name}.kept-{stamp}-{n}"), n + 1
            os.replace(moved, aside)
        except OSError:  # a file system without hard links
            os.replace(moved, path)
        return False
    os.unlink(moved)
    _fsync_folder(path.parent)
    return True


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
