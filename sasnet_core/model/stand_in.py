"""A stand-in for a trained SASNet where the values do not matter but every layer must work.

Speed, memory and device parity (CPU against CUDA, fp32 against bf16, BatchNorm folded into the
convolutions) do not depend on what the network learned, yet they need weights that behave like
trained ones: activations that neither vanish nor explode through 20 convolutions, and BatchNorm
statistics away from the identity, so folding them really changes every kernel. Released weights
cannot be fetched everywhere; this network can be built anywhere, the same for the same seed.
"""
from __future__ import annotations

import torch

from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet


def stand_in_sasnet(seed: int = 0, config: SASNetConfig | None = None) -> SASNet:
    """SASNet (full width and the released layout unless ``config`` says otherwise) in eval mode,
    He-initialised convolutions, BatchNorm means in [-0.1, 0.1) and variances in [0.5, 1.5)."""
    with torch.random.fork_rng(devices=[]):  # the same network for a seed, the caller's RNG untouched
        torch.manual_seed(seed)
        model = SASNet(config or SASNetConfig()).eval()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.Conv2d):
                    torch.nn.init.kaiming_normal_(m.weight)
                elif isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
    return model
