"""Stages left in an export folder (``io.staging``): a data set export sweeps only the stages of
stagers that are gone, never a live one's, never a file or a link that merely has a stage's name."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from hostile import ACCEPTED, Case, Ctx

MINE = "a file a person made"
PREFIX = ".sasnet-export-"


def _source(ctx: Ctx) -> Path:
    from sasnet_core.annotations.annotation import Annotation, save_annotation
    from sasnet_core.io.imageio import write_image

    image = ctx.tmp / "src" / "a.jpg"
    image.parent.mkdir(parents=True)
    write_image(image, np.full((30, 40, 3), 90, np.uint8))
    save_annotation(Annotation(str(image), (40, 30), [[5, 6]]), image.with_name("a.jpg.sasnet.json"))
    return image.parent


def _stage(out: Path, pid: int, host: str | None = None) -> Path:
    from sasnet_core.io.atomic import MACHINE_TAG

    stage = out / f"{PREFIX}{host or MACHINE_TAG}-{pid}-abcd1234"
    stage.mkdir(parents=True)
    (stage / "work.txt").write_text(MINE)
    old = 1e9  # long ago: age alone never decides for a stager of this machine
    os.utime(stage, (old, old))
    return stage


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


def _live_and_dead_stagers(ctx: Ctx):
    out = ctx.tmp / "export"
    _stage(out, os.getppid())  # another process that runs: its export is under way
    _stage(out, _dead_pid())
    return ["convert", _source(ctx), "--to", "shanghaitech-dataset", "--out", out], []


def _only_the_live_one_left(ctx: Ctx, result) -> None:
    left = sorted(p.name for p in (ctx.tmp / "export").iterdir() if p.name.startswith(PREFIX))
    assert left == [f"{PREFIX}{_tag()}-{os.getppid()}-abcd1234"], left
    assert (ctx.tmp / "export" / left[0] / "work.txt").read_text() == MINE
    assert (ctx.tmp / "export" / "train_data").is_dir() or (ctx.tmp / "export" / "test_data").is_dir()


def _tag() -> str:
    from sasnet_core.io.atomic import MACHINE_TAG

    return MACHINE_TAG


def _lookalikes(ctx: Ctx):
    """A file and a link to a person's folder, named like a dead stager's stages."""
    out = ctx.tmp / "export"
    out.mkdir()
    dead = _dead_pid()
    (out / f"{PREFIX}{_tag()}-{dead}-file0000").write_text(MINE)
    mine = ctx.tmp / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text(MINE)
    (out / f"{PREFIX}{_tag()}-{dead}-link0000").symlink_to(mine, target_is_directory=True)
    return ["convert", _source(ctx), "--to", "shanghaitech-dataset", "--out", out], []


def _lookalikes_kept(ctx: Ctx, result) -> None:
    out = ctx.tmp / "export"
    assert next(out.glob(f"{PREFIX}*-file0000")).read_text() == MINE
    assert next(out.glob(f"{PREFIX}*-link0000")).is_symlink()
    assert (ctx.tmp / "mine" / "notes.txt").read_text() == MINE


def _other_machine_young(ctx: Ctx):
    """A stage another machine is writing into a shared folder right now (its PID means nothing here)."""
    out = ctx.tmp / "export"
    stage = _stage(out, _dead_pid(), host="ffff" if _tag() != "ffff" else "eeee")
    os.utime(stage)  # just now
    return ["convert", _source(ctx), "--to", "shanghaitech-dataset", "--out", out], []


def _young_foreign_kept(ctx: Ctx, result) -> None:
    assert len(list((ctx.tmp / "export").glob(f"{PREFIX}*"))) == 1


CASES = [
    Case("export-sweeps-dead-stager-keeps-live", _live_and_dead_stagers, expect=ACCEPTED,
         check=_only_the_live_one_left),
    Case("export-keeps-stage-lookalikes", _lookalikes, expect=ACCEPTED, check=_lookalikes_kept),
    Case("export-keeps-other-machines-young-stage", _other_machine_young, expect=ACCEPTED,
         check=_young_foreign_kept),
]
