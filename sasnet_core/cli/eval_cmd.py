"""``sasnet eval``: counting accuracy of a model on an annotated data set."""
from __future__ import annotations

import sys

from sasnet_core.cli import argtypes
from sasnet_core.cli.engine_opts import (
    add_engine_options,
    batch_size_from_args,
    predictor_from_args,
)
from sasnet_core.datasets import open_dataset
from sasnet_core.evaluation.evaluate import evaluate
from sasnet_core.io.atomic import check_output_file
from sasnet_core.util.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a model on a data set (MAE, MSE, NAE, GAME)",
        description="Predict every image of a data set and compare with its ground truth: MAE, "
        "MSE (root mean square error, as crowd-counting papers report it), NAE and GAME(L) for "
        "L = 0..3. The layout is detected: ShanghaiTech (train_data/test_data), UCF_CC_50, "
        "UCF-QNRF (long side limited to 1920 as in the paper), NWPU-Crowd, JHU-Crowd++, LabelMe "
        "files beside their images, one COCO, CVAT or VIA file beside its images, or a "
        "folder of images with our *.sasnet.json annotations (ROIs restrict both counts). An image "
        "corrected in SASNet Studio counts with its corrections (--original-ground-truth: not). "
        "An image that cannot be read is named on stderr and left out of the figures; the exit "
        "status is then 1.",
        epilog="Example: sasnet eval data/shanghaitech_a --weights SHHA.pth --csv per_image.csv",
    )
    p.add_argument("dataset", metavar="DATASET", help="data set folder")
    p.add_argument("--weights", "-w", metavar="FILE|NAME",
                   help="checkpoint file or registered model name; default: the registry's default model")
    p.add_argument("--split", default=None,
                   help="split to evaluate: test, train, val, fold1..fold5, all "
                   "(default: test where the data set has one, else all images)")
    p.add_argument("--fold", type=argtypes.int_range(1, 5), default=None, metavar="K",
                   help="UCF_CC_50: fold K (1-5) is the test split, as in the 5-fold protocol")
    p.add_argument("--layout", default=None, help="force a layout instead of detecting it")
    p.add_argument("--csv", metavar="FILE", type=argtypes.output_file, help="write one row per image (image, gt_count, "
                   "pred_count, abs_error, game0..game3)")
    p.add_argument("--overwrite", action="store_true", help="replace the --csv file if it exists")
    p.add_argument("--json", action="store_true", help="print the summary and rows as JSON")
    add_engine_options(p)
    p.add_argument("--no-roi", action="store_true", help="ignore region-of-interest polygons")
    p.add_argument("--original-ground-truth", action="store_true",
                   help="count against the data set's own files only; by default an image corrected "
                   "in SASNet Studio counts with its corrected points")
    p.add_argument("--limit", type=argtypes.positive_int, default=None, metavar="N",
                   help="evaluate only the first N images")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.csv:
        check_output_file(args.csv, args.overwrite)  # before counting: a refusal costs nothing
    options = {"fold": args.fold} if args.fold is not None else {}
    ds = open_dataset(args.dataset, None, layout=args.layout,
                      corrections=not args.original_ground_truth, **options)
    split = args.split or ("test" if "test" in ds.splits else None)
    ds = ds.select(split)
    samples = list(ds)[: args.limit] if args.limit else list(ds)
    for line in ds.report:
        print(f"sasnet eval: note: {line}", file=sys.stderr)
    # The same model as `sasnet count` picks: a file, a registered name, or the default model.
    predictor = predictor_from_args(args, "eval", calibration=[s.image_path for s in samples])
    with Progress(len(samples), desc=f"eval {ds.layout} {split or 'all'}", unit="img",
                  enabled=False if args.no_progress else None) as bar:
        report = evaluate(predictor, samples, roi=not args.no_roi, progress=bar,
                          batch_size=batch_size_from_args(args, predictor))
    for image, message in report.skipped:
        print(f"sasnet eval: {image}: {message} (left out of the figures)", file=sys.stderr)
    if args.csv:
        report.write_csv(args.csv)
    if args.json:
        print(report.to_json())
    else:
        print(f"{ds.layout} ({split or 'all'}) {ds.root}")
        print(report.format_table())
    return 1 if report.skipped else 0
