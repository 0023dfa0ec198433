"""Load and save SASNet weights: the authors' released state dicts and our own checkpoint format.

Two formats are detected automatically:

* **released** (SHHA.pth, SHHB.pth): a bare state dict in the layout of the authors' model.py;
  architecture = the default ``SASNetConfig``.
* **ours**: ``{"format": "sasnet-studio-checkpoint", "version": 1, "state_dict": ..., "metadata": {...}}``
  where metadata holds the architecture config, count scale, training data, date, parent model and
  figures. Only plain types, so it loads with ``weights_only=True``.

Every load uses ``torch.load(weights_only=True)``: a checkpoint is data, never code.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sasnet_core.atomic import atomic_path
from sasnet_core.errors import CheckpointError
from sasnet_core.model import SASNet, SASNetConfig

FORMAT = "sasnet-studio-checkpoint"
FORMAT_VERSION = 1


@dataclass
class CheckpointInfo:
    path: Path
    kind: str  # "released" or "ours"
    config: SASNetConfig
    metadata: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.metadata.get("name") or self.path.stem


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, dict, str]:
    """Read a weights file: returns (state_dict, metadata, kind). Raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("no such checkpoint file", path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - the unpickler raises many types on foreign bytes
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"not a PyTorch checkpoint that can be loaded safely ({first})", path) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"not a checkpoint: holds a {type(obj).__name__}, expected a state dict", path)
    if obj.get("format") == FORMAT:
        state, metadata, kind = obj.get("state_dict"), dict(obj.get("metadata") or {}), "ours"
        if not isinstance(state, dict):
            raise CheckpointError("our checkpoint format but 'state_dict' is missing", path)
    else:
        # Released files are a bare state dict; some training scripts wrap it or add "module.".
        state = obj.get("state_dict", obj.get("model", obj))
        metadata, kind = {}, "released"
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("not a checkpoint: no tensors in its state dict", path)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state, metadata, kind


def _check_keys(model: SASNet, state: dict, path: Path) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {', '.join(unexpected[:3])})")
        raise CheckpointError("does not fit SASNet: " + "; ".join(parts), path)
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items() if state[k].shape != v.shape
    ]
    if wrong:
        raise CheckpointError(f"{len(wrong)} tensors have the wrong shape (first: {wrong[0]})", path)


def load_model(
    weights: str | os.PathLike | None,
    device: str | torch.device = "cpu",
    config: SASNetConfig | None = None,
) -> tuple[SASNet, CheckpointInfo]:
    """Build SASNet from a checkpoint path or a registered model name (None = the default model).

    For released checkpoints ``config`` may change the non-structural settings (e.g. selection);
    our checkpoints carry their architecture, which ``config`` overrides only where given.
    """
    from sasnet_core.registry import resolve_weights

    path = resolve_weights(weights)
    state, metadata, kind = load_checkpoint(path)
    arch = SASNetConfig.from_dict(metadata.get("architecture", {})) if kind == "ours" else SASNetConfig()
    if config is not None:
        arch = SASNetConfig(**{**arch.to_dict(), "selection": config.selection})
    model = SASNet(arch)
    _check_keys(model, state, path)
    model.load_state_dict(state, strict=True)
    model.eval().to(device)
    return model, CheckpointInfo(path=path, kind=kind, config=arch, metadata=metadata)


def save_checkpoint(path: str | os.PathLike, model: SASNet, metadata: dict | None = None,
                    extra: dict | None = None) -> Path:
    """Write our checkpoint format atomically (temp file + os.replace): never a half-written model.

    ``extra``: more top-level entries of plain types and tensors (training keeps its optimiser
    state there for --resume); loaders ignore what they do not know.
    """
    path = Path(path)
    meta = dict(metadata or {})
    meta.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    meta["architecture"] = model.config.to_dict()
    meta["count_scale"] = model.config.count_scale
    module = getattr(model, "module", model)  # unwrap DDP
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        payload = {**(extra or {}), "format": FORMAT, "version": FORMAT_VERSION, "state_dict": state, "metadata": meta}
        torch.save(payload, tmp)
    return path


def read_metadata(path: str | os.PathLike) -> tuple[str, dict]:
    """(kind, metadata) of a checkpoint file, for listings; raises CheckpointError."""
    _, metadata, kind = load_checkpoint(path)
    return kind, metadata
