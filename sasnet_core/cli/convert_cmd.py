"""``sasnet convert``: annotation files or folders from one format to another."""
from __future__ import annotations

import sys

from sasnet_core.annotations.formats import (
    ANNOTATION_SUFFIXES,
    FORMATS,
    read_annotations,
)
from sasnet_core.annotations.formats.export import DATASET, export
from sasnet_core.cli.argtypes import fraction, non_negative_int
from sasnet_core.datasets import detect_layout, open_dataset
from sasnet_core.util.errors import DatasetLayoutError, OutputExistsError


def register(subparsers) -> None:
    names = ", ".join(f"{n} ({s.description})" for n, s in FORMATS.items())
    p = subparsers.add_parser(
        "convert",
        help="convert head-point annotations between formats",
        description="Convert crowd annotations. SRC is one annotation file (format detected from "
        "its extension and content) or a folder: a known data set layout (ShanghaiTech, UCF, "
        "NWPU, JHU, a folder of *.sasnet.json) or a folder of annotation files. "
        f"Formats: {names}. '{DATASET}' writes a whole ShanghaiTech-style data set "
        "(train_data/ and test_data/, images/ + ground-truth/).",
        epilog="Examples: sasnet convert GT_IMG_1.mat --to labelme --out IMG_1.json; "
        "sasnet convert data/ucf_cc_50 --to text --out ucf_txt/; "
        f"sasnet convert my_project/ --to {DATASET} --out export/ --test-fraction 0.2",
    )
    p.add_argument("src", metavar="SRC", help="annotation file or folder")
    p.add_argument("--to", required=True, metavar="FORMAT", choices=[*FORMATS, DATASET],
                   help=f"output format: {', '.join(FORMATS)}, {DATASET}")
    p.add_argument("--out", required=True, metavar="DST",
                   help="output file (one image, or COCO/CVAT/VIA) or folder")
    p.add_argument("--from", dest="src_format", metavar="FORMAT", choices=list(FORMATS),
                   help="input format when detection should not guess (default: detect)")
    p.add_argument("--drop-outside", action="store_true",
                   help="drop points outside the image (default: report them and keep them)")
    p.add_argument("--strict", action="store_true",
                   help="treat points outside the image as an error")
    p.add_argument("--overwrite", action="store_true",
                   help="replace output files or data set folders that exist (default: refuse)")
    p.add_argument("--test-fraction", type=fraction, default=0.2, metavar="F",
                   help=f"{DATASET}: share of images put in test_data/, between 0 and 1 "
                   "(when the source has no train/test split of its own)")
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="N",
                   help=f"{DATASET}: seed of the split")
    p.add_argument("--allow-image", action="append", default=[], metavar="IMAGE",
                   help=f"{DATASET}: copy this image although it lies outside SRC "
                   "(images outside SRC are refused; repeat for several)")
    p.set_defaults(func=run)


def _gather(src, src_format, outside, report):
    """(annotations, split names or None) from a file or a folder."""
    from pathlib import Path

    src = Path(src)
    if src.is_file():
        return read_annotations(src, src_format, outside=outside, report=report), None
    if not src.is_dir():
        raise DatasetLayoutError("no such file or folder", src)
    if src_format is None:
        try:
            layout = detect_layout(src)
        except DatasetLayoutError:
            layout = None
        if layout == "annotated_folder":
            src_format = "sasnet"  # read the files themselves: keeps sources and extra keys
        elif layout is not None:
            ds = open_dataset(src, layout=layout, max_side=None)  # original pixel coordinates
            report.extend(ds.report)
            return [s.annotation() for s in ds], [s.split for s in ds]
    suffixes = FORMATS[src_format].extensions if src_format else ANNOTATION_SUFFIXES
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))
    if not files:
        raise DatasetLayoutError(f"no annotation files ({', '.join(suffixes)}) found", src)
    anns = []
    for f in files:
        anns += read_annotations(f, src_format, outside=outside, report=report)
    return anns, None


def run(args) -> int:
    from pathlib import Path

    outside = "error" if args.strict else ("drop" if args.drop_outside else "keep")
    report: list[str] = []
    anns, splits = _gather(args.src, args.src_format, outside, report)
    for line in report:
        print(f"sasnet convert: warning: {line}", file=sys.stderr)
    if report and outside == "keep":
        print("sasnet convert: points outside the image were kept; --drop-outside drops them",
              file=sys.stderr)
    if splits is not None and not set(splits) <= {"train", "test"}:
        splits = None  # e.g. UCF folds: a seeded random split instead
    # Images are copied from the source folder, or from the "images" folder beside it where
    # the ShanghaiTech, NWPU and JHU layouts keep them; a path inside a file reaches no further.
    base = Path(args.src) if Path(args.src).is_dir() else Path(args.src).parent
    try:
        result = export(anns, args.to, args.out, overwrite=args.overwrite,
                        test_fraction=args.test_fraction, seed=args.seed,
                        splits=splits if args.to == DATASET else None,
                        source_root=[base, base.parent / "images"],
                        allowed_images=args.allow_image)
    except OutputExistsError as exc:
        if "already exists" not in exc.detail:
            raise
        raise OutputExistsError("already exists; --overwrite replaces it", exc.path) from None
    for what in result.left_out:
        print(f"sasnet convert: note: not written: {what}", file=sys.stderr)
    if args.to == DATASET:
        print(f"wrote {result.splits['train']} training and {result.splits['test']} test images "
              f"({result.points} heads) to {result.target}")
    elif len(result.files) == 1:
        print(f"wrote {result.images} image(s) ({result.points} heads) to {result.files[0]}")
    else:
        print(f"wrote {len(result.files)} files ({result.points} heads) to {result.target}")
    return 0
