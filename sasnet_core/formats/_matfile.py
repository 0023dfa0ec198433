"""MATLAB .mat reading with errors that name the file (scipy raises many kinds on bad files)."""
from __future__ import annotations

import io
from pathlib import Path

from sasnet_core.formats._common import fail, read_bytes


def load(path: Path) -> dict:
    import scipy.io

    data = read_bytes(path)
    try:
        return scipy.io.loadmat(io.BytesIO(data))
    except NotImplementedError:
        fail(path, "MATLAB v7.3 (HDF5) files are not supported; save with -v7")
    except Exception as exc:  # truncated or corrupt files raise ValueError, OSError, zlib.error...
        fail(path, f"not a readable MATLAB .mat file (truncated or damaged?): {exc}")


def variables(path: Path) -> list[str]:
    import scipy.io

    try:
        return [v[0] for v in scipy.io.whosmat(str(path))]
    except Exception:
        return []


def names(mat: dict) -> str:
    return ", ".join(k for k in mat if not k.startswith("__")) or "nothing"


def save(path: Path, variables_: dict) -> None:
    import scipy.io

    from sasnet_core.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            scipy.io.savemat(fh, variables_, do_compression=True)
