"""A corpus of malformed inputs, made at test time, run through the real ``sasnet`` entry point.

Each ``cases_*.py`` module beside this file defines ``CASES``: a list of :class:`Case`. A case builds
its inputs in a fresh folder and returns the command line to run; ``tests/test_hostile.py`` runs every
case in-process and holds it to the promise made to users:

- no traceback and no exception other than ``SystemExit`` escapes ``main``;
- the exit status is the one expected (2 for a refused input or option, 1 for a reported skip,
  0 for a valid input that must be accepted);
- a refusal is written to stderr and names the file (``names``: text that must appear in it);
- ``check`` (optional) looks at the outputs, for wrong results and silent acceptances.

A hang is a failure too: every case runs under pytest-timeout.
"""
from __future__ import annotations

import contextlib
import io
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REFUSED, SKIPPED, ACCEPTED = 2, 1, 0


@dataclass
class Ctx:
    """What a case may build on: its own empty folder and a tiny valid checkpoint (shared, read-only)."""

    tmp: Path
    weights: Path
    data: Path  # ../shared/data (may be absent; cases that need it set ``needs_data``)


@dataclass
class Result:
    code: int | None
    out: str
    err: str
    exception: str | None  # the formatted traceback of anything that escaped main, else None


@dataclass
class Case:
    name: str
    # Builds the inputs under ctx.tmp; returns (argv, names): the command line after "sasnet", and the
    # texts the error message must contain (usually the offending file's name or the option).
    make: Callable[[Ctx], tuple[list[str], list[str]]]
    expect: int = REFUSED
    check: Callable[[Ctx, Result], None] | None = None
    needs_data: bool = False
    timeout: float = 60.0
    tags: tuple[str, ...] = field(default_factory=tuple)
    # How to run it instead of in-process: ``run(ctx, argv) -> Result`` (a subprocess that is sent
    # a signal, see ``hostile.interrupt``).
    run: Callable[[Ctx, list], "Result"] | None = None


def run_cli(argv: list[str]) -> Result:
    from sasnet_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    code, exc = None, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse usage errors
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        except BaseException:  # noqa: BLE001 - anything else is exactly what the corpus hunts for
            exc = traceback.format_exc()
    return Result(code, out.getvalue(), err.getvalue(), exc)


def write_input(path: Path, content) -> Path:
    """Write a case's input: bytes as they are, text as UTF-8, anything else as JSON."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    return path


def bad_option_case(command, option: str, value: str, name: str) -> Case:
    """A case that runs ``command(ctx, image, option, value)`` on one small valid image and expects
    a usage error naming the option and the value."""
    def make(ctx: Ctx):
        from hostile import media

        image = media.write_png(ctx.tmp / "a.png")
        return command(ctx, image, option, value), [option, value]

    return Case(name, make, REFUSED)


# Engine choices that cannot run (``sasnet_core.engine.choice``), each with the words its refusal
# must contain: refused before any image is read, in one line.
IMPOSSIBLE_ENGINES = {
    "openvino-fp16": (["--backend", "openvino", "--precision", "fp16"], ["OpenVINO", "fp16"]),
    "torch-int8": (["--backend", "torch", "--precision", "int8"], ["int8", "OpenVINO"]),
    "openvino-on-cuda": (["--device", "cuda", "--backend", "openvino"], ["cuda"]),
}


def _one_line_refusal(ctx: Ctx, result: Result) -> None:
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert result.out == "", result.out


def impossible_engine_cases(command, prefix: str = "") -> list[Case]:
    """One case per engine in ``IMPOSSIBLE_ENGINES``: ``command(ctx, *options)`` on valid inputs
    exits 2 with one line on stderr that names what cannot run, and prints nothing else."""
    def case(name: str, options: list[str], names: list[str]) -> Case:
        return Case(f"{prefix}engine-{name}", lambda ctx: (command(ctx, *options), names), REFUSED,
                    _one_line_refusal)

    return [case(name, options, names) for name, (options, names) in IMPOSSIBLE_ENGINES.items()]
