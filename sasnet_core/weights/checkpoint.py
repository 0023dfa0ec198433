"""Load, validate and save SASNet weights: the authors' released state dicts and our own format.

Two formats are detected automatically:

* **released** (SHHA.pth, SHHB.pth): a bare state dict in the layout of the authors' model.py;
  architecture = the default ``SASNetConfig``.
* **ours**: ``{"format": "sasnet-studio-checkpoint", "version": 1, "state_dict": ..., "metadata": {...}}``
  where metadata holds the architecture config, count scale, training data, date, parent model and
  figures. Only plain types, so it loads with ``weights_only=True``.

Every load uses ``torch.load(weights_only=True)``: a checkpoint is data, never code. A file is
validated as a whole (metadata types and ranges, keys, shapes, finite weights) before anything
uses it, so a damaged file is refused when it is registered, not at first use.

This module works on files only; names of registered models are resolved by ``registry``, which
also offers ``load_model`` for a name, a file or the default model. Which file a checkpoint *is*
(the released SHHA.pth / SHHB.pth, recognised by sha256, or a modified copy) is ``released``.
"""
from __future__ import annotations

import datetime as _dt
import errno
import math
import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sasnet_core.io.atomic import atomic_path
from sasnet_core.model.config import SELECTIONS, SASNetConfig
from sasnet_core.model.sasnet import SASNet
from sasnet_core.util.errors import CheckpointError, kind_of

FORMAT = "sasnet-studio-checkpoint"
FORMAT_VERSION = 1
# Architecture ranges a real model can have: k is 32 in the paper, width_mult < 1 only for tiny
# test models. Anything outside is damage, refused before a network is built from it.
MAX_BLOCK_SIZE = 256
MAX_WIDTH_MULT = 4.0
# Metadata entries that listings and provenance read, with the types they must have.
_TEXT_FIELDS = ("name", "parent", "parent_name", "parent_kind", "trained_on", "created", "status")


@dataclass
class CheckpointInfo:
    path: Path
    kind: str  # "released" or "ours"
    config: SASNetConfig
    metadata: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.metadata.get("name") or self.path.stem


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------
def read_checkpoint_file(path: str | os.PathLike) -> object:
    """The object stored in a weights file, loaded safely; any failure is one CheckpointError."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError("is a folder, not a checkpoint file", path)
    if not path.is_file():
        raise CheckpointError("no such checkpoint file", path)
    _check_magic(path)
    _check_zip_integrity(path)
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols on stderr
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EIO, errno.ENOENT):
            raise CheckpointError(f"cannot be read ({exc.strerror})", path) from None
        # torch's reader reports damaged records as EINVAL and the like
        raise CheckpointError("damaged or incomplete checkpoint file (its records cannot be read)", path) from None
    except Exception as exc:  # noqa: BLE001 - the unpickler raises many types on foreign bytes
        raise CheckpointError(_why_unloadable(exc), path) from None


# torch.save writes a zip archive (since 1.6) or, before that, a pickle of protocol 2 or later.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an archive with entries, or an empty one
_PICKLE_PROTO = 0x80  # the PROTO opcode that opens a pickle of protocol 2 to 5


def _check_magic(path: Path) -> None:
    """Refuse a file that is no PyTorch file at all (a video, an image, text) by its first bytes,
    so it is called what it is; the unpickler's refusal of a pickle with foreign objects, which
    sounds like an attack, is kept for files that really are pickles."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"cannot be read ({exc.strerror or exc})", path) from None
    if not head:
        raise CheckpointError("not a PyTorch checkpoint (the file is empty)", path)
    if head.startswith(_ZIP_MAGIC) or (len(head) >= 2 and head[0] == _PICKLE_PROTO and 2 <= head[1] <= 5):
        return
    raise CheckpointError("not a PyTorch checkpoint (a .pth file saved by PyTorch is expected; "
                          "this file is something else)", path)


def _check_zip_integrity(path: Path) -> None:
    """torch.load does not verify the zip checksums, so a flipped bit in a tensor would load as a
    silently different model: check them first (one read of the file)."""
    try:
        if not zipfile.is_zipfile(path):
            return  # legacy (pre-1.6) format or not a checkpoint at all: torch.load decides
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError):
        raise CheckpointError("damaged or incomplete checkpoint file (its archive cannot be read; "
                              "was the download or the save cut short?)", path) from None
    except OSError as exc:
        raise CheckpointError(f"cannot be read ({exc.strerror or exc})", path) from None
    if bad is not None:
        entry = bad.split("/", 1)[-1]  # torch names the archive's root folder after the temp file
        raise CheckpointError(f"damaged checkpoint file: the checksum of its entry {entry!r} does not match "
                              "(the file changed after it was saved)", path)


