"""Staged folders (``sasnet_core.io.staging``): built beside the target, installed by one rename,
and the one rule that sweeps abandoned stages: a live stager's stage is never swept, however old;
a dead one's is; an unowned or other machine's stage goes only once old."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from sasnet_core.io import staging
from sasnet_core.io.atomic import MACHINE_TAG

PREFIX = ".stage-"
LONG_AGO = time.time() - 30 * 24 * 3600


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


def _left(folder, name, age_s: float = 0.0):
    stage = folder / name
    stage.mkdir(parents=True)
    (stage / "half.bin").write_bytes(b"half of something")
    t = time.time() - age_s
    os.utime(stage, (t, t))
    return stage


@pytest.fixture
def sleeper():
    """A live process other than this one: a stager at work."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_a_live_stagers_stage_is_never_swept_however_old(tmp_path, sleeper):
    # a fine-tuning run reads its stage for hours: age must not pull it from under the run
    live = _left(tmp_path, f"{PREFIX}{MACHINE_TAG}-{sleeper}-abcdefgh", age_s=30 * 24 * 3600)
    mine = staging.make_stage(tmp_path, PREFIX)
    assert live.is_dir() and (live / "half.bin").is_file() and mine.is_dir()
    assert staging.sweep(tmp_path, PREFIX) == []


def test_a_dead_stagers_stage_is_swept_however_young(tmp_path):
    dead = _left(tmp_path, f"{PREFIX}{MACHINE_TAG}-{_dead_pid()}-abcdefgh")
    legacy = _left(tmp_path, f"{PREFIX}{_dead_pid()}-ijklmnop")  # older versions: PID only
    assert sorted(staging.sweep(tmp_path, PREFIX)) == sorted([dead, legacy])
    assert not dead.exists() and not legacy.exists()


def test_a_stage_made_here_names_this_process_and_survives_the_next_sweep(tmp_path):
    stage = staging.make_stage(tmp_path / "new" / "folder", PREFIX)
    assert stage.name.startswith(f"{PREFIX}{MACHINE_TAG}-{os.getpid()}-")
    assert not staging.abandoned(stage, PREFIX)
    staging.make_stage(tmp_path / "new" / "folder", PREFIX)
    assert stage.is_dir()


@pytest.mark.parametrize("name", [f"{PREFIX}abcdefgh", f"{PREFIX}ffff-1-abcdefgh", f"{PREFIX}eeee-1-abcdefgh"])
def test_an_unowned_or_other_machines_stage_goes_only_once_old(tmp_path, name):
    if name[len(PREFIX):].startswith(MACHINE_TAG):
        pytest.skip("this machine's tag happens to be the foreign one")
    young = _left(tmp_path / "young", name, age_s=60)
    old = _left(tmp_path / "old", name, age_s=staging.UNCLAIMED_AFTER_S + 60)
    assert staging.sweep(young.parent, PREFIX) == [] and young.is_dir()
    assert staging.sweep(old.parent, PREFIX) == [old] and not old.exists()


def test_only_folders_of_the_prefix_are_swept(tmp_path):
    dead = _dead_pid()
    other = _left(tmp_path, f".other-{MACHINE_TAG}-{dead}-abcdefgh")
    file = tmp_path / f"{PREFIX}{MACHINE_TAG}-{dead}-file0000"
    file.write_text("a person's file")
    target = _left(tmp_path / "elsewhere", "kept")
    link = tmp_path / f"{PREFIX}{MACHINE_TAG}-{dead}-link0000"
    link.symlink_to(target, target_is_directory=True)
    assert staging.sweep(tmp_path, PREFIX) == []
    assert other.is_dir() and file.read_text() == "a person's file" and (target / "half.bin").is_file()


def test_staged_installs_by_rename_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "entry"
    with staging.staged(tmp_path, PREFIX) as stage:
        (stage / "model.xml").write_text("whole")
        assert staging.install(stage, target)
    assert (target / "model.xml").read_text() == "whole"
    with pytest.raises(RuntimeError), staging.staged(tmp_path, PREFIX) as stage:
        (stage / "model.xml").write_text("half")
        raise RuntimeError("cut short")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]


def test_install_keeps_the_copy_another_process_installed_first(tmp_path):
    target = tmp_path / "entry"
    target.mkdir()
    (target / "model.xml").write_text("theirs")
    with staging.staged(tmp_path, PREFIX) as stage:
        (stage / "model.xml").write_text("ours")
        assert staging.install(stage, target) is False
    assert (target / "model.xml").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]


def test_install_entries_replaces_only_the_named_entries(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "train").mkdir()
    (out / "train" / "old.jpg").write_text("old")
    (out / "test").mkdir()  # the new set has no test part: the old one goes
    (out / "notes.txt").write_text("a person's notes")
    with staging.staged(out, PREFIX) as stage:
        (stage / "train").mkdir()
        (stage / "train" / "new.jpg").write_text("new")
        staging.install_entries(stage, out, ["train", "test"])
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "train"]
    assert [p.name for p in (out / "train").iterdir()] == ["new.jpg"]
