"""Where a model came from, read from the metadata its checkpoint carries.

Training (``training.loop``) and fine-tuning (``training.finetuning``) write the metadata; the
registry keeps a copy; ``sasnet models``, ``sasnet doctor``, model identification and the app's
Models dialog all describe a model through ``provenance``, so no two places read different keys
and tell the person different things about one file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Provenance:
    name: str | None  # the name the model was given when it was made
    parent: str | None  # the model it started from: its registry name, else its file's stem
    trained_on: str | None  # "12 images (street)", "ucf_cc_50"
    steps: int | None
    mae_before: float | None  # held-out MAE of the parent, where measured
    mae_after: float | None  # held-out MAE of this model
    date: str | None  # "2026-12-06 20:15"

    def parts(self) -> list[str]:
        """The facts that are known, as short phrases."""
        out = []
        if self.trained_on:
            out.append(f"trained on {self.trained_on}")
        if self.parent:
            out.append(f"fine-tuned from {self.parent}")
        if self.steps:
            out.append(f"{self.steps} step{'s' if self.steps != 1 else ''}")
        if self.mae_after is not None:
            before = f"{self.mae_before:.2f} \u2192 " if self.mae_before is not None else ""
            out.append(f"held-out MAE {before}{self.mae_after:.2f}")
        return out

    def describe(self) -> str:
        """One line: the model's name (or "SASNet checkpoint") and what is known of it."""
        parts = self.parts()
        head = self.name or "SASNet checkpoint"
        return head + (f" ({'; '.join(parts)})" if parts else " (no training data recorded)")


def provenance(metadata: dict | None) -> Provenance:
    """What ``metadata`` (a checkpoint's, or the registry's copy) says of the model's origin.
    Values of the wrong type are treated as absent: the metadata may come from any file."""
    m = metadata if isinstance(metadata, dict) else {}
    parent = _text(m.get("parent_name")) or (Path(m["parent"]).stem if _text(m.get("parent")) else None)
    return Provenance(
        name=_text(m.get("name")), parent=parent,
        trained_on=_trained_on(m), steps=_number(m.get("steps"), int),
        mae_before=_number(m.get("val_mae_before"), float),
        mae_after=_number(m.get("val_mae"), float) if m.get("val_mae") is not None
        else _mae_from_figures(m),
        date=(_text(m.get("trained")) or _text(m.get("created")) or "")[:16].replace("T", " ") or None,
    )


def _trained_on(m: dict) -> str | None:
    """"12 images (street; 3 more held out)": the images as the person knows them, in the folders
    they are in (below the data folder: "3 images (street, street/night)")."""
    if _text(m.get("trained_on")):
        return m["trained_on"]
    images = m.get("finetune_images")  # a count (files of earlier versions: a list of paths)
    n = len(images) if isinstance(images, list) else _number(images, int)
    data = _text(m.get("data_folder")) or _text(m.get("data"))
    folder = Path(data).name if data else _names(m.get("data"))
    where = _folders(m.get("image_folders"), folder) or folder
    if n:
        held = _number(m.get("holdout_images"), int)
        notes = [where] if where else []
        notes += [f"{held} more held out"] if held else []
        return f"{n} image{'s' if n != 1 else ''}" + (f" ({'; '.join(notes)})" if notes else "")
    return folder


def _names(value) -> str | None:
    """"ucf_cc_50 + street_b_layout": the folders of a run trained on several data sets."""
    if isinstance(value, list) and value and all(_text(v) for v in value):
        return " + ".join(Path(v).name for v in value)
    return None


def _folders(value, top: str | None) -> str | None:
    """The image folders of a fine-tune below its data folder, as text; "." is the data folder."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        return None
    names = [top or "." if v == "." else (f"{top}/{v}" if top else v) for v in value]
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more folders" if len(names) > 3 else "")


def _mae_from_figures(m: dict) -> float | None:
    figures = m.get("figures") if isinstance(m.get("figures"), dict) else {}
    return _number(figures.get("mae", figures.get("MAE")), float)


def _text(value) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _number(value, kind):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return kind(value)
