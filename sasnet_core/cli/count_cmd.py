"""``sasnet count``: count people in images, folders (recursively) and videos."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sasnet_core.cli import argtypes
from sasnet_core.cli.engine_opts import (
    add_engine_options,
    batch_size_from_args,
    predictor_from_args,
)
from sasnet_core.engine.counting import count_stream, video_frames
from sasnet_core.engine.uncertainty import image_score
from sasnet_core.io.atomic import atomic_path
from sasnet_core.io.inputs import collect_inputs
from sasnet_core.io.video_frames import frame_files_pattern, frame_stem
from sasnet_core.util.errors import OutputExistsError, SASNetError
from sasnet_core.util.progress import Progress

DESCRIPTION = """\
Count people in images and videos with a SASNet model.

PATH may be image files (JPEG, PNG, BMP, TIFF, WebP), folders (searched recursively) or videos.
Prints one line per image ("path<TAB>count") or, with --json, one JSON object per line with
path, count, width, height, uncertainty (the people counted where the model could not choose a
scale, see 'sasnet rank'), and frame, time_s for video frames. An image, frame or path that
cannot be counted is named on stderr and, with --json, gets a record {"path": ..., "count": null,
"error": ..., "skipped": true}; the exit status is then 1. Hidden files and folders are skipped.
Images declaring more than 100 megapixels are refused before decoding (environment variable
SASNET_MAX_MEGAPIXELS sets another limit). A progress bar goes to stderr; an image counted in
tiles gets its own (tiles done / all, ETA; on a pipe or in a log, a line every 15 s), and one above
20 megapixels a note of how --max-side makes it faster.

examples:
  sasnet count crowd.jpg --weights SHHA.pth
  sasnet count photos/ --weights shha --json > counts.jsonl
  sasnet count street.mp4 --weights shhb --every 25 --precision bf16
  sasnet count huge.tif --weights shha --tile 1024 --save-density densities/
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "count", help="count people in images, folders and videos",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="images, folders or videos")
    p.add_argument("--weights", "-w", metavar="FILE|NAME",
                   help="checkpoint file (released SHHA.pth/SHHB.pth or ours) or a registered model "
                        "name (see 'sasnet models list'); default: the registry's default model")
    p.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    p.add_argument("--save-density", metavar="DIR", type=argtypes.output_dir,
                   help="write <stem>.npy per image (float32 H x W, people per pixel, sums to the count), "
                        "in the sub-folder the image has below the folder given as PATH")
    p.add_argument("--save-points", metavar="DIR", type=argtypes.output_dir,
                   help="write <stem>.txt with estimated head points, 'x y' per line (sub-folders as above)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --save-density/--save-points files of an earlier run (without it, "
                        "a run that would replace one is refused before counting)")
    add_engine_options(p)
    p.add_argument("--every", type=argtypes.positive_int, default=1, metavar="N",
                   help="video: count every Nth frame")
    p.add_argument("--time-step", type=argtypes.positive_float, metavar="SECONDS",
                   help="video: count one frame per time step")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


def run(args) -> int:
    found = collect_inputs(args.paths)
    images, videos, problems = found.images, found.videos, found.problems
    out = _Output(args, found)  # before counting: refuses outputs that would collide
    if not images and not videos:
        return report_nothing_to_do("count", problems)
    for problem in problems:
        out.error(problem.path, problem.message)
    predictor = predictor_from_args(args, "count", keep_levels=False, calibration=images)
    failures = len(problems)
    bar = Progress(total=len(images), desc="images", enabled=False if args.no_progress else None, unit="img")
    tiles = TileBars("count", enabled=False if args.no_progress else None)
    for path, result in zip(images, count_stream(predictor, images, on_tile=tiles, **_what_to_keep(args, predictor))):
        tiles.close()
        if result.skipped:
            failures += 1
            out.error(path, result.error)
        else:
            out.result(path, result)
        bar.update(1)
    bar.close()
    for video in videos:
        failures += _count_video(video, predictor, args, out)
    return 1 if failures or out.skipped else 0


