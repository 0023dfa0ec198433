"""``sasnet count``: count people in images, folders (recursively) and videos."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sasnet_core import vocab

DESCRIPTION = """\
Count people in images and videos with a SASNet model.

PATH may be image files (JPEG, PNG, BMP, TIFF, WebP), folders (searched recursively) or videos.
Prints one line per image ("path<TAB>count") or, with --json, one JSON object per line with
path, count, width, height (and frame, time_s for video frames). A progress bar goes to stderr.

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
    p.add_argument("--save-density", metavar="DIR",
                   help="write <stem>.npy per image (float32 H x W, people per pixel, sums to the count)")
    p.add_argument("--save-points", metavar="DIR",
                   help="write <stem>.txt with estimated head points, 'x y' per line")
    p.add_argument("--device", default=str(vocab.DEFAULT_DEVICE), type=vocab.device_arg,
                   help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--precision", default=str(vocab.DEFAULT_INFERENCE_PRECISION),
                   choices=vocab.choices(vocab.INFERENCE_PRECISIONS),
                   help="fp32 (exact), bf16 (fast on recent CPUs and GPUs, count within 0.5%%), fp16")
    p.add_argument("--max-side", type=int, metavar="N",
                   help="downscale images whose long side exceeds N pixels (the count stays in original units)")
    p.add_argument("--tile", type=int, metavar="N",
                   help="split images into N x N tiles (default: only when memory requires; 0 = never)")
    p.add_argument("--batch-size", type=int, default=4, metavar="B", help="images/frames per forward pass")
    p.add_argument("--every", type=int, default=1, metavar="N", help="video: count every Nth frame")
    p.add_argument("--time-step", type=float, metavar="SECONDS", help="video: count one frame per time step")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


def collect_inputs(paths: list[str]) -> tuple[list[Path], list[Path], list[str]]:
    """(images, videos, problems): folders are searched recursively, in a stable order."""
    from sasnet_core.imageio import is_image, is_video

    images, videos, problems = [], [], []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                (images if is_image(f) else videos if is_video(f) else []).append(f)
        elif p.is_file():
            if is_image(p):
                images.append(p)
            elif is_video(p):
                videos.append(p)
            else:
                problems.append(f"{p}: not an image or video file (by its extension)")
        else:
            problems.append(f"{p}: no such file or folder")
    return images, videos, problems


def run(args) -> int:
    from sasnet_core.errors import SASNetError
    from sasnet_core.inference import Predictor
    from sasnet_core.progress import Progress

    images, videos, problems = collect_inputs(args.paths)
    for msg in problems:
        print(f"sasnet count: {msg}", file=sys.stderr)
    if not images and not videos:
        print("sasnet count: nothing to count", file=sys.stderr)
        return 2
    predictor = Predictor.from_weights(
        args.weights, device=args.device, precision=args.precision, max_side=args.max_side, tile=args.tile,
        keep_levels=False,
    )
    out = _Output(args)
    failures = len(problems)
    bar = Progress(total=len(images), desc="images", enabled=False if args.no_progress else None, unit="img")
    for start in range(0, len(images), max(1, args.batch_size)):
        chunk = images[start : start + args.batch_size]
        arrays, ok_paths = [], []
        from sasnet_core.imageio import read_image

        for path in chunk:
            try:
                arrays.append(read_image(path))
                ok_paths.append(path)
            except SASNetError as exc:
                failures += 1
                out.error(path, exc.detail)
        for path, pred in zip(ok_paths, predictor.predict_batch(arrays) if arrays else []):
            out.result(path, pred)
        bar.update(len(chunk))
    bar.close()
    for video in videos:
        failures += _count_video(video, predictor, args, out)
    return 1 if failures else 0


def _count_video(path: Path, predictor, args, out: "_Output") -> int:
    from sasnet_core.errors import SASNetError
    from sasnet_core.progress import Progress
    from sasnet_core.video import frame_indices, iter_frames, open_video

    try:
        info = open_video(path)
        total = len(frame_indices(info, args.every, args.time_step))
    except SASNetError as exc:
        out.error(path, exc.detail)
        return 1
    bar = Progress(total=total, desc=path.name, enabled=False if args.no_progress else None, unit="frame")
    failures, batch = 0, []

    def flush():
        for rec, pred in zip(batch, predictor.predict_batch([r.image for r in batch])):
            out.result(path, pred, frame=rec.index, time_s=rec.time_s)
        bar.update(len(batch))
        batch.clear()

    for rec in iter_frames(path, every_n=args.every, time_step=args.time_step):
        if rec.image is None:
            failures += 1
            out.error(path, rec.error, frame=rec.index, time_s=rec.time_s)
            bar.update(1)
            continue
        batch.append(rec)
        if len(batch) >= max(1, args.batch_size):
            flush()
    if batch:
        flush()
    bar.close()
    return failures


class _Output:
    """Writes results as text or JSON lines on stdout, and the optional .npy / .txt files."""

    def __init__(self, args):
        self.json = args.json
        self.density_dir = Path(args.save_density) if args.save_density else None
        self.points_dir = Path(args.save_points) if args.save_points else None

    def _stem(self, path: Path, frame: int | None) -> str:
        return path.stem if frame is None else f"{path.stem}_frame{frame:06d}"

    def result(self, path: Path, pred, frame: int | None = None, time_s: float | None = None) -> None:
        import numpy as np

        from sasnet_core.atomic import atomic_path

        if self.density_dir is not None:
            with atomic_path(self.density_dir / f"{self._stem(path, frame)}.npy") as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, pred.density.astype(np.float32))
        if self.points_dir is not None:
            with atomic_path(self.points_dir / f"{self._stem(path, frame)}.txt") as tmp:
                np.savetxt(tmp, pred.heads, fmt="%.2f")
        w, h = pred.image_size
        if self.json:
            rec = {"path": str(path), "count": round(pred.count, 4), "width": w, "height": h}
            if frame is not None:
                rec.update(frame=frame, time_s=round(time_s, 4))
            print(json.dumps(rec), flush=True)
        else:
            where = str(path) if frame is None else f"{path}#frame={frame}"
            print(f"{where}\t{pred.count:.2f}", flush=True)

    def error(self, path: Path, message: str, frame: int | None = None, time_s: float | None = None) -> None:
        if self.json:
            rec = {"path": str(path), "count": None, "error": message}
            if frame is not None:
                rec.update(frame=frame, time_s=round(time_s, 4), skipped=True)
            print(json.dumps(rec), flush=True)
        where = str(path) if frame is None else f"{path} frame {frame}"
        print(f"sasnet count: {where}: {message}", file=sys.stderr)
