"""``sasnet rank``: images ordered by how unsure the model is of them, so the worst are fixed first."""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from sasnet_core.annotations.annotation import polygon_mask
from sasnet_core.annotations.store import fit_problems
from sasnet_core.cli import argtypes
from sasnet_core.cli.count_cmd import report_nothing_to_do
from sasnet_core.cli.engine_opts import (
    add_engine_options,
    batch_size_from_args,
    predictor_from_args,
)
from sasnet_core.datasets.ground_truth import truth_of
from sasnet_core.engine.counting import count_stream
from sasnet_core.engine.uncertainty import image_score
from sasnet_core.io.atomic import atomic_write_text, check_output_file
from sasnet_core.io.inputs import Problem, collect_inputs
from sasnet_core.util.errors import SASNetError
from sasnet_core.util.progress import Progress

DESCRIPTION = """\
Rank images by the model's uncertainty, highest first, so a person corrects the worst first.

The uncertainty of an image is the sum over its 32 x 32 patches of (people counted in the patch) x
(how flat the patch's five level weights are, 0 = one level dominates, 1 = all equal): the people
counted where the model could not choose a scale. Where an image has an annotation (found as the
app finds it: a person's annotation, else the ground truth of the data set the image belongs to,
such as ShanghaiTech's ground-truth/GT_IMG_3.mat or UCF's 3_ann.mat), its annotated count and |model count - annotated count| are shown too (both inside
the annotation's regions of interest, when it has some); --by annotated-error ranks by that error,
images without an annotation last.

Prints a table: a header line (path, count, uncertainty, annotated, error), then one aligned line
per image ("-" where there is no annotation). For scripts, --json prints one JSON object per line
(path, count, uncertainty, annotated_count, annotated_error) and --csv FILE writes those columns
to FILE. An image that cannot be counted,
or whose annotation or ground-truth file is damaged, or whose annotation does not fit it (another
image's file, made on another size, points off the image, a region with no area), is named on stderr (with --json also as a record with "skipped":
true) and the exit status is 1. A data set's own ground truth that does not fit its image (points
off it, made on another size where the format records one) is ranked with its published points, as
eval counts them, and named the same way (its --json record carries "error").

examples:
  sasnet rank photos/ --weights shha
  sasnet rank corrected/ --weights my_model --by annotated-error --csv worst_first.csv
"""
COLUMNS = ("path", "count", "uncertainty", "annotated_count", "annotated_error", "error")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rank", help="order images by expected error, highest first",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="FOLDER", help="images or folders (searched recursively)")
    p.add_argument("--weights", "-w", metavar="FILE|NAME",
                   help="checkpoint file or registered model name; default: the registry's default model")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    out.add_argument("--csv", metavar="FILE", type=argtypes.output_file, help="write the ranking to FILE")
    p.add_argument("--overwrite", action="store_true", help="replace the --csv file if it exists")
    p.add_argument("--by", choices=("score", "annotated-error"), default="score",
                   help="score: the model's uncertainty (default); annotated-error: |model - annotated|")
    add_engine_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


@dataclass
class Row:
    path: Path
    count: float | None = None
    uncertainty: float | None = None
    annotated_count: int | None = None
    annotated_error: float | None = None
    error: str | None = None  # why the image was not counted, or why its annotation was not used

    def record(self) -> dict:
        rnd = lambda v: None if v is None else round(float(v), 4)  # noqa: E731
        rec = {"path": str(self.path), "count": rnd(self.count), "uncertainty": rnd(self.uncertainty),
               "annotated_count": self.annotated_count, "annotated_error": rnd(self.annotated_error)}
        if self.error is not None:
            rec["error"] = self.error
            if self.count is None:
                rec["skipped"] = True
        return rec


