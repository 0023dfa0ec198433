"""The ``sasnet`` command line: one module per subcommand.

Each subcommand module defines ``register(subparsers)``, which adds its parser and sets
``func=run``. Modules keep heavy imports (torch, cv2) inside ``run`` so ``sasnet --help`` is instant.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys

from sasnet_core import __version__
from sasnet_core.io.imageio import max_image_pixels
from sasnet_core.util.cancel import interrupted_by, signals_interrupt
from sasnet_core.util.errors import SASNetError

# Order here is the order in `sasnet --help`.
SUBCOMMANDS = ("count", "rank", "eval", "convert", "train", "finetune", "models", "doctor")


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser that keeps its subcommand groups, so a mistake is reported with the usage
    of the innermost command that read it. ``add_subparsers`` makes subcommands of the parser's
    own class, so ``sasnet models add`` is one too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.subcommand_groups: list = []

    def add_subparsers(self, **kwargs):
        group = super().add_subparsers(**kwargs)
        self.subcommand_groups.append(group)
        return group


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and each subcommand's parser by name: a mistake in a subcommand's
    options is reported with that subcommand's usage, not the top-level one."""
    parser = CommandParser(
        prog="sasnet",
        description="Count people in crowd images and videos with SASNet, convert crowd "
        "annotations, evaluate, train and fine-tune models.",
        epilog="Run 'sasnet COMMAND --help' for the options of one command. "
        "Start with: sasnet models download shha (or sasnet models add NAME FILE.pth), "
        "then sasnet count IMAGES... Problems: sasnet doctor.",
    )

    parser.add_argument("--version", action="version", version=f"sasnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"sasnet_core.cli.{name}_cmd")
        module.register(subparsers)
    return parser, dict(subparsers.choices)


def main(argv: list[str] | None = None) -> int:
    parser, commands = _build()
    # parse_args would report an unknown option with the top-level usage; the subcommand's own
    # parser names the options that command does take.
    args, extras = parser.parse_known_args(argv)
    if not getattr(args, "func", None):
        if extras:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        parser.print_help(sys.stderr)
        return 2
    if extras:
        _command_parser(commands[args.command], args).error(f"unrecognized arguments: {' '.join(extras)}")

    with _warnings_to_stderr(args.command):
        try:
            with signals_interrupt():
                if args.command != "doctor":  # doctor reports a bad setting among the rest
                    _check_settings()
                return int(args.func(args) or 0)
        except SASNetError as exc:
            print(f"sasnet {args.command}: error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            # A full disk, a read-only folder, a permission problem: the person's to fix, one line.
            # OS errors that name no file come from a bug and keep their traceback.
            if exc.filename is None:
                raise
            reason = exc.strerror or type(exc).__name__
            print(f"sasnet {args.command}: error: {exc.filename}: {reason}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:
            # What was written is whole (atomic writes, whole printed lines); the rest was not.
            stop = interrupted_by(exc)
            print(f"sasnet {args.command}: stopped by {stop}; the files it wrote are complete, the work "
                  "left was not done", file=sys.stderr)
            return stop.exit_code


def _check_settings() -> None:
    """Refuse settings from the environment that cannot hold before any work starts, in one line
    naming the variable (an image limit above the decoders' own, ...), not once per file."""
    max_image_pixels()


def _command_parser(parser: argparse.ArgumentParser, args) -> argparse.ArgumentParser:
    """The innermost parser that read ``args``: ``sasnet models add`` reports with its own usage."""
    for group in getattr(parser, "subcommand_groups", ()):
        chosen = getattr(args, group.dest, None)
        if chosen in group.choices:
            return _command_parser(group.choices[chosen], args)
    return parser


@contextlib.contextmanager
def _warnings_to_stderr(command: str):
    """Warnings of the core (a damaged registry entry that was skipped, ...) as one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter(f"sasnet {command}: warning: %(message)s"))
    logger = logging.getLogger("sasnet_core")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
