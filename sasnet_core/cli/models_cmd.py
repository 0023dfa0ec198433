"""``sasnet models``: the model registry shared with the GUI."""
from __future__ import annotations

import argparse
import json
import sys

from sasnet_core.cli.argtypes import output_dir, positive_float
from sasnet_core.util.errors import SettingsError
from sasnet_core.util.progress import Progress
from sasnet_core.weights.download import download_released
from sasnet_core.weights.download_guard import (
    STALL_MIN_BYTES,
    STALL_WINDOW_S,
    TIMEOUT_S,
)
from sasnet_core.weights.provenance import provenance
from sasnet_core.weights.registry import HOW_TO_GET_A_MODEL, ModelRegistry
from sasnet_core.weights.released import MODIFIED, VERIFIED, Identity, kind_label

# Files smaller than this are hashed without a progress bar: it would flash for a split second.
_BAR_FROM_BYTES = 16 << 20


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "models", help="list, add, remove registered models and choose the default",
        description="Give checkpoint files short names that --weights and the GUI accept. "
        "The registry lives in your user data folder (platformdirs).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  sasnet models download shha\n  sasnet models add shha SHHA.pth --default\n"
        "  sasnet models list\n"
        "  sasnet count crowd.jpg --weights shha",
    )
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="show registered models")
    ls.add_argument("--json", action="store_true", help="one JSON object per model")
    _add_no_progress(ls)
    add = sub.add_parser("add", help="register a checkpoint file under a name")
    add.add_argument("name")
    add.add_argument("file", help="checkpoint file (released SHHA.pth/SHHB.pth or ours)")
    add.add_argument("--copy", action="store_true", help="copy the file into the user models folder")
    add.add_argument("--default", action="store_true", help="make it the default model")
    add.add_argument("--replace", action="store_true", help="replace a model of the same name")
    _add_no_progress(add)
    rm = sub.add_parser(
        "remove", help="forget a model (its file is kept unless --delete-file)",
        description="Forget a registered model. Removing the default model makes the first "
        "remaining usable model (by name) the default, and says which; with none left there is "
        "no default model.")
    rm.add_argument("name")
    rm.add_argument("--delete-file", action="store_true",
                    help="also delete its checkpoint file (files in the user models folder only, "
                    "such as fine-tuned models, unless --outside-models-folder)")
    rm.add_argument("--outside-models-folder", action="store_true",
                    help="with --delete-file: delete the file even where it lies outside the user models folder")
    de = sub.add_parser("default", help="choose the default model")
    de.add_argument("name")
    dl = sub.add_parser(
        "download", help="download a released model (SHHA or SHHB), verify it and register it",
        description="Download the authors' released SHHA.pth (ShanghaiTech A: dense crowds) or SHHB.pth "
        "(ShanghaiTech B: sparse street scenes) from their Google Drive folder (needs the gdown package), "
        "check its sha256, move it into the user models folder and register it, as the default model if "
        "there is none. An interrupted download resumes when run again.")
    dl.add_argument("model", choices=["shha", "shhb"], help="which released model")
    dl.add_argument("--to", type=output_dir, metavar="DIR", help="folder to keep the file in "
                    "(default: the user models folder)")
    dl.add_argument("--name", help="register it under this name (default: shha / shhb)")
    dl.add_argument("--no-default", action="store_true", help="do not make it the default model, "
                    "even when there is none")
    dl.add_argument("--url", help="download from this address instead (a mirror; also "
                    "SASNET_RELEASED_URL_SHHA / _SHHB)")
    dl.add_argument("--timeout", type=positive_float, default=TIMEOUT_S, metavar="S",
                    help="seconds to wait for a connection, or for the next bytes (default: %(default)g)")
    dl.add_argument("--stall-after", type=positive_float, default=STALL_WINDOW_S, metavar="S",
                    help=f"give up when under {STALL_MIN_BYTES // 1024} KiB arrived in the last S seconds "
                    "(default: %(default)g); the part kept resumes on the next run")
    _add_no_progress(dl)
    p.set_defaults(func=run)