def _why_unloadable(exc: Exception) -> str:
    """One sentence for a torch.load failure; its own messages are long, and some are a bare
    number (a pickle opcode), which says nothing to a person."""
    text = str(exc)
    if "Weights only load failed" in text or "Unsupported global" in text:
        return ("not a checkpoint that can be loaded safely: it holds objects other than tensors and "
                "plain values (damaged, or made to run code when loaded), so it is refused")
    if "zip archive" in text or "central directory" in text or "archive" in text.lower():
        return "damaged or incomplete checkpoint file (its archive cannot be read)"
    return "not a PyTorch checkpoint (its contents cannot be read)"


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, dict, str]:
    """Read and validate a weights file: returns (state_dict, metadata, kind). Raises CheckpointError.

    Checked here: the container, metadata types and ranges, tensor-only state with text keys and
    finite weights. Fitting the network (keys, shapes) is checked by ``inspect_checkpoint`` and
    ``load_model``.
    """
    path = Path(path)
    obj = read_checkpoint_file(path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"not a checkpoint: holds a {type(obj).__name__}, expected a state dict", path)
    if obj.get("format") == FORMAT:
        version = obj.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CheckpointError(f"field 'version' must be a whole number, got {version!r}", path)
        if version > FORMAT_VERSION:
            raise CheckpointError(f"written by a newer SASNet Studio (format version {version}; this one "
                                  f"reads up to {FORMAT_VERSION})", path)
        state, kind = obj.get("state_dict"), "ours"
        if not isinstance(state, dict):
            raise CheckpointError("our checkpoint format but 'state_dict' is missing", path)
        metadata = obj.get("metadata", {})
        if not isinstance(metadata, dict):
            raise CheckpointError(f"field 'metadata' must be an object, got {kind_of(metadata)}", path)
        metadata = dict(metadata)
        _validate_metadata(metadata, path)
    else:
        # Released files are a bare state dict; some training scripts wrap it or add "module.".
        state = obj.get("state_dict", obj.get("model", obj))
        metadata, kind = {}, "released"
        if not isinstance(state, dict):
            raise CheckpointError("not a checkpoint: no tensors in its state dict", path)
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("not a checkpoint: no tensors in its state dict", path)
    if not all(isinstance(k, str) for k in state):
        raise CheckpointError("not a checkpoint: its state dict has keys that are not names", path)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    _check_finite(state, path)
    return state, metadata, kind


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _validate_metadata(metadata: dict, path: Path) -> None:
    arch = metadata.get("architecture", {})
    if not isinstance(arch, dict):
        raise CheckpointError(f"field 'architecture' must be an object, got {kind_of(arch)}", path)
    architecture_config(arch, path)
    scale = metadata.get("count_scale", 1.0)
    if not _is_number(scale) or scale <= 0:
        raise CheckpointError(f"field 'count_scale' must be a number above 0, got {scale!r}", path)
    for name in _TEXT_FIELDS:
        if metadata.get(name) is not None and not isinstance(metadata[name], str):
            raise CheckpointError(f"field {name!r} must be text, got {kind_of(metadata[name])}", path)
    steps = metadata.get("steps")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 0):
        raise CheckpointError(f"field 'steps' must be a whole number, got {steps!r}", path)


def architecture_config(arch: dict, path: str | os.PathLike) -> SASNetConfig:
    """SASNetConfig from a checkpoint's ``architecture`` entry, every field checked for type and
    range (unknown fields are ignored: a newer writer may add some)."""
    defaults = SASNetConfig()
    k = arch.get("block_size", defaults.block_size)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_BLOCK_SIZE:
        raise CheckpointError(f"field 'architecture.block_size' must be a whole number from 1 to "
                              f"{MAX_BLOCK_SIZE}, got {k!r}", path)
    scale = arch.get("count_scale", defaults.count_scale)
    if not _is_number(scale) or scale <= 0:
        raise CheckpointError(f"field 'architecture.count_scale' must be a number above 0, got {scale!r}", path)
    selection = arch.get("selection", defaults.selection)
    if selection not in SELECTIONS:
        raise CheckpointError(f"field 'architecture.selection' must be one of {', '.join(SELECTIONS)}, "
                              f"got {selection!r}", path)
    width = arch.get("width_mult", defaults.width_mult)
    if not _is_number(width) or not 0 < width <= MAX_WIDTH_MULT:
        raise CheckpointError(f"field 'architecture.width_mult' must be a number above 0 and at most "
                              f"{MAX_WIDTH_MULT:g}, got {width!r}", path)
    return SASNetConfig(block_size=k, count_scale=float(scale), selection=selection, width_mult=float(width))


