"""ImageNet initialisation of the encoder from torchvision's VGG16_BN_Weights.IMAGENET1K_V1.

We never download at run time without being asked: the file is taken from the local torch hub
cache (where torchvision itself would store it) or from a path the user gives. With neither, the
error says exactly where to put the file.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from sasnet_core.util.errors import SettingsError, WeightsUnavailableError

# torchvision vgg16_bn.features index ranges of the five stages (the release slices the same way).
_STAGES = ((0, 6), (6, 13), (13, 23), (23, 33), (33, 43))


def imagenet_weights_file() -> tuple[str, Path]:
    """(url, expected cache path) of torchvision's VGG16-bn ImageNet weights."""
    from torchvision.models import VGG16_BN_Weights

    url = VGG16_BN_Weights.IMAGENET1K_V1.url
    return url, Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def find_imagenet_weights(path: str | os.PathLike | None = None) -> Path:
    url, cached = imagenet_weights_file()
    if path not in (None, "imagenet"):
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsUnavailableError("ImageNet encoder weights file not found", p)
        return p
    if cached.is_file():
        return cached
    raise WeightsUnavailableError(
        f"ImageNet weights for the VGG16-bn encoder are not on this machine. Download {url} "
        f"and put it at {cached} (the torch hub cache, where torchvision looks), or pass its path "
        f"(--encoder-weights FILE). Or start from a SASNet checkpoint instead."
    )


def encoder_state_from_vgg(vgg_state: dict) -> dict:
    """Map torchvision ``features.N.*`` keys to SASNet ``featuresK.M.*`` keys."""
    out = {}
    for key, value in vgg_state.items():
        if not key.startswith("features."):
            continue
        _, idx, rest = key.split(".", 2)
        idx = int(idx)
        for stage, (lo, hi) in enumerate(_STAGES, start=1):
            if lo <= idx < hi:
                out[f"features{stage}.{idx - lo}.{rest}"] = value
    return out


def load_imagenet_encoder(model: torch.nn.Module, path: str | os.PathLike | None = "imagenet") -> None:
    file = find_imagenet_weights(path)
    if model.config.width_mult != 1.0:
        raise SettingsError("ImageNet encoder weights fit only the full-width model (width_mult=1.0); "
                            "use --encoder-weights none for a narrower one", file)
    try:
        vgg = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unreadable file is the user's file problem
        # torch's own text is long and sometimes a bare number; one sentence says what matters.
        raise WeightsUnavailableError("cannot read ImageNet encoder weights: not a PyTorch weights file "
                                      "that loads safely (damaged, incomplete or another kind of file)", file) from None
    if not isinstance(vgg, dict):
        raise WeightsUnavailableError("not torchvision VGG16-bn weights: holds no state dict", file)
    state = encoder_state_from_vgg({k: v for k, v in vgg.items() if isinstance(k, str) and isinstance(v, torch.Tensor)})
    expected = {k for k in model.state_dict() if k.startswith("features")}
    missing = sorted(expected - set(state))
    if missing:
        raise WeightsUnavailableError(f"not torchvision VGG16-bn weights: missing {missing[:3]}", file)
    ours = model.state_dict()
    wrong = [k for k in sorted(expected) if state[k].shape != ours[k].shape]
    if wrong:
        raise WeightsUnavailableError(f"not torchvision VGG16-bn weights: {wrong[0]} has shape "
                                      f"{tuple(state[wrong[0]].shape)}, expected {tuple(ours[wrong[0]].shape)}", file)
    bad = [k for k in sorted(expected) if state[k].is_floating_point() and not bool(torch.isfinite(state[k]).all())]
    if bad:
        raise WeightsUnavailableError(f"tensor {bad[0]} holds NaN or infinite values", file)
    model.load_state_dict({k: state[k] for k in expected}, strict=False)
