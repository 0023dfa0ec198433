"""``sasnet models``: the model registry shared with the GUI."""
from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "models", help="list, add, remove registered models and choose the default",
        description="Give checkpoint files short names that --weights and the GUI accept. "
        "The registry lives in your user data folder (platformdirs).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  sasnet models add shha SHHA.pth --default\n  sasnet models list\n"
        "  sasnet count crowd.jpg --weights shha",
    )
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="show registered models")
    ls.add_argument("--json", action="store_true", help="one JSON object per model")
    add = sub.add_parser("add", help="register a checkpoint file under a name")
    add.add_argument("name")
    add.add_argument("file", help="checkpoint file (released SHHA.pth/SHHB.pth or ours)")
    add.add_argument("--copy", action="store_true", help="copy the file into the user models folder")
    add.add_argument("--default", action="store_true", help="make it the default model")
    add.add_argument("--replace", action="store_true", help="replace a model of the same name")
    rm = sub.add_parser("remove", help="forget a model (its file is kept unless --delete-file)")
    rm.add_argument("name")
    rm.add_argument("--delete-file", action="store_true",
                    help="also delete its checkpoint file (files in the user models folder only, "
                    "such as fine-tuned models, unless --outside-models-folder)")
    rm.add_argument("--outside-models-folder", action="store_true",
                    help="with --delete-file: delete the file even where it lies outside the user models folder")
    de = sub.add_parser("default", help="choose the default model")
    de.add_argument("name")
    p.set_defaults(func=run)


def run(args) -> int:
    from sasnet_core.errors import SettingsError
    from sasnet_core.registry import HOW_TO_GET_A_MODEL, ModelRegistry

    reg = ModelRegistry()
    cmd = args.models_command
    if cmd == "list":
        entries = reg.entries()
        if args.json:
            for e in entries:
                print(json.dumps({"name": e.name, "path": str(e.path), "kind": e.kind, "default": e.is_default,
                                  "added": e.added, "missing": e.missing, "metadata": e.metadata}))
            return 0
        if not entries:
            print(("No usable models registered. " if reg.problems else "No models registered. ") + HOW_TO_GET_A_MODEL)
            return 0
        for e in entries:
            meta = e.metadata
            extra = ", ".join(f"{k}={meta[k]}" for k in ("parent", "trained_on", "steps") if meta.get(k))
            gone = "  [FILE MISSING]" if e.missing else ""
            print(f"{'*' if e.is_default else ' '} {e.name:<16} {e.kind:<8} {e.path}{gone}"
                  + (f"  ({extra})" if extra else ""))
        return 0
    if cmd == "add":
        e = reg.add(args.name, args.file, copy=args.copy, make_default=args.default, replace=args.replace)
        print(f"registered {e.name} -> {e.path}" + (" (default)" if e.is_default else ""))
    elif cmd == "remove":
        if args.outside_models_folder and not args.delete_file:
            raise SettingsError("--outside-models-folder only goes with --delete-file")
        deleted = reg.remove(args.name, delete_file=args.delete_file,
                             outside_models_dir=args.outside_models_folder)
        print(f"removed {args.name}" + (f" and deleted {deleted}" if deleted else ""))
    elif cmd == "default":
        reg.set_default(args.name)
        print(f"default model: {args.name}")
    return 0