def _check_finite(state: dict, path: Path) -> None:
    # NaN or infinite weights give NaN counts for every image: refuse them by name.
    for key, tensor in state.items():
        if tensor.is_complex():
            raise CheckpointError(f"tensor {key} holds complex numbers; weights are real", path)
        # a sum is NaN or infinite when any element is (or when finite values overflow it, which
        # the exact check then clears); summing is much faster than an elementwise mask
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor.sum(dtype=torch.float64))) \
                and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"tensor {key} holds NaN or infinite values (a diverged or damaged model)", path)


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
    kinds = [k for k, v in expected.items() if state[k].is_floating_point() != v.is_floating_point()]
    if kinds:
        raise CheckpointError(f"tensor {kinds[0]} has the wrong number type ({state[kinds[0]].dtype})", path)


def _arch_of(metadata: dict, kind: str, path: Path) -> SASNetConfig:
    return architecture_config(metadata.get("architecture", {}), path) if kind == "ours" else SASNetConfig()


def inspect_checkpoint(path: str | os.PathLike) -> CheckpointInfo:
    """Validate a weights file completely (container, metadata, keys, shapes, finite weights)
    without keeping a model: what registering a model checks. Raises CheckpointError."""
    path = Path(path)
    state, metadata, kind = load_checkpoint(path)
    arch = _arch_of(metadata, kind, path)
    with torch.device("meta"):  # shapes only: no memory for the weights
        skeleton = SASNet(arch)
    _check_keys(skeleton, state, path)
    return CheckpointInfo(path=path, kind=kind, config=arch, metadata=metadata)


def load_model(
    weights: str | os.PathLike,
    device: str | torch.device = "cpu",
    config: SASNetConfig | None = None,
) -> tuple[SASNet, CheckpointInfo]:
    """Build SASNet from a checkpoint file. Registered names and the default model:
    ``sasnet_core.weights.registry.load_model``.

    For released checkpoints ``config`` may change the non-structural settings (e.g. selection);
    our checkpoints carry their architecture, which ``config`` overrides only where given.
    """
    path = Path(weights).expanduser()
    state, metadata, kind = load_checkpoint(path)
    arch = _arch_of(metadata, kind, path)
    if config is not None:
        arch = SASNetConfig(**{**arch.to_dict(), "selection": config.selection})
    model = SASNet(arch)
    _check_keys(model, state, path)
    model.load_state_dict(state, strict=True)
    model.eval().to(device)
    return model, CheckpointInfo(path=path, kind=kind, config=arch, metadata=metadata)


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, model: SASNet, metadata: dict | None = None,
                    extra: dict | None = None) -> Path:
    """Write our checkpoint format atomically (temp file + os.replace): never a half-written model.

    ``extra``: more top-level entries of plain types and tensors (training keeps its optimiser
    state there for --resume); loaders ignore what they do not know.
    """
    path = Path(path)
    meta = dict(metadata or {})
    meta.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    module = getattr(model, "module", model)  # unwrap DDP
    meta["architecture"] = module.config.to_dict()
    meta["count_scale"] = module.config.count_scale
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        payload = {**(extra or {}), "format": FORMAT, "version": FORMAT_VERSION, "state_dict": state, "metadata": meta}
        with open(tmp, "wb") as fh:  # a file object, so a full disk is an OSError of ours ...
            try:
                torch.save(payload, fh)
            except RuntimeError as exc:
                # ... which torch's writer reports as "inline_container.cc ... unexpected pos",
                # with the OSError only as its context: raise the OSError (atomic_path names the
                # file; the old file stays as it was).
                cause = _os_error_within(exc)
                if cause is None:
                    raise
                raise cause from None
    return path


def _os_error_within(exc: BaseException) -> OSError | None:
    seen = exc.__cause__ or exc.__context__
    while seen is not None and not isinstance(seen, OSError):
        seen = seen.__cause__ or seen.__context__
    return seen


def read_metadata(path: str | os.PathLike) -> tuple[str, dict]:
    """(kind, metadata) of a checkpoint file, for listings; raises CheckpointError."""
    _, metadata, kind = load_checkpoint(path)
    return kind, metadata
