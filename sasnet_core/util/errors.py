"""Typed errors a person can cause. Each message names the file and what is wrong.

The GUI shows any ``SASNetError`` in a dialog and keeps running; the CLI prints it on one line and
exits with status 2. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import os


def kind_of(value) -> str:
    """How a message names the type of a value read from a file ("got a list"), in the words of
    JSON: null, true/false, text, a number, a list, an object; anything else by its Python type."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return {type(None): "null", str: "text", list: "a list", dict: "an object"}.get(
        type(value), f"a {type(value).__name__}")


class SASNetError(Exception):
    """Base class for every error caused by input (files, settings), not by a bug."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = os.fspath(path) if path is not None else None
        self.detail = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class CheckpointError(SASNetError):
    """A weights file is missing, not a checkpoint, or does not fit the model."""


class WeightsUnavailableError(SASNetError):
    """Pretrained weights are needed but cannot be found offline."""


class ImageReadError(SASNetError):
    """An image file cannot be decoded."""


class VideoReadError(SASNetError):
    """A video cannot be opened or decoded."""


class AnnotationFormatError(SASNetError):
    """An annotation file is malformed: the message names the field and the problem."""


class AnnotationVersionError(AnnotationFormatError):
    """An annotation file written by a newer version of the program: this one cannot read it and
    must not write over it (a person's work in a format it does not know)."""


class GroundTruthError(AnnotationFormatError):
    """A data set's ground-truth file of an image is missing or cannot be read. It is never
    changed or moved aside: it is the data set's, not ours."""


class DatasetLayoutError(SASNetError):
    """A folder matches no known data set layout."""


class OutputExistsError(SASNetError, FileExistsError):
    """Writing would replace a file or folder that exists (or another output of the same run)
    and that was not asked for. Also a FileExistsError, so callers that catch that keep working."""


class ModelRegistryError(SASNetError):
    """A registered model name is unknown, or no model is available at all."""


class DeviceUnavailableError(SASNetError, ValueError):
    """A device was asked for (cuda, mps) that this machine does not have."""


class EngineUnavailableError(DeviceUnavailableError):
    """A backend or precision was asked for that cannot run here (OpenVINO not installed, int8
    without OpenVINO, fp16 with OpenVINO)."""


class SettingsError(SASNetError, ValueError):
    """Options that do not fit together or do not fit the model or the run being resumed."""


class OutputWriteError(SASNetError, OSError):
    """An output cannot be written (full disk, read-only folder, no permission, a file where a
    folder should be). The message names the path; what was there before is left as it was."""


class DownloadError(SASNetError):
    """A download failed (offline, blocked, server error, cut short) or did not match the file it
    should be; nothing was registered and no partial file is left where models live."""
