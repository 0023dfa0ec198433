"""Which layout a folder is, and ``open_dataset`` to read it."""
from __future__ import annotations

import inspect
from pathlib import Path

from sasnet_core.datasets import layouts, tool_files
from sasnet_core.datasets.ground_truth import apply_corrections
from sasnet_core.util.errors import DatasetLayoutError

# name: (what we look for, test, reader). Checked in this order; the first match wins.
LAYOUTS = {
    "shanghaitech": ("train_data/ or test_data/ with images/ + ground-truth/GT_*.mat",
                     lambda r: any((r / d / "ground-truth").is_dir() for d in layouts.SHANGHAITECH_SPLITS),
                     layouts.shanghaitech),
    "ucf_qnrf": ("Train/ and/or Test/ with img_*.jpg + img_*_ann.mat",
                 lambda r: any(any((r / d).glob("*_ann.mat")) for d in ("Train", "Test")
                               if (r / d).is_dir()),
                 layouts.ucf_qnrf),
    "ucf_cc_50": ("N.jpg + N_ann.mat in one folder",
                  lambda r: any(r.glob("*_ann.mat")), layouts.ucf_cc_50),
    "nwpu": ("images/ + jsons/*.json (and train.txt/val.txt)",
             lambda r: (r / "images").is_dir() and (r / "jsons").is_dir(), layouts.nwpu),
    "jhu": ("train/, val/ or test/ with images/ + gt/*.txt",
            lambda r: any((r / s / "gt").is_dir() for s in ("train", "val", "test")), layouts.jhu),
    "labelme": ("images with a LabelMe a.json beside each a.jpg", tool_files.has_labelme,
                tool_files.labelme),
    "annotation_file": ("images with one COCO, CVAT or VIA file beside them that names them",
                        tool_files.has_collection, tool_files.collection),
    "annotated_folder": ("images with our IMAGE.jpg.sasnet.json annotations (beside them, in "
                         "annotations/, or kept by the app for a read-only folder)",
                         layouts.has_annotation_files, layouts.annotated_folder),
}


def detect_layout(root) -> str:
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError("not a folder", root)
    for name, (_, test, _) in LAYOUTS.items():
        if test(root):
            return name
    looked = "; ".join(f"{name}: {what}" for name, (what, _, _) in LAYOUTS.items())
    raise DatasetLayoutError(f"matches no known data set layout. Looked for: {looked}", root)


# How the options are named where a person gives them, for the refusal of one that does not apply.
OPTION_HELP = {"fold": "--fold (UCF_CC_50's five-fold protocol only)", "max_side": "--max-side",
               "project_dir": "a project folder", "reviewed_only": "reviewed images only"}


def layout_options(name: str) -> set[str]:
    """The options the reader of layout ``name`` takes (``fold``, ``max_side``, ...)."""
    return set(inspect.signature(LAYOUTS[name][2]).parameters) - {"root", "report", "_"}


def open_dataset(root, split: str | None = None, layout: str | None = None, *,
                 corrections: bool = True, **options):
    """Read a data set folder. ``split``: "train", "test", "fold3", ... or None/"all".

    Options by layout: ``fold`` (UCF_CC_50: that fold becomes "test", the others "train"),
    ``max_side`` (UCF-QNRF: 1920 as in the paper; NWPU, JHU: None), ``project_dir`` and
    ``reviewed_only`` (annotated folder). Returns a ``layouts.Dataset``.

    ``corrections`` (default True): an image a person corrected in the app (its annotation kept
    by the annotation store) counts with the corrected points instead of the data set's file, as
    ``ground_truth.truth_of`` decides for one image; the report says how many. False: the data
    set's own files alone (a published figure to compare with).
    """
    root = Path(root)
    name = layout or detect_layout(root)
    if name not in LAYOUTS:
        raise DatasetLayoutError(f"unknown layout {name!r}; known: {', '.join(LAYOUTS)}", root)
    reader = LAYOUTS[name][2]
    taken = layout_options(name)
    stray = sorted(k for k, v in options.items() if v is not None and k not in taken)
    if stray:  # an option that means nothing here is refused, not silently ignored
        raise DatasetLayoutError(f"is a {name} data set, which has no use for "
                                 + ", ".join(OPTION_HELP.get(k, k) for k in stray), root)
    report: list[str] = []
    samples = reader(root, report, **options)
    if corrections and name != "annotated_folder":  # that layout is the annotation store already

        apply_corrections(samples, report)
    if not samples:
        raise DatasetLayoutError(f"{name} layout but no annotated images found", root)
    return layouts.Dataset(name, root, samples, report).select(split)
