"""SIGTERM and SIGINT to ``sasnet`` while it works, to its process group (``timeout``, systemd, a job
scheduler, Ctrl-C in a shell) or to the process alone (``kill PID``): every command stops with one
line naming the signal, exit 128 + the signal (130, 143), no traceback, and leaves what the README
promises: training a complete checkpoint after the current step (data-loader processes included),
counting whole result lines, and an existing ``--csv`` file as it was.
"""
from __future__ import annotations

import signal

from hostile import Ctx, media
from hostile.interrupt import printed_a_line, progress_shown, signal_case, stepped

TERM, INT = signal.SIGTERM, signal.SIGINT
IMAGES = 300  # small ones: counting them all takes far longer than reaching the first
TINY_TRAIN = ["--crop-size", "64", "--images-per-step", "2", "--workers", "2", "--steps", "100000",
              "--log-every", "1", "--log-json", "-", "--no-progress"]
OLD_CSV = "path,count\nkept.png,1.0\n"


def _images(ctx: Ctx):
    folder = ctx.tmp / "imgs"
    for i in range(IMAGES):
        media.write_png(folder / f"img_{i:03d}.png", h=192, w=256, seed=i)
    return folder


def _engine(ctx: Ctx) -> list:
    return ["--weights", ctx.weights, "--backend", "torch", "--precision", "fp32"]


def _count(ctx: Ctx) -> list:
    return ["count", _images(ctx), *_engine(ctx), "--batch-size", "1"]


def _whole_lines(ctx: Ctx, result) -> None:
    lines = result.out.splitlines()
    assert result.out.endswith("\n") and 1 <= len(lines) < IMAGES, result.out[-500:]
    for line in lines:
        path, count = line.split("\t")
        assert path.endswith(".png") and float(count) >= 0, line


def _with_old_csv(ctx: Ctx):
    (ctx.tmp / "out.csv").write_text(OLD_CSV)
    return ["--csv", ctx.tmp / "out.csv", "--overwrite"]


def _old_csv_kept(ctx: Ctx, result) -> None:
    assert (ctx.tmp / "out.csv").read_text() == OLD_CSV
    assert not [p for p in ctx.tmp.iterdir() if p.name.endswith(".tmp")]


def _rank(ctx: Ctx) -> list:
    return ["rank", _images(ctx), *_engine(ctx), *_with_old_csv(ctx)]


def _eval(ctx: Ctx) -> list:
    from sasnet_core.training.synthetic import make_blob_dataset

    make_blob_dataset(ctx.tmp / "set", 120, size=(64, 96), split="test", seed=3)
    return ["eval", ctx.tmp / "set", *_engine(ctx), *_with_old_csv(ctx)]


def _train(ctx: Ctx) -> list:
    from sasnet_core.training.synthetic import make_blob_dataset

    make_blob_dataset(ctx.tmp / "blobs", 6, size=(96, 128), seed=1)
    return ["train", ctx.tmp / "blobs", "--out", ctx.tmp / "run", "--width-mult", "0.125",
            "--encoder-weights", "none", "--val-every", "0", *TINY_TRAIN]


def _finetune(ctx: Ctx) -> list:
    from sasnet_core.training.synthetic import make_blob_dataset

    make_blob_dataset(ctx.tmp / "mine", 4, layout="annotations")
    return ["finetune", ctx.weights, ctx.tmp / "mine", "--out", ctx.tmp / "ft.pth", "--holdout", "0",
            *TINY_TRAIN]


def _stopped_model(name: str):
    def check(ctx: Ctx, result) -> None:
        from sasnet_core.weights.checkpoint import load_model

        _, info = load_model(ctx.tmp / name)
        end = [r for r in _json_lines(result.out) if r.get("event") == "end"][-1]
        assert info.metadata["status"] == "stopped" and info.metadata["steps"] == end["step"] >= 1
        assert "Traceback" not in result.err and "DataLoader worker" not in result.err
        assert not [p for p in (ctx.tmp / name).parent.iterdir() if p.name.endswith(".tmp")]

    return check


def _json_lines(text: str) -> list[dict]:
    import json

    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


CASES = [
    signal_case("count-sigterm-to-group", _count, printed_a_line, TERM, check=_whole_lines),
    signal_case("count-sigint-to-group", _count, printed_a_line, INT, check=_whole_lines),
    signal_case("count-sigterm-to-process", _count, printed_a_line, TERM, group=False, check=_whole_lines),
    signal_case("rank-sigterm-to-group", _rank, progress_shown, TERM, check=_old_csv_kept),
    signal_case("rank-sigint-to-group", _rank, progress_shown, INT, check=_old_csv_kept),
    signal_case("eval-sigterm-to-group", _eval, progress_shown, TERM, check=_old_csv_kept),
    signal_case("eval-sigint-to-process", _eval, progress_shown, INT, group=False, check=_old_csv_kept),
    signal_case("train-sigterm-to-group", _train, stepped, TERM, check=_stopped_model("run/last.pth")),
    signal_case("train-sigint-to-group", _train, stepped, INT, check=_stopped_model("run/last.pth")),
    signal_case("train-sigterm-to-process", _train, stepped, TERM, group=False,
                check=_stopped_model("run/last.pth")),
    signal_case("finetune-sigterm-to-group", _finetune, stepped, TERM, check=_stopped_model("ft.pth")),
    signal_case("finetune-sigint-to-group", _finetune, stepped, INT, check=_stopped_model("ft.pth")),
]
