"""How the app gets a model file into the registry: download a released checkpoint, or add a file
a person dropped or chose. The only place the app calls the core for these (``sasnet_core.weights.released``,
``sasnet_core.weights.download``, ``ModelRegistry.add``), so the dialogs hold no copy of that logic.

The worker bodies here run off the GUI thread. Each takes ``progress(done, total)`` (bytes; total
may be None) and a ``CancelToken``: a cancel raises ``Cancelled`` at the next progress report, and
the core then leaves nothing half-written.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Callable

from sasnet_core.util import paths
from sasnet_core.util.cancel import CancelToken
from sasnet_core.weights.download import download_released as download
from sasnet_core.weights.registry import ModelRegistry, model_name_from
from sasnet_core.weights.released import DRIVE_FOLDER_URL, RELEASED

Progress = Callable[[int, "int | None"], None]


def released_models() -> dict:
    """key -> ReleasedModel (file name, what it is good for, size, the paper's MAE/MSE)."""
    return dict(RELEASED)


def _reporter(progress: Progress, token: CancelToken) -> Progress:
    def report(done: int, total: int | None) -> None:
        token.raise_if_cancelled()  # the core stops and removes its partial file
        progress(done, total)

    return report


def download_released(key: str, progress: Progress, token: CancelToken, registry=None):
    """Download, verify and register the released model ``key``; the new ModelEntry."""
    registry = registry or ModelRegistry()
    name = key
    taken = registry.get(key)
    target = paths.models_dir() / released_models()[key].file_name
    if taken is not None and taken.path.expanduser().resolve() != target.resolve():
        # The person's own model is called that already: the app picks the next free name where
        # the command line would ask for --name.
        name = model_name_from(key, {e.name for e in registry.entries()})
    return download(key, name=name, registry=registry, progress=_reporter(progress, token))


def add_file(registry, path: str | Path, name: str, progress: Progress, token: CancelToken, *,
             copy: bool = False, make_default: bool = False, replace: bool = False):
    """Validate ``path`` completely, recognise it by its content and register it as ``name``."""
    return registry.add(name, path, copy=copy, make_default=make_default, replace=replace,
                        progress=_reporter(progress, token))


def identity_text(entry) -> str:
    """What the registry recognised the file as, from its content (never from its name)."""
    ident = getattr(entry, "identity", None) or {}
    return str(ident.get("description") or "a SASNet checkpoint")


def is_verified_release(entry) -> bool:
    return (getattr(entry, "identity", None) or {}).get("status") == "verified"


def manual_steps_html(key: str | None = None) -> str:
    """What to do by hand when the download cannot run here, in the app's words (menus and
    dragging, not commands), with the authors' folder as a link."""
    models = released_models()
    file = models[key].file_name if key in models else "SHHA.pth or SHHB.pth"
    return (f"To get it by hand: open <a href=\"{html.escape(DRIVE_FOLDER_URL)}\">the authors' model "
            f"folder</a>, download {file}, then Model \u25b8 Models\u2026 \u25b8 Add file\u2026, "
            "or drag the file onto this window.")
