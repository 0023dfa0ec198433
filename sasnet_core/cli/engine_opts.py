"""The counting engine's options (device, backend, precision, downscaling, tiling, batching) and
the one place a command turns them into a ``Predictor``: the same options and the same first line
wherever a command counts images (``count``, ``eval``, ``rank``)."""
from __future__ import annotations

import sys

from sasnet_core.cli import argtypes
from sasnet_core.cli.argtypes import MIN_IMAGE_SIDE as MIN_SIDE
from sasnet_core.engine.choice import (
    DEFAULT_BACKEND,
    DEFAULT_DEVICE,
    DEFAULT_PRECISION,
    batch_size_help,
    default_batch_size,
)
from sasnet_core.util import vocab

BACKEND_HELP = ("auto (default): OpenVINO on the CPU when it is installed, else torch; torch on GPUs. "
                "torch; openvino (CPU only)")


def add_engine_options(p, *, batching: bool = True) -> None:
    p.add_argument("--device", default=str(DEFAULT_DEVICE), type=vocab.device_arg,
                   help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--backend", default=str(DEFAULT_BACKEND), choices=vocab.choices(vocab.BACKENDS),
                   help=BACKEND_HELP)
    p.add_argument("--precision", default=str(DEFAULT_PRECISION),
                   choices=vocab.choices(vocab.INFERENCE_PRECISIONS),
                   help=argtypes.INFERENCE_PRECISION_HELP)
    p.add_argument("--max-side", type=argtypes.int_at_least(MIN_SIDE), metavar="N",
                   help=f"downscale images whose long side exceeds N pixels before counting, N >= "
                        f"{MIN_SIDE}: faster and smaller, but heads shrink with the image and the "
                        "count can change a lot (a density model counts at the scale it learnt); "
                        "points and density maps stay in the original image's pixels")
    p.add_argument("--tile", type=argtypes.int_at_least(MIN_SIDE, allow_zero=True), metavar="N",
                   help=f"split images into N x N tiles, N >= {MIN_SIDE} "
                        "(default: only when memory requires; 0 = never)")
    if batching:
        p.add_argument("--batch-size", type=argtypes.positive_int, default=None, metavar="B",
                       help="images/frames of one size per forward pass (default, by device: "
                            f"{batch_size_help()}; on a CPU a larger batch is no faster and "
                            "multiplies the memory)")


def predictor_from_args(args, command: str, **kwargs):
    """The Predictor the options ask for; says on stderr which engine counts (and why, when the
    request could not be met as asked)."""
    # deferred: torch; `sasnet --help` needs none
    from sasnet_core.engine.inference import Predictor

    predictor = Predictor.from_weights(
        args.weights, device=args.device, backend=args.backend, precision=args.precision,
        max_side=args.max_side, tile=args.tile, **kwargs)
    engine = predictor.engine
    if engine.note:
        print(f"sasnet {command}: note: {engine.note}", file=sys.stderr)
    asked = "" if args.precision != "auto" else " (auto: what this hardware computes natively)"
    print(f"sasnet {command}: counting with {engine.describe()} on {predictor.device.type}{asked}",
          file=sys.stderr)
    if predictor.int8_report is not None:
        print(f"sasnet {command}: {predictor.int8_report.describe()}", file=sys.stderr)
    return predictor


def batch_size_from_args(args, predictor) -> int:
    """--batch-size, or the default for the device the predictor counts on."""
    return args.batch_size or default_batch_size(predictor.device)
