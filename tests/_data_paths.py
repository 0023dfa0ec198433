"""Where the shared real data lives, and pytest skips for when it does not.

Data stays outside the repository (``../shared/data`` from the repository root); tests that need it
skip with the reason instead of failing on a machine without it.
"""
from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHANGHAITECH_A = DATA / "shanghaitech_a_sample"
STREET_B = DATA / "street_b_layout"
UCF_CC_50 = DATA / "ucf_cc_50"

# Head counts from ../shared/data/README.md (the published ground truth).
SHANGHAITECH_A_COUNTS = {"IMG_1": 1546, "IMG_4": 413, "IMG_51": 569, "IMG_167": 271, "IMG_168": 915}


def need(path: Path) -> Path:
    """Skip the calling test when a shared data folder or file is absent."""
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (tests read real data from ../shared/data)")
    return path