def _add_no_progress(p) -> None:
    # Reading or hashing a large checkpoint draws a bar; scripts turn it off like other commands'.
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args) -> int:
    reg = ModelRegistry()
    cmd = args.models_command
    if cmd == "list":
        entries = reg.entries()
        if args.json:
            for e in entries:
                ident = None if e.missing else _identity(reg, e, args.no_progress)
                print(json.dumps({"name": e.name, "path": str(e.path), "kind": e.kind,
                                  "kind_label": kind_label(e.kind, e.metadata, ident.status if ident else None),
                                  "default": e.is_default,
                                  "added": e.added, "missing": e.missing, "metadata": e.metadata,
                                  "identity": ident.to_dict() if ident else None}))
            return 0
        if not entries:
            print(("No usable models registered. " if reg.problems else "No models registered. ") + HOW_TO_GET_A_MODEL)
            return 0
        for e in entries:
            gone = "  [FILE MISSING]" if e.missing else ""
            ident = None if e.missing else _identity(reg, e, args.no_progress)
            # The identity line describes the file (its provenance included); without the file,
            # what the registry recorded of it is all there is.
            extra = "; ".join(provenance(e.metadata).parts()) if ident is None else ""
            # "released" only for a file whose content is a released one (never for the layout)
            kind = kind_label(e.kind, e.metadata, ident.status if ident is not None
                              else (e.identity or {}).get("status"))
            print(f"{'*' if e.is_default else ' '} {e.name:<16} {kind:<8} {e.path}{gone}"
                  + (f"  ({extra})" if extra else ""))
            if ident is not None:
                print(f"    {_identity_line(ident)}")
        return 0
    if cmd == "add":
        with _byte_bar(f"checking {args.file}", min_bytes=_BAR_FROM_BYTES, enabled=not args.no_progress) as bar:
            e = reg.add(args.name, args.file, copy=args.copy, make_default=args.default,
                        replace=args.replace, progress=bar)
        _report_registered(e)
    elif cmd == "download":
        shown = not args.no_progress
        # The bar appears before the connection is made and, off a terminal, writes a line every
        # 10 s: a slow download never looks like a hang.
        with _byte_bar(f"downloading {args.model.upper()}.pth", enabled=shown, heartbeat_s=10.0) as bar, \
                _byte_bar("checking its sha256", min_bytes=_BAR_FROM_BYTES, enabled=shown) as check:
            e = download_released(args.model, to=args.to, name=args.name, default_if_none=not args.no_default,
                                  url=args.url, progress=bar, hash_progress=check, timeout=args.timeout,
                                  stall_window_s=args.stall_after)
        _report_registered(e)
    elif cmd == "remove":
        if args.outside_models_folder and not args.delete_file:
            raise SettingsError("--outside-models-folder only goes with --delete-file")
        was_default = reg.default()
        deleted = reg.remove(args.name, delete_file=args.delete_file,
                             outside_models_dir=args.outside_models_folder)
        message = f"removed {args.name}" + (f" and deleted {deleted}" if deleted else "")
        if was_default is not None and was_default.name == args.name:
            # The registry moves the default on by itself; a person must not find out at the next count.
            now = reg.default()
            message += (f"; the default model is now {now.name}" if now is not None
                        else "; there is no default model now (choose one with 'sasnet models default NAME')")
        print(message)
    elif cmd == "default":
        reg.set_default(args.name)
        print(f"default model: {args.name}")
    return 0


def _identity(reg, entry, no_progress: bool = False):
    """The entry's identity, re-hashing the file only when it changed since it was registered."""
    with _byte_bar(f"checking {entry.path.name}", min_bytes=_BAR_FROM_BYTES, enabled=not no_progress) as bar:
        return reg.identity(entry, progress=bar)


def _identity_line(ident) -> str:
    if ident.status == VERIFIED:
        return f"{ident.description}; {ident.released.figures()}"
    return ident.description


def _report_registered(e) -> None:
    print(f"registered {e.name} -> {e.path}" + (" (default)" if e.is_default else ""))
    ident = Identity.from_dict(e.identity)
    if ident is not None:
        print(f"  {_identity_line(ident)}")
        if ident.status == MODIFIED:
            print(f"sasnet models: warning: {e.path}: {ident.description}", file=sys.stderr)


class _byte_bar:
    """A progress callback ``(done, total)`` in bytes drawn as a bar in MB; the bar appears only
    once a file of at least ``min_bytes`` is being read, so small files print nothing."""

    def __init__(self, desc: str, min_bytes: int = 0, enabled: bool = True, heartbeat_s: float | None = None):
        self.desc, self.min_bytes, self.bar, self.shown = desc, min_bytes, None, 0
        self.enabled, self.heartbeat_s = enabled, heartbeat_s

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if self.bar is not None and done < self.shown * 1e6 - 1e6:  # a second pass over a file
            self.bar.close()
            self.bar, self.shown = None, 0
        if self.bar is None:
            if (total or done) < self.min_bytes:
                return

            self.bar = Progress(None if total is None else max(1, round(total / 1e6)), self.desc, unit="MB",
                                heartbeat_s=self.heartbeat_s, min_interval=0.0)
            self.bar.update(0)  # drawn at once, before the first megabyte
            self.bar.min_interval = 0.1
        mb = round(done / 1e6)
        if mb > self.shown:
            self.bar.update(mb - self.shown)
            self.shown = mb

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
