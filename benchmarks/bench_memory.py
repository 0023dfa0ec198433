"""Memory of the default counting path, and the activation memory per input pixel behind it.

    python benchmarks/bench_memory.py                        # folders: the default path, by command
    python benchmarks/bench_memory.py --batch-sizes 1 4      # batch 1 against the old default of 4
    python benchmarks/bench_memory.py --sizes 1920x1080 --commands count
    python benchmarks/bench_memory.py --per-pixel            # every backend and precision, B/pixel
    python benchmarks/bench_memory.py --per-pixel --pairs openvino:bf16
    python benchmarks/bench_memory.py --weights trained.pth --json memory.json

Folders (the default): 8 images of 1024 x 768 (the street test images) and the same 8 resized to
1920 x 1080; each of ``sasnet count``, ``rank`` and ``eval`` runs in a fresh process through the
real command line with its defaults (engine, precision, batch), and the process's peak resident
memory (VmHWM), wall seconds and CPU seconds (user + system, all threads: steadier than wall time
on a machine doing other work) are printed; ``count`` also with each ``--batch-size`` asked for.
The model is converted to OpenVINO's IR once beforehand, as the cache holds it after a first run.

``--commands app`` measures the desktop app the same way, as a person uses it: a fresh process
starts the real ``sasnet-gui FOLDER`` (``QT_QPA_PLATFORM=offscreen``) with the same model,
registered as the default of the benchmark's studio home, and lets it count every image of the
folder with its own defaults; the wall and CPU seconds run from the start to the last count
arriving in the file list, the peak from the start to the end of the process (File > Quit).

Per pixel: a fresh process loads the model as ``sasnet count`` does (folded in place, the fused
map alone kept), counts ONE image untiled, and reports its peak resident memory. Done at two
sizes, the difference of the peaks divided by the difference of the pixels is the cost of one
more pixel: the weights, the compiled model and the libraries cancel out. These are the figures
behind ``sasnet_core.engine.inference.BYTES_PER_PIXEL`` (the budget that decides tiling). Each run
compiles its own shape, as a first count of a new size does.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAIRS = ("torch:fp32", "torch:bf16", "openvino:fp32", "openvino:bf16", "openvino:int8")
SIZES = ((960, 540), (1920, 1080))
FOLDER_SIZES = ((1024, 768), (1920, 1080))
FOLDER_IMAGES = 8
STREET = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "street_b_layout" / "test_data"
COMMANDS = ("count", "rank", "eval", "app")
APP_MODEL = "bench"  # the name the app finds the benchmark's weights under: its default model
# The app's wait for its counts: its 8 images of 1920 x 1080 took 150 s on 2 cores shared with a
# training run (it counts on all cores but one); the rest is for slower or busier machines. The
# parent kills a child that outlives that by APP_KILL_MARGIN_S (a wedged event loop never runs
# the child's own timer).
APP_TIMEOUT_S = 900
APP_KILL_MARGIN_S = 120


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: on Linux ru_maxrss survives
    exec, so a child started by a big parent would report the parent's size."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def random_weights(path: Path, seed: int = 0) -> Path:
    """A full-size checkpoint in the released layout with random weights (``stand_in_sasnet``):
    speed and memory do not depend on the values."""
    from sasnet_core.model.stand_in import stand_in_sasnet
    from sasnet_core.weights.checkpoint import save_checkpoint

    return save_checkpoint(path, stand_in_sasnet(seed), {"name": "random weights in the released layout"})


def _child(backend: str, precision: str, width: int, height: int, weights: str, cache: str) -> None:
    import numpy as np

    from sasnet_core.engine.inference import Predictor

    calibration = None
    if precision == "int8":  # the same few images in every run: quantized once, then read from the cache
        calibration = [np.random.default_rng(i).integers(0, 256, (540, 960, 3), dtype=np.uint8)
                       for i in range(4)]
    predictor = Predictor.from_weights(weights, device="cpu", backend=backend, precision=precision,
                                       tile=0, keep_levels=False, ov_cache=cache, calibration=calibration)
    built = peak_rss_mb()
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    pred = predictor.predict(image)
    print(json.dumps({"backend": predictor.backend, "precision": predictor.precision,
                      "pixels": width * height, "tiles": pred.tiles, "built_mb": built,
                      "peak_mb": peak_rss_mb()}))


def run_child(backend: str, precision: str, width: int, height: int, weights: Path, cache: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--_child", backend, precision, str(width), str(height),
                          str(weights), str(cache)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "child failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def quantize_available() -> bool:
    try:
        import sasnet_core.engine.quantize  # noqa: F401
    except ImportError:
        return False
    return True


def measure(pairs, weights: Path, cache: Path) -> list[dict]:
    # Convert the IR (and quantize) once, so the runs below read it instead of tracing the model.
    run_child("openvino", "fp32", 64, 64, weights, cache)
    rows = []
    for pair in pairs:
        backend, precision = pair.split(":")
        if precision == "int8" and not quantize_available():
            print(f"{pair}: skipped (sasnet_core.engine.quantize is not there)", file=sys.stderr)
            continue
        if precision == "int8":
            run_child(backend, precision, 64, 64, weights, cache)
        small, big = (run_child(backend, precision, w, h, weights, cache) for w, h in SIZES)
        bpp = (big["peak_mb"] - small["peak_mb"]) * 2**20 / (big["pixels"] - small["pixels"])
        rows.append({"backend": backend, "precision": precision, "bytes_per_pixel": round(bpp),
                     "built_mb": round(big["built_mb"]), "peak_mb_small": round(small["peak_mb"]),
                     "peak_mb_big": round(big["peak_mb"])})
        print(f"{pair:15s} {bpp:6.0f} B/pixel   built {big['built_mb']:5.0f} MB   peak "
              f"{small['peak_mb']:5.0f} MB at {SIZES[0][0]}x{SIZES[0][1]}, "
              f"{big['peak_mb']:5.0f} MB at {SIZES[1][0]}x{SIZES[1][1]}", flush=True)
    return rows


def make_folder(root: Path, width: int, height: int) -> Path:
    """8 images of width x height in ShanghaiTech layout (test_data/images/ + ground-truth/) for eval: the
    street test set resized (its points scaled), or generated scenes where the data is not here."""
    import numpy as np

    from sasnet_core.io.imageio import read_image, write_image

    dataset = root / f"{width}x{height}"
    folder = dataset / "test_data"
    (folder / "images").mkdir(parents=True)
    (folder / "ground-truth").mkdir()
    sources = sorted((STREET / "images").glob("IMG_*.jpg"))[:FOLDER_IMAGES]
    import cv2

    from sasnet_core.annotations.annotation import Annotation
    from sasnet_core.annotations.formats import write_points

    for i in range(FOLDER_IMAGES):
        if i < len(sources):
            image = read_image(sources[i])
        else:
            image = np.random.default_rng(i).integers(0, 256, (768, 1024, 3), dtype=np.uint8)
        h0, w0 = image.shape[:2]
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        name = f"IMG_{i + 1}.jpg"
        write_image(folder / "images" / name, image)
        points = np.random.default_rng(i).uniform([0, 0], [width, height], (20, 2))
        write_points(Annotation(name, (width, height), points),
                     folder / "ground-truth" / f"GT_IMG_{i + 1}.mat", "shanghaitech")
    return dataset


def _command_child(argv: list[str]) -> None:
    """Run one ``sasnet`` command in this process and print its peak memory and wall time."""
    from sasnet_core.cli import main as sasnet_main

    devnull = open(os.devnull, "w")
    start = time.perf_counter()
    real_stdout, sys.stdout = sys.stdout, devnull
    try:
        code = sasnet_main(argv)
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.stdout = real_stdout
    usage = resource.getrusage(resource.RUSAGE_SELF)  # includes OpenVINO's and torch's threads
    print(json.dumps({"code": code, "seconds": time.perf_counter() - start, "peak_mb": peak_rss_mb(),
                      "cpu_seconds": usage.ru_utime + usage.ru_stime}))


def run_command(argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--_command", json.dumps(argv)],
                         capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"sasnet {' '.join(argv)} failed: {out.stderr.strip()[-500:]}")
    result = json.loads(lines[-1])
    if result["code"] not in (0, None):
        raise RuntimeError(f"sasnet {' '.join(argv)} exited {result['code']}: {out.stderr.strip()[-500:]}")
    return result


def _app_child(folder: str) -> None:
    """Run the real app (``sasnet-gui FOLDER``) in this process until it has counted every image
    of ``folder``, then print its peak memory and times as ``_command_child`` does."""
    start = time.perf_counter()  # before Qt is imported: its start is part of what a person waits for
    # deferred: Qt, in this child only (the parent and the CLI children never load it)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    # deferred: the app, which brings Qt
    from sasnet_gui.app import main as gui_main

    # The app's main() takes the QApplication that exists; made here, the watch can be put on its
    # event loop before main() runs it. It runs once main() has built the window.
    app = QApplication([sys.argv[0]])
    result: dict = {}
    QTimer.singleShot(0, lambda: _watch_counts(app, result, FOLDER_IMAGES, start))
    code = gui_main([folder])
    if code or "error" in result or "seconds" not in result:
        sys.exit(code or 1)  # _watch_counts wrote why on stderr
    print(json.dumps({"code": 0, "peak_mb": peak_rss_mb(), **result}))


def _watch_counts(app, result: dict, expected: int, start: float) -> None:
    """On the app's event loop: wait for the file list to hold the model's count of ``expected``
    images, put the times in ``result`` and quit through File > Quit; on a failed image or model,
    or after ``APP_TIMEOUT_S``, say why on stderr and leave with status 1."""
    # deferred: Qt, in the app's child only (loaded by the app by now)
    from PySide6.QtCore import QTimer

    # deferred: the app's window, which brings Qt
    from sasnet_gui.main_window import MainWindow

    window = next((w for w in app.topLevelWidgets() if isinstance(w, MainWindow)), None)

    def fail(message: str) -> None:
        if "seconds" not in result:  # not once counting is done and the window is closing
            result["error"] = message
            print(f"bench_memory: sasnet-gui: {message}", file=sys.stderr, flush=True)
            app.exit(1)

    if window is None or window.controller is None:  # nothing would count: the timeout would be all
        fail("no main window after start" if window is None else "the app has no model controller")
        return

    def counted() -> int:
        return sum(e.model_count is not None for e in window.files.entries())

    def check(*_) -> None:
        # The file list, not the queue's signals alone, says what is done: the session has put
        # each count there (its slot runs before this one) and an image that failed says why.
        broken = next((e for e in window.files.entries() if e.error), None)
        if broken is not None:
            fail(f"{broken.name}: {broken.error}")
        elif "seconds" not in result and len(window.files.entries()) >= expected and counted() >= expected:
            usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads: the counting worker's too
            result.update(seconds=time.perf_counter() - start, cpu_seconds=usage.ru_utime + usage.ru_stime,
                          engine=window.controller.engine_text())
            window.act_quit.trigger()

    window.counter.counted.connect(check)
    window.counter.failed.connect(check)
    window.controller.loadFailed.connect(lambda message: fail(f"the model did not load: {message}"))
    QTimer.singleShot(APP_TIMEOUT_S * 1000, lambda: fail(
        f"timed out after {APP_TIMEOUT_S} s with {counted()} of {expected} images counted "
        f"(model: {window.model_label.text()})"))
    check()


def run_app(folder: Path) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}  # no display needed; the widgets still draw
    try:
        out = subprocess.run([sys.executable, __file__, "--_app", str(folder)], capture_output=True,
                             text=True, env=env, timeout=APP_TIMEOUT_S + APP_KILL_MARGIN_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"sasnet-gui {folder} did not end within {APP_TIMEOUT_S + APP_KILL_MARGIN_S} s "
                           "(its own timeout did not fire); killed") from None
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"sasnet-gui {folder} failed (exit {out.returncode}): {out.stderr.strip()[-500:]}")
    return json.loads(lines[-1])


def _run_folder(command: str, argv: list[str], weights: Path) -> dict:
    """One run of the folders mode: the app on its folder (its default model is ``weights``,
    registered beforehand), or a ``sasnet`` command given the weights."""
    if command == "app":
        return run_app(Path(argv[0]))
    return run_command(argv + ["--weights", str(weights)] + (["--no-progress"] if command != "eval" else []))


def measure_folders(weights: Path, root: Path, batch_sizes: list[int], sizes, commands) -> list[dict]:
    run_command(["count", str(STREET / "images" / "IMG_1.jpg"), "--weights", str(weights), "--no-progress"])
    if "app" in commands:  # the app counts with the studio home's default model
        run_command(["models", "add", APP_MODEL, str(weights), "--default"])
    rows = []
    for width, height in sizes:
        dataset = make_folder(root, width, height)
        images = str(dataset / "test_data" / "images")
        runs = [("count", "default", ["count", images])]
        runs += [("count", f"--batch-size {b}", ["count", images, "--batch-size", str(b)]) for b in batch_sizes]
        runs += [("rank", "default", ["rank", images]), ("eval", "default", ["eval", str(dataset)])]
        runs += [("app", "default", [images])]
        for command, setting, argv in runs:
            if command not in commands:
                continue
            r = _run_folder(command, argv, weights)
            row = {"size": f"{width}x{height}", "command": command, "setting": setting,
                   "peak_mb": round(r["peak_mb"]), "seconds": round(r["seconds"], 1),
                   "cpu_seconds": round(r["cpu_seconds"], 1)}
            if "engine" in r:  # the app's status bar says what auto resolved to; the commands do not
                row["engine"] = r["engine"]
            rows.append(row)
            label = "sasnet-gui" if command == "app" else f"sasnet {command}"
            print(f"{width}x{height}  {label:12s} {setting:15s} peak {r['peak_mb']:6.0f} MB  "
                  f"{r['seconds']:6.1f} s wall  {r['cpu_seconds']:6.1f} s CPU  for {FOLDER_IMAGES} images",
                  flush=True)
    for size in {r["size"] for r in rows}:
        base = next((r for r in rows if r["size"] == size and r["command"] == "count" and r["setting"] == "default"), None)
        if base is None:
            continue
        for r in rows:
            if r["size"] == size and r["command"] == "count" and r["setting"] != "default":
                print(f"{size}: default against {r['setting']}: memory x{base['peak_mb'] / r['peak_mb']:.2f}, "
                      f"wall time x{base['seconds'] / r['seconds']:.2f}, "
                      f"CPU time x{base['cpu_seconds'] / r['cpu_seconds']:.2f}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, help="a checkpoint (default: random weights, released layout)")
    ap.add_argument("--per-pixel", action="store_true", help="bytes per pixel of each backend and precision")
    ap.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=PAIRS, metavar="BACKEND:PRECISION")
    ap.add_argument("--sizes", nargs="+", default=[f"{w}x{h}" for w, h in FOLDER_SIZES], metavar="WxH",
                    help="folders: image sizes (default: 1024x768 1920x1080)")
    ap.add_argument("--commands", nargs="+", default=["count", "rank", "eval"], choices=COMMANDS,
                    help="folders: which commands to run (default: count rank eval; app: the desktop app)")
    ap.add_argument("--batch-sizes", nargs="*", type=int, default=[4], metavar="B",
                    help="folders: also run count with these --batch-size values (default: 4, the old default)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    ap.add_argument("--_child", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--_command", help=argparse.SUPPRESS)
    ap.add_argument("--_app", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._command:
        _command_child(json.loads(args._command))
        return
    if args._app:
        _app_child(args._app)
        return
    if args._child:
        b, p, w, h, weights, cache = args._child
        _child(b, p, int(w), int(h), weights, cache)
        return
    with tempfile.TemporaryDirectory(prefix="sasnet-bench-memory-") as tmp:
        weights = args.weights or random_weights(Path(tmp) / "random.pth")
        os.environ["SASNET_STUDIO_HOME"] = str(Path(tmp) / "home")  # no registry or cache of the user's
        if args.per_pixel:
            rows = measure(args.pairs, weights, Path(tmp) / "openvino")
        else:
            sizes = [tuple(int(n) for n in size.lower().split("x")) for size in args.sizes]
            rows = measure_folders(weights, Path(tmp), args.batch_sizes, sizes, args.commands)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
