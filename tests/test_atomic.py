"""Atomic writes: the old file or the new one, never half of one, with ordinary permissions."""
from __future__ import annotations

import os
import stat

import pytest

from sasnet_core.io.atomic import atomic_path, atomic_write_text


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-save")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_new_files_get_umask_permissions_and_old_files_keep_theirs(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "new.txt", "x")
        assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644
        (tmp_path / "kept.txt").write_text("y")
        os.chmod(tmp_path / "kept.txt", 0o640)
        atomic_write_text(tmp_path / "kept.txt", "z")
        assert stat.S_IMODE((tmp_path / "kept.txt").stat().st_mode) == 0o640
    finally:
        os.umask(old)


# ---------------------------------------------------------------------------------------------
# leftovers of interrupted writes
# ---------------------------------------------------------------------------------------------
def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # exited and reaped: no process has this id now (reuse within the test is remote)


def _temp_name(target: str, host: str, pid: int, rand: str = "abcd1234") -> str:
    return f".{target}.{host}-{pid}.{rand}.tmp"


def test_the_next_write_removes_temp_files_of_dead_writers_of_that_target_only(tmp_path):
    from sasnet_core.io.atomic import _HOST

    dead, alive = _dead_pid(), os.getppid()
    left = tmp_path / _temp_name("a.json", _HOST, dead)
    running = tmp_path / _temp_name("a.json", _HOST, alive)
    other_target = tmp_path / _temp_name("b.json", _HOST, dead)
    longer_name = tmp_path / _temp_name("a.json.bak", _HOST, dead)
    not_ours = tmp_path / ".a.json.notes.tmp"
    for p in (left, running, other_target, longer_name, not_ours):
        p.write_text("half")
    atomic_write_text(tmp_path / "a.json", "new")
    assert (tmp_path / "a.json").read_text() == "new"
    assert not left.exists()
    assert running.exists() and other_target.exists() and longer_name.exists() and not_ours.exists()


def test_temp_files_without_a_live_writer_on_this_machine_go_by_age(tmp_path):
    import time

    from sasnet_core.io.atomic import (
        STALE_AFTER_S,
        STALE_UNNAMED_AFTER_S,
        remove_stale_temp_files,
    )

    target = tmp_path / "m.pth"
    old_style_new = tmp_path / ".m.pth.k2j3h4g5.tmp"  # mkstemp name of an older version, just written
    old_style_old = tmp_path / ".m.pth.z9y8x7w6.tmp"
    other_host_new = tmp_path / _temp_name("m.pth", "ffff" if _host() != "ffff" else "eeee", 1)
    other_host_old = tmp_path / _temp_name("m.pth", "ffff" if _host() != "ffff" else "eeee", 2)
    for p in (old_style_new, old_style_old, other_host_new, other_host_old):
        p.write_text("half")
    now = time.time()
    os.utime(old_style_old, (now - STALE_UNNAMED_AFTER_S - 5,) * 2)
    os.utime(other_host_old, (now - STALE_AFTER_S - 5,) * 2)
    removed = remove_stale_temp_files(target, now=now)
    assert sorted(removed) == sorted([old_style_old, other_host_old])
    assert old_style_new.exists() and other_host_new.exists()


def _host() -> str:
    from sasnet_core.io.atomic import _HOST

    return _HOST


def test_temp_names_carry_the_writer_so_a_later_write_can_tell(tmp_path):
    from sasnet_core.io.atomic import _HOST

    with atomic_path(tmp_path / "x.bin") as tmp:
        assert tmp.name.startswith(f".x.bin.{_HOST}-{os.getpid()}.") and tmp.name.endswith(".tmp")
        tmp.write_bytes(b"1")


def test_kill_9_during_saves_leaves_a_whole_file_and_the_next_save_cleans_up(tmp_path):
    """A writer killed mid-save leaves the old version and one temp file, which the next save of
    that file removes: kills never pile temp files up."""
    import signal
    import subprocess
    import sys

    target = tmp_path / "big.bin"
    atomic_write_text(target, "A" * 1_000_000)
    code = ("import sys\nfrom sasnet_core.io.atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    with open(tmp, 'w') as fh:\n"
            "        fh.write('B' * 500000); fh.flush(); print('half', flush=True); sys.stdin.readline()\n")
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "half"  # the temp file is half written now
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert target.read_text() == "A" * 1_000_000
        assert len([p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]) == 1  # this kill's only
    atomic_write_text(target, "C")
    assert [p.name for p in tmp_path.iterdir()] == ["big.bin"] and target.read_text() == "C"


