"""The network's configuration and conventions, without torch: what the app, the training options
and checkpoint metadata need to know about SASNet before (or without) building one."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

LEVELS = ("P1", "P2", "P3", "P4", "P5")
SELECTIONS = ("soft", "hard", "average")
# k, the side in pixels of the patches the confidence branch scores (32 in the paper and the
# release): the default of SASNetConfig.block_size. Code with a model at hand reads its config;
# this name is for code that has none (the app's patch overlays, the training options).
PATCH_SIZE = 32


@dataclass(frozen=True)
class SASNetConfig:
    """Architecture and output conventions; stored in our checkpoints as ``architecture``."""

    block_size: int = PATCH_SIZE  # k: side of the patches the confidence branch scores
    count_scale: float = 1000.0  # density targets were multiplied by this in training
    selection: str = "soft"  # soft (paper), hard (argmax), average (ablations of Table 4)
    width_mult: float = 1.0  # < 1 only for tiny test / demo models; 1.0 = released layout

    def __post_init__(self):
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if not isinstance(self.block_size, int) or isinstance(self.block_size, bool) or self.block_size < 1:
            raise ValueError(f"block_size must be a whole number >= 1, got {self.block_size!r}")
        for name in ("width_mult", "count_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a finite number above 0, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SASNetConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
