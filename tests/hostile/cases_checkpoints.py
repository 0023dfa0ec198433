"""Damaged checkpoint files through every command that reads one: ``sasnet models add`` (validated
when registered), ``count --weights``, ``eval --weights``, ``train --init`` and ``train --resume``.
Each must be refused with one line naming the file (and the field, where one is at fault)."""
from __future__ import annotations

from pathlib import Path

from hostile import ACCEPTED, REFUSED, Case, Ctx
from hostile import weights as W

# tiny-model options that keep a training case to one quick step
TINY = ["--width-mult", "0.125", "--encoder-weights", "none", "--crop-size", "32", "--images-per-step", "1",
        "--crops", "1", "--workers", "0", "--no-progress", "--steps", "1", "--val-every", "0"]


def _through(route: str, build, *fields: str):
    """A case: the checkpoint ``build(ctx, path)`` writes, read by ``route``; refused naming it."""
    def make(ctx: Ctx):
        bad = build(ctx, ctx.tmp / "bad.pth")
        if route == "add":
            argv = ["models", "add", "bad", bad]
        elif route == "count":
            argv = ["count", W.image(ctx.tmp / "img.png"), "--weights", bad]
        elif route == "eval":
            argv = ["eval", W.dataset(ctx.tmp / "data"), "--weights", bad]
        elif route == "init":
            argv = ["train", W.dataset(ctx.tmp / "data", split="train"), "--out", ctx.tmp / "run",
                    "--init", bad, *TINY]
            argv.remove("--encoder-weights"), argv.remove("none")  # --init excludes them
        else:  # resume: the damaged file is the run's last.pth
            run = ctx.tmp / "run"
            run.mkdir(exist_ok=True)
            argv = ["train", W.dataset(ctx.tmp / "data", split="train"), "--out", run, "--resume", *TINY]
            bad = Path(bad).replace(run / "last.pth")
        return argv, [str(bad), *fields]

    return make


def _nothing_registered(ctx: Ctx, result) -> None:
    from sasnet_core.weights.registry import ModelRegistry

    assert ModelRegistry().get("bad") is None, "a damaged checkpoint was registered"


def _no_code_ran(ctx: Ctx, result) -> None:
    assert not (ctx.tmp / "PWNED").exists(), "unpickling the checkpoint ran code"


def _bytes(content: bytes):
    def build(ctx, path):
        path.write_bytes(content)
        return path
    return build


def _good(ctx, path):
    return W.save(path, W.payload())


def _arch(**fields):
    return lambda ctx, path: W.with_arch(path, **fields)


def _meta(value):
    return lambda ctx, path: W.with_metadata(path, value)


def _weight(value):
    return lambda ctx, path: W.with_weight(path, value)


def _top(key, value):
    def build(ctx, path):
        obj = W.payload()
        obj[key] = value
        return W.save(path, obj)
    return build


def _train_state(**fields):
    """A last.pth whose ``train_state`` has ``fields`` changed (None: left out)."""
    def build(ctx, path):
        import torch

        state = {"step": 1, "epoch": 0, "batch_in_epoch": 1, "elapsed_s": 1.0, "optimizer": {"state": {},
                 "param_groups": []}, "best": {"mae": None}, "torch_rng": torch.get_rng_state()}
        state.update(fields)
        return W.save(path, {**W.payload(), "train_state": {k: v for k, v in state.items() if v is not None}})
    return build


def _truncated(ctx, path):
    return W.truncated(path, _good(ctx, ctx.tmp / "whole.pth"))


def _flipped(ctx, path):
    return W.bit_flipped(path, _good(ctx, ctx.tmp / "whole.pth"))


def _evil(ctx, path):
    return W.code_running(path, ctx.tmp / "PWNED")


def _folder(ctx, path):
    path.mkdir()
    return path


def _registered(ctx: Ctx, result) -> None:
    from sasnet_core.weights.registry import ModelRegistry

    entry = ModelRegistry().get("bad")
    assert entry is not None and entry.kind == "ours" and entry.is_default


def _case(name, route, build, *fields, check=None):
    return Case(name, _through(route, build, *fields), REFUSED,
                check=check or (_nothing_registered if route == "add" else None))


