"""Outputs that cannot be written as asked: a full disk (``/dev/full``), a file where a folder should
be, a folder where a file should be, an existing training run, a models folder that is a file, and
the temp files interrupted saves leave behind. Each is one line naming the path, and nothing that
was there before is changed."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

from hostile import ACCEPTED, REFUSED, Case, Ctx
from hostile import weights as W
from hostile.cases_checkpoints import TINY


def _eval(ctx: Ctx, *extra):
    return ["eval", W.dataset(ctx.tmp / "data"), "--weights", ctx.weights, *extra]


def _blocker(ctx: Ctx):
    path = ctx.tmp / "afile"
    path.write_text("keep me")
    return path


def _blocker_kept(ctx: Ctx, result) -> None:
    assert (ctx.tmp / "afile").read_text() == "keep me"


def _still_a_device(path):
    def check(ctx, result):
        assert stat.S_ISCHR(os.stat(path).st_mode), f"{path} was replaced by a file"
    return check


def _run(ctx: Ctx, steps: int = 1, *extra):
    argv = ["train", W.dataset(ctx.tmp / "data", split="train"), "--out", ctx.tmp / "run", *TINY, *extra]
    argv[argv.index("--steps") + 1] = str(steps)
    return argv


def _existing_run(ctx: Ctx):
    from sasnet_core.cli import main

    with open(os.devnull, "w") as sink:  # the first run's summary is not part of the case
        stdout, sys.stdout = sys.stdout, sink
        try:
            assert main([str(a) for a in _run(ctx)]) == 0
        finally:
            sys.stdout = stdout
    (ctx.tmp / "last.before").write_bytes((ctx.tmp / "run" / "last.pth").read_bytes())


def _last_unchanged(ctx, result) -> None:
    assert (ctx.tmp / "run" / "last.pth").read_bytes() == (ctx.tmp / "last.before").read_bytes()


def _last_replaced(ctx, result) -> None:
    from sasnet_core.weights.checkpoint import load_model

    assert (ctx.tmp / "run" / "last.pth").read_bytes() != (ctx.tmp / "last.before").read_bytes()
    assert load_model(ctx.tmp / "run" / "last.pth")[1].metadata["steps"] == 2


def _over_run(*extra, expect_names=True):
    def make(ctx):
        _existing_run(ctx)
        return _run(ctx, 2, *extra), ([str(ctx.tmp / "run"), "--resume", "--overwrite"] if expect_names else [])
    return make


def _dead_writer_temp(ctx: Ctx):
    """A temp file of the registry as a writer killed mid-save leaves it."""
    from sasnet_core.io.atomic import _HOST

    pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                         text=True, check=True).stdout.strip()
    reg = W.registry_file()
    reg.parent.mkdir(parents=True, exist_ok=True)
    tmp = reg.parent / f".{reg.name}.{_HOST}-{pid}.a1b2c3d4.tmp"
    tmp.write_text('{"half": ')
    return tmp


def _no_temp_left(ctx, result) -> None:
    from sasnet_core.weights.registry import ModelRegistry

    folder = W.registry_file().parent
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")], list(folder.iterdir())
    assert ModelRegistry().get("m") is not None


CASES = [
    Case("eval-csv-on-a-full-disk", lambda ctx: (_eval(ctx, "--csv", "/dev/full"), ["/dev/full", "No space"]),
         REFUSED, check=_still_a_device("/dev/full")),
    Case("eval-csv-to-dev-null", lambda ctx: (_eval(ctx, "--csv", "/dev/null"), []), ACCEPTED,
         check=_still_a_device("/dev/null")),
    Case("eval-csv-inside-a-file", lambda ctx: (_eval(ctx, "--csv", _blocker(ctx) / "x.csv"), [str(ctx.tmp / "afile")]),
         REFUSED, check=_blocker_kept),
    Case("eval-csv-is-a-folder", lambda ctx: (_eval(ctx, "--csv", ctx.tmp), [str(ctx.tmp), "--csv"]), REFUSED),
    Case("count-save-density-inside-a-file",
         lambda ctx: (["count", W.image(ctx.tmp / "img.png"), "--weights", ctx.weights, "--save-density",
                       _blocker(ctx) / "sub"], [str(ctx.tmp / "afile")]), REFUSED, check=_blocker_kept),
    Case("count-save-points-is-a-file",
         lambda ctx: (["count", W.image(ctx.tmp / "img.png"), "--weights", ctx.weights, "--save-points",
                       _blocker(ctx)], [str(ctx.tmp / "afile")]), REFUSED, check=_blocker_kept),
    Case("models-copy-into-a-models-folder-that-is-a-file",
         lambda ctx: (W.registry_file().parent.mkdir(parents=True, exist_ok=True),
                      (W.registry_file().parent / "models").write_text("x"),
                      (["models", "add", "m", ctx.weights, "--copy"], [str(W.registry_file().parent / "models")]))[-1],
         REFUSED),
    Case("models-registry-folder-is-a-file",
         lambda ctx: (W.registry_file().parent.parent.mkdir(parents=True, exist_ok=True),
                      W.registry_file().parent.write_text("x"),
                      (["models", "add", "m", ctx.weights], [str(W.registry_file().parent)]))[-1], REFUSED),
    Case("models-add-removes-a-dead-writers-temp-file",
         lambda ctx: (_dead_writer_temp(ctx), (["models", "add", "m", ctx.weights], []))[-1], ACCEPTED,
         check=_no_temp_left),
    Case("train-out-over-an-existing-run", _over_run(), REFUSED, check=_last_unchanged),
    Case("train-out-over-an-existing-run-overwrite", _over_run("--overwrite", expect_names=False), ACCEPTED,
         check=_last_replaced),
    Case("train-out-is-a-file", lambda ctx: (["train", W.dataset(ctx.tmp / "data", split="train"), "--out",
                                              _blocker(ctx), *TINY], [str(ctx.tmp / "afile")]),
         REFUSED, check=_blocker_kept),
    Case("train-out-inside-a-file", lambda ctx: (["train", W.dataset(ctx.tmp / "data", split="train"), "--out",
                                                  _blocker(ctx) / "run", *TINY], [str(ctx.tmp / "afile")]),
         REFUSED, check=_blocker_kept),
    Case("train-log-json-on-a-full-disk",
         lambda ctx: (_run(ctx, 1, "--log-json", "/dev/full"), ["/dev/full"]), REFUSED,
         check=_still_a_device("/dev/full")),
    Case("train-log-json-inside-a-file",
         lambda ctx: (_run(ctx, 1, "--log-json", _blocker(ctx) / "log.jsonl"), [str(ctx.tmp / "afile")]),
         REFUSED, check=_blocker_kept),
]
