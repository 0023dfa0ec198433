"""argparse types for every numeric and path option: a bad value is a usage error (exit 2) that
names the option and the value, never a traceback or a silently wrong run later on."""
from __future__ import annotations

import argparse
from pathlib import Path


# --precision: counting and training offer different lists (``vocab.INFERENCE_PRECISIONS`` and
# ``vocab.TRAINING_PRECISIONS``); each help says why, so the difference reads as a rule, not a slip.
INFERENCE_PRECISION_HELP = (
    "auto (default): bf16 where the hardware computes it natively (AMX or AVX512-BF16 CPUs, CUDA "
    "GPUs with bf16), else fp32; fp32 (exact); bf16 (count within 0.5%%); fp16 (GPUs); int8 "
    "(OpenVINO on the CPU, calibrated on a few of the images being counted, the count difference "
    "reported). Training offers auto, fp32 and bf16 instead")
TRAINING_PRECISION_HELP = (
    "auto (default): bf16 autocast + channels_last on CUDA, fp32 on CPU; fp32; bf16. "
    "No fp16: training in fp16 without loss scaling diverges (counting offers it)")


def _number(text: str, kind):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None
    if kind is float and (value != value or value in (float("inf"), float("-inf"))):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _checked(kind, ok, rule: str, name: str):
    """An argparse type: a number of ``kind`` for which ``ok(value)`` holds, else "'TEXT' RULE"."""
    def parse(text: str):
        value = _number(text, kind)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text!r} {rule}")
        return value

    parse.__name__ = name  # argparse names the type in "invalid NAME value" messages
    return parse


# A whole number >= 1 (batch sizes, steps, 'every N frames').
positive_int = _checked(int, lambda v: v >= 1, "must be 1 or more", "positive_int")
# A whole number >= 0 (0 usually means 'off' or 'never').
non_negative_int = _checked(int, lambda v: v >= 0, "must be 0 or more", "non_negative_int")
# A finite number > 0 (seconds, minutes, learning rates).
positive_float = _checked(float, lambda v: v > 0, "must be more than 0", "positive_float")
# A share strictly between 0 and 1 (hold-out and test fractions).
fraction = _checked(float, lambda v: 0 < v < 1, "must be between 0 and 1 (for example 0.2)", "fraction")


def int_range(low: int, high: int):
    """A whole number in [low, high], for example a UCF_CC_50 fold (1-5)."""
    return _checked(int, lambda v: low <= v <= high, f"must be from {low} to {high}", f"int from {low} to {high}")


def existing_dir(text: str) -> Path:
    """A folder that exists (inputs such as data sets)."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {'not a folder' if path.exists() else 'no such folder'}")
    return path


def output_dir(text: str) -> Path:
    """A folder to write into: it may not exist yet, but it must not be a file."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a folder")
    return path


def output_file(text: str) -> Path:
    """A file to write: it may not exist yet, but it must not be a folder."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder, not a file")
    return path


# Images shrunk below this many pixels on their long side hold no countable head, and tiles
# smaller than this are mostly margin (``--max-side``, ``--tile``).
MIN_IMAGE_SIDE = 64


def int_at_least(low: int, allow_zero: bool = False):
    """A whole number >= low, for sizes in pixels that a smaller value would make meaningless
    (``--max-side``: an image shrunk below 64 pixels holds no countable head). ``allow_zero``: 0
    is also taken, where it means "never" (``--tile 0``)."""
    rule = f"must be {low} or more" + (" (or 0 for never)" if allow_zero else "")
    return _checked(int, lambda v: v >= low or (allow_zero and v == 0), rule, f"int of at least {low}")


# A finite number >= 0 (loss weights, weight decay: 0 switches the term off).
non_negative_float = _checked(float, lambda v: v >= 0, "must be 0 or more", "non_negative_float")
# A share from 0 (none) up to but not including 1: a hold-out where 0 means "hold nothing out".
share = _checked(float, lambda v: 0 <= v < 1, "must be from 0 up to (not including) 1, for example 0.2", "share")