class TileBars:
    """``on_tile`` for ``count_stream``: a bar for each image counted in tiles, gone from a
    terminal once the image is counted; off a terminal a line every ``HEARTBEAT_S``, so a long
    image never leaves a log silent for minutes. An image above a few tens of megapixels first
    gets a note of how ``--max-side`` makes it faster (also with --no-progress: it is advice)."""

    HEARTBEAT_S = 15.0

    def __init__(self, command: str, enabled: bool | None = None, stream=None):
        self.command, self.enabled = command, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.bar = None

    def __call__(self, path: str, event) -> None:
        # deferred: torch; `sasnet --help` needs none
        from sasnet_core.engine.inference import large_image_hint

        if event.done == 0:
            self.close()
            hint = large_image_hint(event.size, "--max-side")
            if hint:
                clear = "\r\x1b[K" if getattr(self.stream, "isatty", lambda: False)() else ""
                print(f"{clear}sasnet {self.command}: note: {path or 'image'}: {hint}", file=self.stream, flush=True)
            self.bar = Progress(event.total, desc=f"{Path(path).name or 'image'} tiles", stream=self.stream,
                                enabled=self.enabled, unit="tile", heartbeat_s=self.HEARTBEAT_S, leave=False)
        elif self.bar is not None:
            self.bar.update(event.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def report_nothing_to_do(command: str, problems: list, verb: str | None = None) -> int:
    """Every input failed: each problem once on stderr, exit 2. One problem is one sentence that
    says the run stopped; a closing "nothing to count" after the list would only repeat it."""
    verb = verb or command
    if len(problems) == 1:
        print(f"sasnet {command}: error: {problems[0]}; nothing to {verb}", file=sys.stderr)
    elif problems:
        for problem in problems:
            print(f"sasnet {command}: error: {problem}", file=sys.stderr)
    else:
        print(f"sasnet {command}: error: nothing to {verb}", file=sys.stderr)
    return 2


def _what_to_keep(args, predictor) -> dict:
    """Engine options: batch size, and only the maps the output files need."""
    return dict(batch_size=batch_size_from_args(args, predictor), display_side=None,
                maps=bool(args.save_density or args.json), heads=bool(args.save_points))


def _count_video(path: Path, predictor, args, out: "_Output") -> int:
    # deferred: OpenCV; `sasnet --help` needs none
    from sasnet_core.io.video import frame_indices, open_video

    try:
        info = open_video(path)
        total = len(frame_indices(info, args.every, args.time_step))
    except SASNetError as exc:
        out.error(path, exc.detail)
        return 1
    bar = Progress(total=total or None, desc=path.name, enabled=False if args.no_progress else None, unit="frame")
    failures = 0
    frames = video_frames(path, every_n=args.every, time_step=args.time_step)
    tiles = TileBars("count", enabled=False if args.no_progress else None)
    for result in count_stream(predictor, frames, on_tile=tiles, **_what_to_keep(args, predictor)):
        tiles.close()
        if result.skipped:
            failures += 1
            out.error(path, result.error, frame=result.frame, time_s=result.time_s)
        else:
            out.result(path, result, frame=result.frame, time_s=result.time_s)
        bar.update(1)
    bar.close()
    return failures


class _Output:
    """Writes results as text or JSON lines on stdout, and the optional .npy / .txt files.

    Saved files keep the sub-folder an image has below the folder it was found in, so
    ``a/x.jpg`` and ``b/x.jpg`` give ``a/x.npy`` and ``b/x.npy``; two inputs that would still
    write one file (``x.jpg`` and ``x.png`` side by side, or two files given by name) are refused
    before anything is counted. Anything not counted is a skipped record, counted in ``skipped``.
    """

    def __init__(self, args, inputs):
        self.json = args.json
        self.density_dir = Path(args.save_density) if args.save_density else None
        self.points_dir = Path(args.save_points) if args.save_points else None
        self.inputs = inputs
        self.skipped = 0
        if self.density_dir is not None or self.points_dir is not None:
            self._refuse_collisions()
            if not args.overwrite:
                self._refuse_existing()

    def _refuse_collisions(self) -> None:
        owner: dict[tuple[Path, str], Path] = {}
        for kind, paths in (("image", self.inputs.images), ("video", self.inputs.videos)):
            for path in paths:
                rel = self.inputs.relative_name(path)
                key = (rel.with_suffix(""), kind)
                if key in owner:
                    out = self.density_dir or self.points_dir
                    raise OutputExistsError(
                        f"{owner[key]} and {path} would both be saved as {out / rel.with_suffix('')}.*; "
                        "rename one, or count them in separate runs", out)
                owner[key] = path

    def _refuse_existing(self) -> None:
        """Files an earlier run saved are replaced only with --overwrite, as ``convert`` and
        ``rank --csv`` do; checked before counting, so a refusal costs nothing."""
        for folder, suffix in ((self.density_dir, ".npy"), (self.points_dir, ".txt")):
            if folder is None or not folder.is_dir():
                continue
            taken: list[Path] = []
            for path in self.inputs.images:
                out = folder / f"{self._stem(path, None)}{suffix}"
                if out.exists():
                    taken.append(out)
            for path in self.inputs.videos:  # one file per counted frame
                stem = self._stem(path, None)
                taken.extend(sorted((folder / stem.parent).glob(frame_files_pattern(stem.name, suffix))))
            if taken:  # named by the folder given with --save-*, whatever sub-folders hold them
                shown = ", ".join(str(p) for p in taken[:3])
                more = f" and {len(taken) - 3} more" if len(taken) > 3 else ""
                raise OutputExistsError(
                    f"{len(taken)} output file(s) of an earlier run exist ({shown}{more}); "
                    "--overwrite replaces them", folder)

    def _stem(self, path: Path, frame: int | None) -> Path:
        rel = self.inputs.relative_name(path)
        return rel.with_suffix("") if frame is None else rel.parent / frame_stem(rel.stem, frame)

    def result(self, path: Path, pred, frame: int | None = None, time_s: float | None = None) -> None:
        import math

        import numpy as np

        if not math.isfinite(pred.count):
            self.error(path, "the model gave no finite count (NaN or infinity): its weights are damaged",
                       frame, time_s)
            return
        stem = self._stem(path, frame)
        if self.density_dir is not None:
            with atomic_path(self.density_dir / f"{stem}.npy") as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, pred.density.astype(np.float32))
        if self.points_dir is not None:
            with atomic_path(self.points_dir / f"{stem}.txt") as tmp:
                np.savetxt(tmp, pred.heads, fmt="%.2f")
        w, h = pred.image_size
        if self.json:
            rec = {"path": str(path), "count": round(pred.count, 4), "width": w, "height": h,
                   "uncertainty": round(image_score(pred), 4)}
            if frame is not None:
                rec.update(frame=frame, time_s=round(time_s, 4))
            print(json.dumps(rec, allow_nan=False), flush=True)
        else:
            where = str(path) if frame is None else f"{path}#frame={frame}"
            print(f"{where}\t{pred.count:.2f}", flush=True)

    def error(self, path: Path, message: str, frame: int | None = None, time_s: float | None = None) -> None:
        """A skipped record: on stderr, and with --json the record the README promises."""
        self.skipped += 1
        if self.json:
            rec = {"path": str(path), "count": None, "error": message, "skipped": True}
            if frame is not None:
                rec.update(frame=frame, time_s=round(time_s or 0.0, 4))
            print(json.dumps(rec, allow_nan=False), flush=True)
        where = str(path) if frame is None else f"{path} frame {frame}"
        print(f"sasnet count: {where}: {message}", file=sys.stderr)
