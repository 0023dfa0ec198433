"""What the model takes as input, owned by the model (as torchvision's ``weights.transforms()``):
counting, training crops and int8 calibration all make their tensors here, so none of them can
drift from what the released checkpoints were trained on.

The released code feeds RGB scaled to [0, 1] and normalised with the ImageNet mean and std. After
normalising, 0 is the mean colour: padding with zeros (the bottom and right of a small image, a
crop that does not fit) adds pixels the network sees as plain mean-coloured background.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The mean colour as an RGB uint8 pixel: what masked-out parts of a training image are filled with,
# so they normalise to (about) 0, like padding.
MEAN_RGB8 = np.round(np.array(IMAGENET_MEAN) * 255).astype(np.uint8)

_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def normalise(images: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) RGB uint8 -> (..., 3, H, W) float32, scaled to [0, 1] and ImageNet-normalised.

    One image (H, W, 3) gives (3, H, W); a batch (B, H, W, 3) gives (B, 3, H, W). The result is a
    channels-last view of the pixels (no copy into NCHW order), the layout the convolutions
    prefer; call ``.contiguous()`` where NCHW order is needed."""
    x = torch.from_numpy(np.asarray(images)).movedim(-1, -3).float().div_(255.0)
    return (x - _MEAN) / _STD


def pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``x`` (..., H, W) padded at the bottom and right with 0 (the mean colour once normalised) to
    at least ``height`` x ``width``; unchanged when it is that large already."""
    h, w = x.shape[-2:]
    if h >= height and w >= width:
        return x
    return F.pad(x, (0, max(0, width - w), 0, max(0, height - h)))


def model_input(batch: np.ndarray, block_size: int) -> torch.Tensor:
    """The (B, 3, H, W) float32 input the network takes for a (B, H, W, 3) RGB uint8 batch:
    normalised and padded to at least one whole ``block_size`` patch (the confidence branch scores
    k x k patches and needs one). Every backend counts on it and int8 calibrates on it, so
    quantization sees exactly what counting feeds the model."""
    return pad_to(normalise(batch), block_size, block_size)
