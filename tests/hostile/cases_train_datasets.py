"""``sasnet train DATASET [DATASET ...]``: several data sets in one run. A folder named twice (also
spelt two ways) is refused, not quietly merged; one missing, empty, without images or without a
training split among good ones is refused by name; ``--fold`` applies to the data sets in folds and
is refused by name where none is; valid runs train on the union of the training images."""
from __future__ import annotations

from hostile import ACCEPTED, REFUSED, Case, Ctx
from hostile import weights as W
from hostile.cases_checkpoints import TINY


def _good(ctx: Ctx, name: str = "a", n: int = 2):
    return W.dataset(ctx.tmp / name, n=n, split="train")


def _train(ctx: Ctx, *data, extra=()):
    return ["train", *data, "--out", ctx.tmp / "run", *TINY, *extra]


def _no_run(ctx, result) -> None:
    assert not (ctx.tmp / "run").exists(), "a run folder was made for a refused run"


def _twice(spelling: str):
    def make(ctx):
        a = _good(ctx)
        again = {"same": a, "trailing-slash": f"{a}/", "dot-dot": a.parent / ".." / a.parent.name / "a",
                 "symlink": ctx.tmp / "link"}[spelling]
        if spelling == "symlink":
            again.symlink_to(a, target_is_directory=True)
        return _train(ctx, a, _good(ctx, "b"), again), [str(a), "named twice", "name each data set once"]
    return make


def _one_bad(kind: str):
    def make(ctx):
        bad = ctx.tmp / "bad"
        if kind == "empty":
            bad.mkdir()
        elif kind == "no-images":  # the layout's folders, nothing in them
            (bad / "train_data" / "images").mkdir(parents=True)
            (bad / "train_data" / "ground-truth").mkdir()
        elif kind == "test-only":
            W.dataset(bad, split="test")
        names = [str(bad) if kind != "missing" else "bad", "no such folder" if kind == "missing" else ""]
        return _train(ctx, _good(ctx), bad), [n for n in names if n]
    return make


def _fold_where_none_is_in_folds(ctx: Ctx):
    a = _good(ctx)
    return _train(ctx, a, _good(ctx, "b"), extra=("--fold", "1")), [str(a), "--fold"]


def _union(n_images: int, data_sets: int):
    def check(ctx, result) -> None:
        from sasnet_core.weights.checkpoint import load_model

        _, info = load_model(ctx.tmp / "run" / "last.pth")
        assert info.metadata["train_images"] == n_images, info.metadata["train_images"]
        assert isinstance(info.metadata["data"], list) and len(info.metadata["data"]) == data_sets
        assert '"status": "completed"' in result.out
    return check


def _ucf_with_fold_and_another(ctx: Ctx):
    """--fold splits UCF_CC_50 and leaves the ShanghaiTech-layout set beside it alone."""
    val = W.dataset(ctx.tmp / "v")  # a small validation set: the case is about what trains
    return _train(ctx, ctx.data / "ucf_cc_50", _good(ctx, n=3), extra=("--fold", "1", "--val", val)), []


CASES = [
    *[Case(f"the-same-folder-twice-{s}", _twice(s), REFUSED, check=_no_run)
      for s in ("same", "trailing-slash", "dot-dot", "symlink")],
    *[Case(f"one-of-several-{kind}", _one_bad(kind), REFUSED) for kind in ("missing", "empty", "no-images", "test-only")],
    Case("fold-where-no-data-set-is-in-folds", _fold_where_none_is_in_folds, REFUSED),
    Case("two-data-sets-train-on-the-union", lambda ctx: (_train(ctx, _good(ctx), _good(ctx, "b", n=3)), []),
         ACCEPTED, check=_union(5, 2)),
    Case("ucf-with-fold-beside-a-set-without-folds", _ucf_with_fold_and_another, ACCEPTED,
         check=_union(40 + 3, 2), needs_data=True, timeout=120),
]