def test_a_device_target_is_written_in_place_not_replaced(tmp_path):
    atomic_write_text("/dev/null", "discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_an_os_error_naming_the_target():
    with pytest.raises(OSError) as err:
        atomic_write_text("/dev/full", "x" * 100_000)
    assert err.value.filename == "/dev/full" and "No space" in err.value.strerror
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_write_cut_short_without_an_errno_on_a_full_disk_says_so(tmp_path, monkeypatch):
    import errno
    import shutil
    from collections import namedtuple

    import numpy as np

    path = tmp_path / "density.npy"
    with pytest.raises(OSError) as err:  # numpy's save reports a short write with no errno at all
        with atomic_path(path) as tmp:
            np.save(tmp, np.zeros(4))
            monkeypatch.setattr(shutil, "disk_usage", lambda p: namedtuple("U", "total used free")(1, 1, 0))
            raise OSError("4 requested and 0 written")
    assert err.value.errno == errno.ENOSPC and err.value.strerror == "No space left on device"
    assert err.value.filename == str(path) and not path.exists()

    monkeypatch.undo()  # with room left, the same error stays an input/output error
    with pytest.raises(OSError) as err:
        with atomic_path(path):
            raise OSError("4 requested and 0 written")
    assert err.value.errno == errno.EIO


def test_a_file_where_a_folder_should_be_is_named(tmp_path):
    (tmp_path / "afile").write_text("keep")
    with pytest.raises(NotADirectoryError) as err:
        atomic_write_text(tmp_path / "afile" / "sub" / "x.json", "{}")
    assert err.value.filename == str(tmp_path / "afile")
    assert (tmp_path / "afile").read_text() == "keep"


def test_errors_inside_the_write_name_the_target_not_the_temp_file(tmp_path):
    import errno

    path = tmp_path / "out.json"
    atomic_write_text(path, "old")
    with pytest.raises(OSError) as err:
        with atomic_path(path):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert err.value.filename == str(path) and err.value.errno == errno.ENOSPC
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    import sasnet_core.io.atomic as atomic

    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        return real(fd)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    atomic_write_text(tmp_path / "f.txt", "x")
    assert synced == [False, True]  # the file's data, then the folder entry that names it


# ---------------------------------------------------------------------------------------------
# the CLI's one line for problems of the file system; bugs keep their traceback
# ---------------------------------------------------------------------------------------------
def _failing_command(monkeypatch, exc):
    import sasnet_core.cli.models_cmd as models_cmd

    def run(args):
        raise exc

    monkeypatch.setattr(models_cmd, "run", run)


@pytest.mark.parametrize("exc", [
    OSError(28, "No space left on device", "/data/out.csv"),
    PermissionError(13, "Permission denied", "/data/ro/out.csv"),
    IsADirectoryError(21, "Is a directory", "/data/out.csv"),
])
def test_os_errors_with_a_file_become_one_line_and_exit_2(monkeypatch, capsys, exc):
    from sasnet_core.cli import main

    _failing_command(monkeypatch, exc)
    assert main(["models", "list"]) == 2
    err = capsys.readouterr().err
    assert err == f"sasnet models: error: {exc.filename}: {exc.strerror}\n"


@pytest.mark.parametrize("exc", [OSError("something without a file"), ValueError("a bug"), KeyError("bug")])
def test_bugs_keep_their_traceback(monkeypatch, exc):
    from sasnet_core.cli import main

    _failing_command(monkeypatch, exc)
    with pytest.raises(type(exc)):
        main(["models", "list"])


def test_dev_stdout_redirected_to_a_file_is_written_in_place_not_replaced(capfd):
    from sasnet_core.io.atomic import check_output_file

    check_output_file("/dev/stdout")  # stdout is a file under capfd: not "already exists"
    atomic_write_text("/dev/stdout", "path,count\n")
    assert capfd.readouterr().out == "path,count\n"
    assert os.path.islink("/dev/stdout")


def test_remove_written_file_removes_only_the_file_we_wrote(tmp_path):
    import time

    from sasnet_core.io.atomic import (
        atomic_write_text,
        file_identity,
        remove_written_file,
    )

    target = tmp_path / "a.jpg.sasnet.json"
    atomic_write_text(target, "ours")
    ours = file_identity(target)
    assert remove_written_file(target, ours) and not target.exists()
    assert list(tmp_path.iterdir()) == []  # no temp file left either
    assert remove_written_file(target, ours) is False  # nothing there: nothing to do
    assert remove_written_file(target, None) is False

    atomic_write_text(target, "ours")
    ours = file_identity(target)
    time.sleep(0.01)
    atomic_write_text(target, "theirs")  # written at the same name since: another file
    assert remove_written_file(target, ours) is False
    assert target.read_text() == "theirs" and [p.name for p in tmp_path.iterdir()] == [target.name]


class _FakeKernel32:
    """OpenProcess / GetExitCodeProcess / CloseHandle as Windows answers them for one process."""

    def __init__(self, exists: bool, exit_code: int = 259, readable: bool = True):
        self.exists, self.exit_code, self.readable, self.closed = exists, exit_code, readable, []

    def OpenProcess(self, access, inherit, pid):  # noqa: N802 (the Windows API's name)
        return 1234 if self.exists else 0

    def GetExitCodeProcess(self, handle, code_ref):  # noqa: N802
        if not self.readable:
            return 0
        code_ref._obj.value = self.exit_code
        return 1

    def CloseHandle(self, handle):  # noqa: N802
        self.closed.append(handle)


@pytest.mark.parametrize("kernel, last_error, running", [
    (_FakeKernel32(exists=True), 0, True),                    # still active
    (_FakeKernel32(exists=True, exit_code=0), 0, False),      # exited, handle still held somewhere
    (_FakeKernel32(exists=False), 87, False),                 # ERROR_INVALID_PARAMETER: no such process
    (_FakeKernel32(exists=False), 5, True),                   # ERROR_ACCESS_DENIED: exists, not ours
    (_FakeKernel32(exists=True, readable=False), 0, True),    # cannot tell: keep its files
])
def test_a_process_on_windows_is_asked_of_the_kernel_not_signalled(monkeypatch, kernel, last_error, running):
    import ctypes

    from sasnet_core.io import atomic

    monkeypatch.setattr(ctypes, "get_last_error", lambda: last_error, raising=False)  # Windows only
    assert atomic._windows_process_running(4321, kernel32=kernel) is running
    assert kernel.closed == ([1234] if kernel.exists else [])
