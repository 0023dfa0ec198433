"""Where SASNet Studio keeps user data: platformdirs folders, never the working directory.

``SASNET_STUDIO_HOME`` overrides all of them (tests and portable installs use it).
"""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from sasnet_core.util.errors import SettingsError

APP = "sasnet-studio"


def _root(kind: str) -> Path:
    home = os.environ.get("SASNET_STUDIO_HOME")
    if home:
        there = Path(home)
        while not there.exists() and there != there.parent:
            there = there.parent
        if not there.is_dir():  # a file on its way: else every listing is silently empty

            raise SettingsError(f"SASNET_STUDIO_HOME cannot be a folder: {there} is a file; it should "
                                "name a folder to keep models, settings and logs in", home)
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