def run(args) -> int:
    found = collect_inputs(args.paths)
    problems = list(found.problems) + [
        Problem(v, "a video; rank ranks images (count its frames with 'sasnet count')") for v in found.videos]
    if args.csv is not None:
        check_output_file(args.csv, args.overwrite)  # before counting: a refusal costs nothing
    if not found.images:
        return report_nothing_to_do("rank", problems)
    predictor = predictor_from_args(args, "rank", keep_levels=False, calibration=found.images)
    rows = [Row(p.path, error=p.message) for p in problems]
    bar = Progress(total=len(found.images), desc="images", enabled=False if args.no_progress else None, unit="img")
    stream = count_stream(predictor, found.images, batch_size=batch_size_from_args(args, predictor), display_side=None, maps=True)
    for path, result in zip(found.images, stream):
        rows.append(_row(path, result))
        bar.update(1)
    bar.close()
    ranked = _ranked([r for r in rows if r.count is not None], args.by)
    troubled = [r for r in rows if r.error is not None]
    for r in troubled:
        print(f"sasnet rank: {r.path}: {r.error}", file=sys.stderr)
    skipped = [r for r in rows if r.count is None]
    _write(ranked + skipped, args)
    return 1 if troubled else 0


def _row(path: Path, result) -> Row:
    if result.skipped:
        return Row(path, error=result.error)
    row = Row(path, result.count, image_score(result))
    try:  # a person's annotation, else the ground truth of the image's data set
        truth = truth_of(path)
    except SASNetError as exc:
        row.error = f"its annotation was not used: {exc}"
        return row
    ann = truth.annotation
    if ann is not None:
        problems = fit_problems(path, ann, truth.kept)
        # Another image's points would rank this one as nearly perfect, or worst.
        if problems and truth.kept is not None:
            row.error = f"its annotation {truth.kept} was not used: it does not fit the image: {'; '.join(problems)}"
            return row
        if problems:  # the data set's published points count, as in `sasnet eval`, and are flagged
            row.error = f"its ground truth {truth.dataset.file} does not fit the image: {'; '.join(problems)}"
    if truth.dataset_error is not None and truth.dataset.file.exists():
        row.error = f"its ground truth was not used: {truth.dataset_error}"
    if ann is not None:
        row.annotated_count = ann.count_in_roi()
        model = result.count if not ann.rois else result.count_in_mask(_roi_mask(ann))
        row.annotated_error = abs(model - row.annotated_count)
    return row


def _roi_mask(ann):
    """The annotation's regions of interest on the density grid (which may be scaled)."""
    import numpy as np

    def mask(shape, sx, sy):
        m = np.zeros(shape, bool)
        for poly in ann.rois:
            m |= polygon_mask(poly * (sx, sy), shape)
        return m

    return mask


def _ranked(rows: list[Row], by: str) -> list[Row]:
    """Highest first; ties keep the input order (sorts are stable)."""
    if by == "annotated-error":
        return sorted(rows, key=lambda r: (r.annotated_error is None, -(r.annotated_error or 0.0),
                                           -r.uncertainty))
    return sorted(rows, key=lambda r: -r.uncertainty)


def _write(rows: list[Row], args) -> None:
    if args.csv is not None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            rec = r.record()
            writer.writerow({k: "" if rec.get(k) is None else rec[k] for k in COLUMNS})
        atomic_write_text(args.csv, buf.getvalue())
        ranked = sum(r.count is not None for r in rows)
        print(f"wrote the ranking of {ranked} image(s) to {args.csv}")
        return
    if args.json:
        for r in rows:
            print(json.dumps(r.record(), allow_nan=False), flush=True)
        return
    print(_table([r for r in rows if r.count is not None]), flush=True)


TEXT_HEADER = ("path", "count", "uncertainty", "annotated", "error")


def _table(rows: list[Row]) -> str:
    """The ranking for a person: a header naming the columns, then one aligned line per image
    (numbers right-aligned, "-" where there is no annotation). Scripts read --json or --csv."""
    lines = [TEXT_HEADER] + [
        (str(r.path), f"{r.count:.2f}", f"{r.uncertainty:.2f}",
         "-" if r.annotated_count is None else str(r.annotated_count),
         "-" if r.annotated_error is None else f"{r.annotated_error:.2f}") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(TEXT_HEADER))]
    return "\n".join(
        "  ".join([line[0].ljust(widths[0]), *(cell.rjust(w) for cell, w in zip(line[1:], widths[1:]))]).rstrip()
        for line in lines)
