"""``sasnet train`` options and inputs: every numeric option out of range, data sets that are not
there, are empty or have no training split, starting points that do not exist. Refused before
anything runs, naming the option or the path; a valid tiny run is accepted."""
from __future__ import annotations

import torch

from hostile import ACCEPTED, REFUSED, Case, Ctx
from hostile import weights as W
from hostile.cases_checkpoints import TINY


def _train(ctx: Ctx, *extra, data=None):
    data = data if data is not None else W.dataset(ctx.tmp / "data", split="train")
    return ["train", data, "--out", ctx.tmp / "run", *TINY, *extra]


def _option(option: str, value: str):
    """A case: ``option=value`` is a usage error naming both; no run folder is made."""
    def make(ctx):
        return _train(ctx, f"{option}={value}"), [option, value]
    return make


def _no_run(ctx, result) -> None:
    assert not (ctx.tmp / "run").exists(), "a run folder was made for a refused run"


def _data(kind: str):
    def make(ctx):
        data = ctx.tmp / "data"
        if kind == "file":
            data.write_text("not a folder")
        elif kind == "empty":
            data.mkdir()
        elif kind == "images-only":
            W.image(data / "a.png")
        elif kind == "test-only":
            W.dataset(data, split="test")
        return _train(ctx, data=data), [str(data) if kind != "missing" else "data"]
    return make


def _text(path):
    path.write_text("hello world")
    return path


def _damaged_image_in_loader(ctx: Ctx):
    """A training image that cannot be decoded, met in a data loader process: one line naming it,
    not the loader process's traceback."""
    data = W.dataset(ctx.tmp / "data", split="train")
    bad = data / "train_data" / "images" / "IMG_1.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    argv = _train(ctx, data=data)
    argv[argv.index("--workers") + 1] = "1"
    return argv, [str(bad)]


def _completed(ctx, result) -> None:
    from sasnet_core.weights.checkpoint import load_model

    _, info = load_model(ctx.tmp / "run" / "last.pth")
    assert info.metadata["steps"] == 1 and '"status": "completed"' in result.out


_HAS_MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())

BAD_OPTIONS = [
    ("--fold", "9"), ("--fold", "0"), ("--fold", "two"), ("--images-per-step", "0"), ("--images-per-step", "-1"),
    ("--steps", "0"), ("--steps", "-3"), ("--steps", "1.5"), ("--lr", "0"), ("--lr", "-1e-5"), ("--lr", "nan"),
    ("--lr", "inf"), ("--crop-size", "0"), ("--crops", "0"), ("--workers", "-1"), ("--holdout", "1.5"),
    ("--holdout", "-0.2"), ("--sigma", "0"), ("--val-every", "-1"), ("--log-every", "0"), ("--device", "banana"),
    ("--precision", "fp16"), ("--weight-decay", "-1"), ("--lam", "-2"), ("--gamma", "nan"), ("--seed", "-1"),
    ("--max-minutes", "-1"), ("--selection", "best"),
]

CASES = [
    *[Case(f"option{opt}={val}", _option(opt, val), REFUSED, check=_no_run) for opt, val in BAD_OPTIONS],
    Case("crop-size-not-a-multiple-of-k", lambda ctx: (_train(ctx, "--crop-size", "48"), ["--crop-size 48", "k = 32"]),
         REFUSED, check=_no_run),
    Case("resume-and-overwrite", lambda ctx: (_train(ctx, "--resume", "--overwrite"), ["--overwrite", "--resume"]),
         REFUSED),
    Case("data-missing", _data("missing"), REFUSED, check=_no_run),
    Case("data-is-a-file", _data("file"), REFUSED, check=_no_run),
    Case("data-empty-folder", _data("empty"), REFUSED),
    Case("data-images-without-annotations", _data("images-only"), REFUSED),
    Case("data-without-a-train-split", _data("test-only"), REFUSED),
    Case("val-missing", lambda ctx: (_train(ctx, "--val", ctx.tmp / "nope"), [str(ctx.tmp / "nope")]), REFUSED),
    Case("init-missing-file", lambda ctx: ([a for a in _train(ctx, "--init", ctx.tmp / "gone.pth")
                                             if a not in ("--encoder-weights", "none")], [str(ctx.tmp / "gone.pth")]),
         REFUSED),
    Case("init-unknown-name", lambda ctx: ([a for a in _train(ctx, "--init", "ghost")
                                             if a not in ("--encoder-weights", "none")], ["'ghost'"]), REFUSED),
    Case("encoder-weights-missing-file",
         lambda ctx: (_train(ctx, "--encoder-weights", ctx.tmp / "vgg.pth"), [str(ctx.tmp / "vgg.pth")]), REFUSED),
    Case("encoder-weights-not-a-weights-file",
         lambda ctx: (_train(ctx, "--encoder-weights", _text(ctx.tmp / "vgg.pth"), "--width-mult", "1"),
                      [str(ctx.tmp / "vgg.pth")]), REFUSED),
    Case("encoder-weights-for-a-narrow-model",
         lambda ctx: (_train(ctx, "--encoder-weights", _text(ctx.tmp / "vgg.pth")), [str(ctx.tmp / "vgg.pth"),
                                                                                      "width"]), REFUSED),
    Case("device-gpu-index-not-there", lambda ctx: (_train(ctx, "--device", "cuda:99"), ["--device cuda"]), REFUSED),
    Case("device-mps-where-there-is-none" if not _HAS_MPS else "device-mps",
         lambda ctx: (_train(ctx, "--device", "mps"), ["--device mps"]), ACCEPTED if _HAS_MPS else REFUSED),
    Case("damaged-image-read-in-a-loader-process", _damaged_image_in_loader, REFUSED),
    Case("valid-one-step-run", lambda ctx: (_train(ctx), []), ACCEPTED, check=_completed),
    Case("valid-from-a-checkpoint", lambda ctx: ([a for a in _train(ctx, "--init", ctx.weights)
                                                  if a not in ("--encoder-weights", "none")], []), ACCEPTED,
         check=_completed),
]
