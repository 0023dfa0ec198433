"""Does the GUI stay responsive while video counting and fine-tuning run? (target: < 100 ms)

A 10 ms QTimer ticks on the GUI thread; the lateness of each tick (time since the previous tick
minus 10 ms) is how long the event loop could not run. Measured while

  idle      nothing runs (the floor of this machine)
  video     VideoPanel counts every frame of a generated video in its worker thread
  finetune  FineTunePanel runs `sasnet finetune` in a child process (start to end, including
            the child's start-up, the MAE before/after and the save)

The real widgets run, shown on the offscreen platform (or a real one with --show). All data,
models and settings go to a temporary SASNET_STUDIO_HOME.

    python benchmarks/bench_gui_background.py            # defaults: full-size SASNet for video
    python benchmarks/bench_gui_background.py --frames 20 --finetune-steps 5   # quicker
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


class LatencyProbe:
    """Lateness of a 10 ms QTimer on the GUI thread."""

    def __init__(self, interval_ms: int = 10):
        from PySide6.QtCore import Qt, QTimer

        self.interval = interval_ms / 1000
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.late: list[float] = []
        self._last = None

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.late.append(max(0.0, now - self._last - self.interval))
        self._last = now

    def start(self) -> None:
        self.late, self._last = [], None
        self.timer.start()

    def stop(self) -> dict:
        self.timer.stop()
        a = np.array(self.late or [0.0]) * 1000
        return {"ticks": len(self.late), "mean_ms": a.mean(), "p50_ms": np.percentile(a, 50),
                "p99_ms": np.percentile(a, 99), "max_ms": a.max(), "over_100ms": int((a > 100).sum())}


def wait_for(app, done, timeout_s: float) -> float:
    t0 = time.perf_counter()
    while not done():
        app.processEvents()
        if time.perf_counter() - t0 > timeout_s:
            raise TimeoutError(f"not done after {timeout_s} s")
        time.sleep(0.001)
    return time.perf_counter() - t0


def run_loop_until(app, done, timeout_s: float) -> float:
    """Run a Qt event loop (as app.exec does) until ``done()``."""
    from PySide6.QtCore import QEventLoop, QTimer

    t0 = time.perf_counter()
    loop = QEventLoop()
    check = QTimer()
    check.setInterval(20)
    check.timeout.connect(lambda: (done() or time.perf_counter() - t0 > timeout_s) and loop.quit())
    check.start()
    loop.exec()
    check.stop()
    if not done():
        raise TimeoutError(f"not done after {timeout_s} s")
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--show", action="store_true", help="use the real display, not offscreen")
    ap.add_argument("--frames", type=int, default=40, help="video frames to count (default 40)")
    ap.add_argument("--size", default="640x360", help="video frame size (default 640x360)")
    ap.add_argument("--video-width-mult", type=float, default=1.0,
                    help="SASNet width for counting (1.0 = the paper's model, random weights)")
    ap.add_argument("--finetune-steps", type=int, default=20)
    ap.add_argument("--finetune-width-mult", type=float, default=0.25)
    ap.add_argument("--skip", nargs="*", default=[], choices=["video", "finetune"])
    args = ap.parse_args()
    if not args.show:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = tempfile.mkdtemp(prefix="sasnet-bench-gui-")
    os.environ["SASNET_STUDIO_HOME"] = home

    import torch
    from _gui_helpers import make_annotated_images, make_video
    from PySide6.QtWidgets import QApplication

    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet
    from sasnet_core.weights.checkpoint import save_checkpoint
    from sasnet_core.weights.registry import ModelRegistry
    from sasnet_gui.models.controller import ModelController

    app = QApplication.instance() or QApplication([])
    probe = LatencyProbe()
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, platform {app.platformName()}", flush=True)

    probe.start()
    run_loop_until(app, lambda: len(probe.late) >= 200, 30)
    rows.append(("idle (2 s)", "", probe.stop()))

    def model(width: float, name: str) -> Path:
        torch.manual_seed(0)
        path = Path(home) / f"{name}.pth"
        save_checkpoint(path, SASNet(SASNetConfig(width_mult=width)), {"name": name})
        ModelRegistry().add(name, path, make_default=True)
        return path

    if "video" not in args.skip:
        from sasnet_gui.video.panel import VideoPanel

        w, h = (int(v) for v in args.size.split("x"))
        video = make_video(Path(home) / "bench.avi", frames=args.frames, size=(w, h))
        model(args.video_width_mult, "video-model")
        controller = ModelController(load_default=False)
        loaded = []
        controller.predictorChanged.connect(loaded.append)
        probe.start()
        controller.load("video-model")
        t_load = run_loop_until(app, lambda: bool(loaded), 300)
        rows.append((f"model load (width {args.video_width_mult:g})", f"{t_load:.1f} s", probe.stop()))
        panel = VideoPanel(controller)
        panel.resize(1000, 800)
        panel.show()
        panel.open_video(video)
        wait_for(app, lambda: panel.shown_index() == 0, 30)
        finished = []
        panel.countFinished.connect(finished.append)
        probe.start()
        panel.count_frames(every_n=1)
        t = run_loop_until(app, lambda: bool(finished), 1800)
        stats = probe.stop()
        rows.append((f"video count {args.frames} frames {w}x{h}",
                     f"{t:.1f} s ({args.frames / t:.2f} fps)", stats))
        # Scrubbing while counting is what a person does: decode + draw on the GUI thread.
        finished.clear()
        panel.count_frames(every_n=1)
        probe.start()
        t0 = time.perf_counter()
        i = 0

        def scrub():
            nonlocal i
            i = (i + 3) % args.frames
            panel.seek(i)
        from PySide6.QtCore import QTimer

        scrubber = QTimer()
        scrubber.timeout.connect(scrub)
        scrubber.start(50)
        run_loop_until(app, lambda: bool(finished), 1800)
        scrubber.stop()
        rows.append(("video count + scrubbing every 50 ms", f"{time.perf_counter() - t0:.1f} s",
                     probe.stop()))
        panel.shutdown()
        panel.close()

    if "finetune" not in args.skip:
        from sasnet_gui.finetune.panel import FineTunePanel

        model(args.finetune_width_mult, "ft-base")
        controller = ModelController(load_default=False)
        loaded = []
        controller.predictorChanged.connect(loaded.append)
        controller.load("ft-base")
        run_loop_until(app, lambda: bool(loaded), 300)
        images = make_annotated_images(Path(home) / "reviewed", n=6, size=(128, 128))
        panel = FineTunePanel(controller)
        panel.resize(1000, 600)
        panel.show()
        panel.set_training_images(images)
        panel.steps_spin.setValue(args.finetune_steps)
        panel.holdout_spin.setValue(34)
        panel.extra_args = ["--images-per-step", "4", "--crops", "2", "--workers", "0"]
        finished = []
        panel.runFinished.connect(finished.append)
        probe.start()
        panel.start()
        t = run_loop_until(app, lambda: bool(finished), 1800)
        stats = probe.stop()
        steps = len(panel.plot.steps)
        rows.append((f"fine-tune {steps} steps (width {args.finetune_width_mult:g}) -> {finished[0]}",
                     f"{t:.1f} s", stats))
        # Cancel mid-run: terminate, the trainer stops after its step and saves.
        finished.clear()
        panel.steps_spin.setValue(100000)
        probe.start()
        panel.start()
        t0 = time.perf_counter()
        run_loop_until(app, lambda: len(panel.plot.steps) >= 3, 600)
        t_cancel = time.perf_counter()
        panel.cancel()
        run_loop_until(app, lambda: bool(finished), 600)
        rows.append((f"fine-tune, cancel after 3 steps -> {finished[0]}",
                     f"{time.perf_counter() - t_cancel:.1f} s to stop", probe.stop()))
        panel.shutdown()

    print()
    print(f"{'while':46s} {'took':>22s} {'ticks':>6s} {'mean':>7s} {'p50':>7s} {'p99':>7s} "
          f"{'max':>7s} {'>100ms':>7s}")
    worst = 0.0
    for label, took, s in rows:
        print(f"{label:46s} {took:>22s} {s['ticks']:6d} {s['mean_ms']:6.1f}m {s['p50_ms']:6.1f}m "
              f"{s['p99_ms']:6.1f}m {s['max_ms']:6.1f}m {s['over_100ms']:7d}")
        worst = max(worst, s["max_ms"])
    print("(lateness of a 10 ms QTimer on the GUI thread, in ms; target: max < 100 ms)")
    print(f"worst stall: {worst:.1f} ms -> {'OK' if worst < 100 else 'OVER TARGET'}")
    import shutil

    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
