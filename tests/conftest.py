"""Shared test set-up.

Core: every test gets its own SASNET_STUDIO_HOME, so the model registry, settings and caches never
touch the real user folders; Qt always runs offscreen.
"""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_user_folders(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("sasnet_home")
    monkeypatch.setenv("SASNET_STUDIO_HOME", str(home))
    monkeypatch.setenv("SASNET_PROGRESS", "0")
    yield home
