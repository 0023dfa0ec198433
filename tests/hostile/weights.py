"""Small checkpoint files, valid and damaged, and model registry files, built at test time.

Shared by the checkpoint, registry, output and training cases of the corpus, so each kind of
damage is written once. Every model here is the tiny SASNet (width_mult 0.125), so loading and
counting stay fast.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import torch

FORMAT = "sasnet-studio-checkpoint"


def payload(seed: int = 0) -> dict:
    """Our checkpoint format as a dict, to damage before ``torch.save``."""
    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet

    torch.manual_seed(seed)
    model = SASNet(SASNetConfig(width_mult=0.125))
    return {"format": FORMAT, "version": 1, "state_dict": model.state_dict(),
            "metadata": {"architecture": model.config.to_dict(), "count_scale": 1000.0, "name": "tiny"}}


def save(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def with_arch(path: Path, **fields) -> Path:
    obj = payload()
    obj["metadata"]["architecture"].update(fields)
    return save(path, obj)


def with_metadata(path: Path, metadata) -> Path:
    obj = payload()
    obj["metadata"] = metadata
    return save(path, obj)


def with_weight(path: Path, value: float, key: str = "de_pred3.0.conv.weight") -> Path:
    obj = payload()
    obj["state_dict"][key].view(-1)[0] = value
    return save(path, obj)


def without_key(path: Path, key: str = "density_head2.1.conv.bias") -> Path:
    obj = payload()
    obj["state_dict"].pop(key)
    return save(path, obj)


def wrong_shape(path: Path, key: str = "features1.0.weight") -> Path:
    obj = payload()
    obj["state_dict"][key] = torch.zeros(3, 3, 3, 3)
    return save(path, obj)


def code_running(path: Path, marker: Path) -> Path:
    """A pickle that creates ``marker`` if anything ever unpickles it without weights_only."""
    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    obj = payload()
    obj["metadata"]["note"] = Evil()
    return save(path, obj)


def truncated(path: Path, source: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def bit_flipped(path: Path, source: Path) -> Path:
    """One bit of the largest tensor changed: torch.load alone would load it silently."""
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as zf:
        big = max(zf.infolist(), key=lambda i: i.file_size)
    off = big.header_offset
    start = off + 30 + int.from_bytes(data[off + 26:off + 28], "little") + int.from_bytes(data[off + 28:off + 30], "little")
    data[start + big.file_size // 2] ^= 0x10
    path.write_bytes(bytes(data))
    return path


def registry_file() -> Path:
    from sasnet_core.weights.registry import ModelRegistry

    return ModelRegistry().file


def write_registry(content) -> Path:
    """models.json of this test's SASNET_STUDIO_HOME with ``content`` (JSON value or raw text)."""
    path = registry_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, (bytes, str)):
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    else:
        path.write_text(json.dumps(content))
    return path


def registry_with(weights: Path, default: str = "good", **damaged) -> Path:
    """A registry with one usable entry ``good`` and the ``damaged`` entries as given."""
    models = {"good": {"path": str(weights), "kind": "ours", "added": "", "metadata": {}}}
    models.update(damaged)
    return write_registry({"version": 1, "default": default, "models": models})


def image(path: Path, h: int = 64, w: int = 64) -> Path:
    import numpy as np

    from sasnet_core.io.imageio import write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))
    return path


def dataset(folder: Path, n: int = 2, split: str = "test") -> Path:
    """A tiny ShanghaiTech-layout data set (blob images with their head points)."""
    from sasnet_core.training.synthetic import make_blob_dataset

    make_blob_dataset(folder, n, size=(64, 64), split=split, seed=1)
    return folder