CASES = [
    # containers that are not (whole) checkpoints
    _case("empty-file-count", "count", _bytes(b"")),
    _case("text-file-count", "count", _bytes(b"hello world")),  # torch's own message: "101"
    _case("text-file-add", "add", _bytes(b"hello world\n")),
    _case("zeros-eval", "eval", _bytes(b"\x00" * 4096)),
    _case("zip-header-only-add", "add", _bytes(b"PK\x03\x04" + b"\x00" * 60)),
    _case("truncated-add", "add", _truncated),
    _case("truncated-count", "count", _truncated),
    _case("truncated-resume", "resume", _truncated),
    _case("bit-flipped-tensor-add", "add", _flipped, "checksum"),
    _case("bit-flipped-tensor-eval", "eval", _flipped, "checksum"),
    _case("folder-as-weights-count", "count", _folder, "folder"),
    _case("tensor-not-dict-add", "add", lambda ctx, p: W.save(p, W.payload()["state_dict"]["features1.0.bias"])),
    _case("no-tensors-count", "count", lambda ctx, p: W.save(p, {"weights": [1, 2, 3]})),
    _case("int-keys-add", "add", lambda ctx, p: W.save(p, {1: W.payload()["state_dict"]["features1.0.bias"]})),
    # code in the pickle: refused by every route, and it never runs
    _case("pickled-code-add", "add", _evil, check=lambda c, r: (_no_code_ran(c, r), _nothing_registered(c, r))),
    _case("pickled-code-count", "count", _evil, check=_no_code_ran),
    _case("pickled-code-eval", "eval", _evil, check=_no_code_ran),
    _case("pickled-code-init", "init", _evil, check=_no_code_ran),
    _case("pickled-code-resume", "resume", _evil, check=_no_code_ran),
    # weights
    _case("nan-weight-add", "add", _weight(float("nan")), "de_pred3.0.conv.weight", "NaN"),
    _case("inf-weight-count", "count", _weight(float("inf")), "de_pred3.0.conv.weight"),
    _case("minus-inf-weight-init", "init", _weight(float("-inf")), "de_pred3.0.conv.weight"),
    _case("missing-key-add", "add", lambda ctx, p: W.without_key(p), "density_head2.1.conv.bias"),
    _case("wrong-shape-add", "add", lambda ctx, p: W.wrong_shape(p), "features1.0.weight"),
    _case("wrong-shape-eval", "eval", lambda ctx, p: W.wrong_shape(p), "features1.0.weight"),
    # metadata and architecture fields of the wrong type or range
    _case("selection-unknown-count", "count", _arch(selection="best"), "architecture.selection"),
    _case("selection-unknown-add", "add", _arch(selection="maximum"), "architecture.selection"),
    _case("block-size-text-eval", "eval", _arch(block_size="32"), "architecture.block_size"),
    _case("block-size-huge-add", "add", _arch(block_size=10 ** 12), "architecture.block_size"),
    _case("count-scale-zero-count", "count", _arch(count_scale=0), "architecture.count_scale"),
    _case("count-scale-top-zero-add", "add", lambda ctx, p: W.save(p, {**W.payload(), "metadata": {
        **W.payload()["metadata"], "count_scale": 0}}), "count_scale"),
    _case("width-negative-add", "add", _arch(width_mult=-1.0), "architecture.width_mult"),
    _case("architecture-list-count", "count", _meta({"architecture": [32, 1000.0]}), "architecture"),
    _case("metadata-list-count", "count", _meta([["name", "x"]]), "metadata"),
    _case("metadata-text-init", "init", _meta("trained on Tuesday"), "metadata"),
    _case("name-a-list-add", "add", _meta({**W.payload()["metadata"], "name": ["a"]}), "'name'"),
    _case("version-from-the-future-count", "count", _top("version", 7), "newer"),
    _case("version-text-add", "add", _top("version", "1"), "version"),
    _case("state-dict-missing-add", "add", _top("state_dict", None), "state_dict"),
    # a run's last.pth whose training state is missing or damaged
    _case("resume-from-a-model-only-file", "resume", _good, "optimiser state"),
    _case("resume-step-is-text", "resume", _train_state(step="six"), "training state"),
    _case("resume-optimizer-missing", "resume", _train_state(optimizer=None), "training state"),
    _case("resume-rng-damaged", "resume", _train_state(torch_rng=[1.5, 2.5]), "random number state"),
    _case("resume-best-mae-text", "resume", _train_state(best={"mae": "low"}), "best validation"),
    # a valid file is accepted, and registered with its kind
    Case("valid-tiny-add", lambda ctx: (["models", "add", "bad", _good(ctx, ctx.tmp / "ok.pth")], []),
         ACCEPTED, check=_registered),
]
