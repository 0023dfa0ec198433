"""The model registry shared by ``sasnet`` and ``sasnet-gui``: names for checkpoint files.

Stored as JSON in the platformdirs user data folder (``models.json``), written atomically.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from sasnet_core import paths
from sasnet_core.atomic import atomic_write_text
from sasnet_core.errors import CheckpointError, ModelRegistryError

HOW_TO_GET_A_MODEL = (
    "Download the released SASNet weights (SHHA.pth for dense crowds, SHHB.pth for sparse street "
    "scenes) from the authors' repository, github.com/TencentYoutuResearch/CrowdCounting-SASNet "
    "(Google Drive link in its README), then register one: 'sasnet models add shha SHHA.pth --default'. "
    "Or pass a file directly with --weights FILE.pth, or train one with 'sasnet train'."
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class ModelEntry:
    name: str
    path: Path
    kind: str
    added: str
    metadata: dict
    is_default: bool = False


class ModelRegistry:
    def __init__(self, file: str | os.PathLike | None = None):
        self.file = Path(file) if file else paths.data_dir() / "models.json"

    def _read(self) -> dict:
        if not self.file.exists():
            return {"version": 1, "default": None, "models": {}}
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
            if not isinstance(data.get("models"), dict):
                raise ValueError("'models' is not an object")
            return data
        except (ValueError, OSError) as exc:
            raise ModelRegistryError(f"model registry is damaged ({exc}); fix or delete it", self.file) from None

    def _write(self, data: dict) -> None:
        atomic_write_text(self.file, json.dumps(data, indent=2, sort_keys=True))

    def entries(self) -> list[ModelEntry]:
        data = self._read()
        return [
            ModelEntry(name, Path(e["path"]), e.get("kind", "?"), e.get("added", ""), e.get("metadata", {}),
                       name == data.get("default"))
            for name, e in sorted(data["models"].items())
        ]

    def get(self, name: str) -> ModelEntry | None:
        return next((e for e in self.entries() if e.name == name), None)

    def default(self) -> ModelEntry | None:
        return next((e for e in self.entries() if e.is_default), None)

    def add(self, name: str, file: str | os.PathLike, *, copy: bool = False, make_default: bool = False,
            replace: bool = False) -> ModelEntry:
        from sasnet_core.checkpoint import read_metadata

        if not _NAME.match(name):
            raise ModelRegistryError(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-'")
        src = Path(file).expanduser().resolve()
        kind, metadata = read_metadata(src)  # refuses files that are not checkpoints
        data = self._read()
        if name in data["models"] and not replace:
            raise ModelRegistryError(f"a model named {name!r} is registered already (remove it first)")
        if copy:
            dst = paths.models_dir() / f"{name}{src.suffix or '.pth'}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst != src:
                shutil.copy2(src, dst)
            src = dst
        summary = {k: v for k, v in metadata.items() if isinstance(v, (str, int, float, bool, type(None), dict, list))}
        data["models"][name] = {
            "path": str(src), "kind": kind, "metadata": summary,
            "added": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        if make_default or not data.get("default"):
            data["default"] = name
        self._write(data)
        return self.get(name)

    def remove(self, name: str) -> None:
        data = self._read()
        if name not in data["models"]:
            raise ModelRegistryError(self._unknown(name, data))
        del data["models"][name]
        if data.get("default") == name:
            data["default"] = next(iter(sorted(data["models"])), None)
        self._write(data)

    def set_default(self, name: str) -> None:
        data = self._read()
        if name not in data["models"]:
            raise ModelRegistryError(self._unknown(name, data))
        data["default"] = name
        self._write(data)

    @staticmethod
    def _unknown(name: str, data: dict) -> str:
        known = ", ".join(sorted(data["models"])) or "none"
        return f"no registered model named {name!r} (registered: {known})"

    def resolve(self, weights: str | os.PathLike | None) -> Path:
        """A file path for ``weights``: an existing file, a registered name, or None for the default."""
        if weights is None:
            entry = self.default()
            if entry is None:
                raise ModelRegistryError("no model given and none registered. " + HOW_TO_GET_A_MODEL)
            return _existing(entry)
        candidate = Path(weights).expanduser()
        if candidate.is_file():
            return candidate
        data = self._read()
        if str(weights) in data["models"]:
            return _existing(self.get(str(weights)))
        if candidate.suffix or os.sep in str(weights):
            raise CheckpointError("no such checkpoint file", candidate)
        raise ModelRegistryError(self._unknown(str(weights), data) + ". " + HOW_TO_GET_A_MODEL)


def _existing(entry: ModelEntry) -> Path:
    if not entry.path.is_file():
        raise CheckpointError(f"file of registered model {entry.name!r} is gone; "
                              f"'sasnet models remove {entry.name}' or put it back", entry.path)
    return entry.path


def resolve_weights(weights: str | os.PathLike | None) -> Path:
    return ModelRegistry().resolve(weights)
