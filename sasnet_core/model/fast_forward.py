"""Inference-only transforms of a trained SASNet: the same function, less time and memory.

* ``fold_batchnorm``: every BatchNorm folded into the convolution before it (eval statistics), so
  one pass over memory does what took two.
* ``lean_forward``: the model's forward without materialising the two largest concatenations at
  full resolution. A convolution is linear, so conv(cat(a, b)) = conv_a(a) + conv_b(b) with the
  weight split along its input channels. The decoder's skip concatenation and the density head's
  4C-channel multi-branch output are never built; each branch is added into the result and freed.
  At full resolution this is the difference between about 2.3 kB and 1.3 kB of activations per
  input pixel in fp32, which decides how large a tile fits the memory budget.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from sasnet_core.util.cancel import checkpoint
from sasnet_core.model.sasnet import BasicConv2d, SASNet, SASNetOutput


def fold_batchnorm(model: SASNet, inplace: bool = False) -> SASNet:
    """``model`` (or a copy) in eval mode with BatchNorm folded into the convolutions."""
    model = (model if inplace else copy.deepcopy(model)).eval()
    for stage in (model.features1, model.features2, model.features3, model.features4, model.features5):
        for i, layer in enumerate(stage):
            if isinstance(layer, torch.nn.BatchNorm2d) and isinstance(stage[i - 1], torch.nn.Conv2d):
                stage[i - 1] = fuse_conv_bn_eval(stage[i - 1], layer)
                stage[i] = torch.nn.Identity()
    for module in model.modules():
        if isinstance(module, BasicConv2d) and isinstance(module.bn, torch.nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = torch.nn.Identity()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _split_conv(conv: torch.nn.Conv2d, parts: list[torch.Tensor]) -> torch.Tensor:
    """conv(cat(parts, 1)) computed part by part (parts may be freed by the caller as we go)."""
    out, start = None, 0
    for i, part in enumerate(parts):
        checkpoint()  # a full-resolution part can take a second on a large image
        c = part.shape[1]
        w = conv.weight[:, start : start + c]
        start += c
        y = F.conv2d(part, w, conv.bias if i == 0 else None, padding=conv.padding)
        out = y if out is None else out.add_(y)
    return out


def _decoder_stage(stage, skip: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
    up = F.interpolate(coarse, size=skip.shape[-2:], mode="bilinear", align_corners=True)
    x = F.relu_(_split_conv(stage[0].conv, [skip, up]))
    del up
    return stage[1](x)


def _density_head(head, x: torch.Tensor) -> torch.Tensor:
    mbm, final = head[0], head[1].conv
    c = x.shape[1]
    w, out = final.weight, None
    branches = (
        lambda: mbm.branch1x1_1(mbm.branch1x1(x)),
        lambda: mbm.branch3x3_2(mbm.branch3x3_1(x)),
        lambda: mbm.branch3x3dbl_2(mbm.branch3x3dbl_1(x)),
        lambda: x,
    )
    for i, branch in enumerate(branches):
        checkpoint()
        y = F.conv2d(branch(), w[:, i * c : (i + 1) * c], final.bias if i == 0 else None)
        out = y if out is None else out.add_(y)
    return F.relu_(out)


def lean_forward(model: SASNet, x: torch.Tensor) -> SASNetOutput:
    """Same outputs as ``model(x)`` for an eval-mode model; peak memory about half."""
    k = model.config.block_size
    h, w = x.shape[-2:]
    feats = model.decode(x, merge=_decoder_stage)
    logits = model.confidence_logits(feats, (h // k, w // k))
    confidence = model.level_weights(logits)
    weights = F.interpolate(confidence, size=(h, w), mode="nearest")
    levels = torch.empty((x.shape[0], 5, h, w), dtype=feats[0].dtype, device=x.device)
    # Coarse levels first, so the full-resolution P1 features are freed right after their head.
    for i in (5, 4, 3, 2, 1):
        d = _density_head(getattr(model, f"density_head{i}"), feats[i - 1])
        levels[:, i - 1 : i] = F.interpolate(d, size=(h, w), mode="nearest")
        feats[i - 1] = None
    density = (levels * weights).sum(1, keepdim=True)
    return SASNetOutput(density, levels, logits, confidence)
