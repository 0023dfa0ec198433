"""Where SASNet Studio keeps user data: platformdirs folders, never the working directory.

``SASNET_STUDIO_HOME`` overrides all of them (tests and portable installs use it).
"""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "sasnet-studio"


def _root(kind: str) -> Path:
    home = os.environ.get("SASNET_STUDIO_HOME")
    if home:
        if Path(home).exists() and not Path(home).is_dir():  # else every listing is silently empty
            from sasnet_core.errors import SettingsError

            raise SettingsError("SASNET_STUDIO_HOME names a file, not a folder to keep models, "
                                "settings and logs in", home)
        return Path(home) / kind
    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP, appauthor=False))


def data_dir() -> Path:
    """Model registry and fine-tuned models."""
    return _root("data")


def config_dir() -> Path:
    """Settings."""
    return _root("config")


def cache_dir() -> Path:
    return _root("cache")


def models_dir() -> Path:
    return data_dir() / "models"


def log_dir() -> Path:
    """Log files a person can send along with a problem report."""
    return _root("log")
