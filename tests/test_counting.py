"""The counting engine: one result per input in order, skipped records, batching, and a stop that
takes effect inside an image (between layers and between tiles), in the core, the app's file
queue and on quit.

Cancellation is made deterministic with forward hooks: a "slow layer" that runs until the stop is
requested, then lets its layer finish; the test then checks that no later layer ran.
"""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sasnet_core.engine.counting import CountResult, Frame, count_stream
from sasnet_core.engine.inference import Predictor
from sasnet_core.io.imageio import write_image
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet
from sasnet_core.util.cancel import Cancelled, CancelToken, checkpoint


def _predictor(**kwargs) -> Predictor:
    torch.manual_seed(0)
    return Predictor(SASNet(SASNetConfig(width_mult=0.125)), device="cpu", precision="fp32", **kwargs)


def _layered_predictor(**kwargs) -> Predictor:
    """The torch backend: the tests that hook a layer to make a stop deterministic need layers to
    hook (OpenVINO runs the graph as one call; its stop is tested in test_openvino_backend)."""
    return _predictor(backend="torch", **kwargs)


@pytest.fixture(scope="module")
def predictor():
    return _predictor()


def _image(h, w, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


class _ConvLog:
    """Records every convolution the model runs, from the moment ``mark()`` is called."""

    def __init__(self, model):
        self.after_mark = 0
        self._marked = False
        self._handles = [m.register_forward_pre_hook(self._hook) for m in model.modules()
                         if isinstance(m, torch.nn.Conv2d)]

    def _hook(self, module, args):
        if self._marked:
            self.after_mark += 1

    def mark(self):
        self._marked = True

    def remove(self):
        for h in self._handles:
            h.remove()


def _slow_layer(entered: threading.Event, log: _ConvLog | None = None):
    """A forward pre-hook standing for a layer that takes long: it runs until a stop is requested
    (seen through this thread's checkpoint), then lets the layer finish normally."""
    def hook(module, args):
        entered.set()
        try:
            while True:
                checkpoint()
                time.sleep(0.005)
        except Cancelled:
            if log is not None:
                log.mark()  # from here on, no convolution may run
    return hook


# -- results, order, skipped records -----------------------------------------------------------
def test_one_result_per_input_in_order_with_skipped_records(tmp_path, predictor):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    write_image(a, _image(64, 96, 1))
    write_image(b, _image(96, 64, 2))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    missing = tmp_path / "missing.png"
    inputs = [a, broken, b, missing, _image(64, 64, 3)]
    results = list(count_stream(predictor, inputs, batch_size=2))
    assert [r.path for r in results] == [str(a), str(broken), str(b), str(missing), ""]
    assert [r.skipped for r in results] == [False, True, False, True, False]
    assert results[1].error and results[1].count is None
    assert results[3].count is None and results[3].error
    alone = predictor.predict(str(a))
    assert results[0].count == pytest.approx(alone.count, rel=1e-5)
    assert results[0].image_size == (96, 64) and results[2].image_size == (64, 96)
    assert results[0].density.shape == (64, 96)
    assert float(results[0].density.sum()) == pytest.approx(results[0].count, rel=1e-4)


def test_video_frames_keep_their_index_and_time_and_unreadable_frames_are_skipped(predictor):
    frames = [Frame("clip.mp4", 0, 0.0, _image(64, 64, 0)),
              Frame("clip.mp4", 5, 0.5, None, "the frame cannot be decoded (corrupt data)"),
              Frame("clip.mp4", 10, 1.0, _image(64, 64, 1))]
    results = list(count_stream(predictor, frames, batch_size=4, maps=False))
    assert [(r.path, r.frame, r.time_s) for r in results] == [("clip.mp4", 0, 0.0), ("clip.mp4", 5, 0.5),
                                                             ("clip.mp4", 10, 1.0)]
    assert results[1].skipped and "corrupt data" in results[1].error
    assert results[0].count is not None and results[0].density is None  # maps=False keeps the count only


def test_same_size_images_share_forward_passes(predictor, monkeypatch):
    batches = []
    forward = predictor._forward
    monkeypatch.setattr(predictor, "_forward", lambda x, **kw: batches.append(tuple(x.shape)) or forward(x, **kw))
    images = [_image(64, 96, 0), _image(64, 96, 1), _image(96, 64, 2), _image(64, 96, 3)]
    results = list(count_stream(predictor, images, batch_size=4))
    assert sorted(b[0] for b in batches) == [1, 3]  # three 64x96 images in one pass, the other alone
    for im, r in zip(images, results):
        assert r.count == pytest.approx(predictor.predict(im).count, rel=1e-4)


def test_heads_and_display_size_are_what_was_asked_for(predictor):
    (r,) = count_stream(predictor, [_image(300, 400, 5)], display_side=100, heads=True)
    assert max(r.density.shape) == 100
    assert float(r.density.sum()) == pytest.approx(r.count, rel=1e-4)
    assert r.heads.shape == (round(r.count), 2)
    (bare,) = count_stream(predictor, [_image(300, 400, 5)], maps=False)
    assert bare.heads is None and bare.density is None


class _StubPredictor:
    """Only what the engine asks of a predictor; fails like torch does when memory runs out."""

    device = SimpleNamespace(type="cpu")

    def __init__(self, fail_above_side=None, count=1.0):
        self.fail_above_side, self.count, self.calls = fail_above_side, count, []

    def predict_batch(self, images):
        self.calls.append(len(images))
        if self.fail_above_side and (len(images) > 1 or max(images[0].shape) > self.fail_above_side):
            raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 9 GB")
        return [SimpleNamespace(count=self.count, image_size=(im.shape[1], im.shape[0]), elapsed_s=0.0)
                for im in images]


def test_out_of_memory_skips_only_the_image_that_does_not_fit():
    stub = _StubPredictor(fail_above_side=100)
    images = [_image(32, 32, 0), _image(200, 200, 1), _image(32, 32, 2)]
    results = list(count_stream(stub, images, batch_size=3, maps=False))
    assert [r.skipped for r in results] == [False, True, False]
    assert "out of memory" in results[1].error
    assert stub.calls == [3, 1, 1, 1]  # the batch, then one image at a time


def test_a_count_that_is_not_a_number_is_a_skipped_record_not_a_nan():
    results = list(count_stream(_StubPredictor(count=float("nan")), [_image(32, 32, 0)], maps=False))
    assert results[0].skipped and "not a number" in results[0].error


def test_bad_batch_size_is_refused(predictor):
    with pytest.raises(ValueError, match="batch_size"):
        list(count_stream(predictor, [_image(32, 32, 0)], batch_size=0))


# -- stopping ---------------------------------------------------------------------------------
def test_a_stop_inside_an_image_takes_effect_before_the_next_layer():
    p = _layered_predictor()
    token = CancelToken()
    log = _ConvLog(p.model)
    # The stop arrives while the encoder's third stage runs; the stream must end right after it.
    p.model.features3.register_forward_pre_hook(lambda m, a: token.cancel())
    p.model.features3.register_forward_hook(lambda m, a, out: log.mark())
    results = list(count_stream(p, [_image(64, 64, 0), _image(64, 64, 1)], cancel=token))
    assert results == []
    assert log.after_mark == 0  # neither the fourth stage, the decoder nor a head ran
    log.remove()


def test_a_stop_between_tiles_leaves_the_remaining_tiles():
    p = _predictor(tile=64)
    token = CancelToken()
    calls = []
    forward = p._forward

    def counting_forward(x):
        out = forward(x)
        calls.append(1)
        if len(calls) == 3:
            token.cancel()
        return out

    p._forward = counting_forward
    assert list(count_stream(p, [_image(256, 256, 0)], cancel=token)) == []
    assert len(calls) == 3  # of 16 tiles


def test_a_stop_from_another_thread_ends_the_stream_at_the_next_layer():
    p = _layered_predictor()
    token, entered = CancelToken(), threading.Event()
    log = _ConvLog(p.model)
    p.model.features2.register_forward_pre_hook(_slow_layer(entered, log))
    results, errors = [], []

    def consume():
        try:
            results.extend(count_stream(p, [_image(64, 64, 0)], cancel=token))
        except BaseException as exc:  # noqa: BLE001 - the test reports it below
            errors.append(exc)

    worker = threading.Thread(target=consume)
    worker.start()
    assert entered.wait(60)
    token.cancel()
    worker.join(60)  # a guard against a hang, not a speed check
    assert not worker.is_alive() and errors == [] and results == []
    assert log.after_mark == 0
    log.remove()


def test_a_token_binds_only_its_own_thread():
    p = _predictor()
    stopped = CancelToken()
    stopped.cancel()
    assert list(count_stream(p, [_image(64, 64, 0)], cancel=stopped)) == []
    # The same model in another stream (no token) still counts: the stop was that stream's only.
    (r,) = count_stream(p, [_image(64, 64, 0)])
    assert isinstance(r, CountResult) and r.count is not None


# -- the app's file queue, driven through its actions -----------------------------------------
def _counting_threads():
    return [t for t in threading.enumerate() if t.name == "sasnet-counting"]


def _start_counting_into_a_slow_layer(qtbot, window, controller, folder, gui):
    paths = [str(p) for p in gui.write_images(folder, n=3, h=64, w=64)]
    p = _layered_predictor()
    entered = threading.Event()
    log = _ConvLog(p.model)
    p.model.features2.register_forward_pre_hook(_slow_layer(entered, log))
    window.open_paths(paths)
    controller.set(p)  # a model arrives: the open images are counted
    # The first image is on the canvas (showing an image queues it) and inside the slow layer.
    qtbot.waitUntil(lambda: entered.is_set() and window.act_stop.isEnabled() and window.session.current == paths[0],
                    timeout=60_000)
    return paths, log


def test_counting_queue_counts_the_open_images_with_the_engine(qtbot, main_window, fake_controller, tmp_path, gui):
    paths = [str(p) for p in gui.write_images(tmp_path, n=3, h=64, w=96)]
    counted = {}
    main_window.counter.counted.connect(lambda path, r: counted.__setitem__(path, r))
    main_window.open_paths(paths)
    with qtbot.waitSignal(main_window.counter.idle, timeout=60_000):
        fake_controller.set(_predictor())
    assert set(counted) == set(paths)
    r = counted[paths[0]]
    assert isinstance(r, CountResult) and r.path == paths[0] and r.heads is not None
    assert main_window.files.entry(paths[0]).model_count == pytest.approx(r.count)


def test_stop_action_takes_effect_inside_the_image_being_counted(qtbot, main_window, fake_controller, tmp_path,
                                                                 gui):
    counted = []
    main_window.counter.counted.connect(lambda path, r: counted.append(path))
    _, log = _start_counting_into_a_slow_layer(qtbot, main_window, fake_controller, tmp_path, gui)
    with qtbot.waitSignals([main_window.counter.stopped, main_window.counter.idle], timeout=60_000):
        main_window.act_stop.trigger()
    assert counted == [] and log.after_mark == 0  # stopped before the next layer of the first image
    assert not main_window.counter.is_running() and main_window.counter.pending() == []
    assert not main_window.act_stop.isEnabled() and _counting_threads() == []


def test_a_new_model_while_counting_counts_everything_again_with_it(qtbot, main_window, fake_controller, tmp_path,
                                                                    gui):
    counted = {}
    main_window.counter.counted.connect(lambda path, r: counted.__setitem__(path, r))
    paths, log = _start_counting_into_a_slow_layer(qtbot, main_window, fake_controller, tmp_path, gui)
    with qtbot.waitSignal(main_window.counter.idle, timeout=60_000):
        fake_controller.set(_predictor())  # the slow model is replaced while it counts the first image
    assert set(counted) == set(paths)  # the interrupted image too, with the new model
    assert log.after_mark == 0


def _held_first_image(entered: threading.Event, release: threading.Event):
    """A forward pre-hook that holds the first image inside the model until ``release``."""
    def hook(module, args):
        entered.set()
        release.wait(60)
    return hook


def test_progress_total_counts_each_image_once(qtbot, main_window, fake_controller, tmp_path, gui):
    """`sasnet-gui FOLDER` with no model, then a model is added: "counted k/8" for 8 images, also
    when the image being counted is queued again (Count all while it is counted)."""
    gui.write_images(tmp_path, n=8, h=64, w=64)
    main_window.open_paths([tmp_path])  # as the command line does, before there is a model
    shown = []
    main_window.counter.progress.connect(lambda done, total: shown.append(main_window.progress.format()))
    p = _layered_predictor()
    entered, release = threading.Event(), threading.Event()
    p.model.features2.register_forward_pre_hook(_held_first_image(entered, release))
    fake_controller.set(p)  # the model arrives: the open images are counted, the shown one first
    qtbot.waitUntil(entered.is_set, timeout=60_000)
    main_window.act_count_all.trigger()  # queues the image being counted again
    with qtbot.waitSignal(main_window.counter.idle, timeout=60_000):
        release.set()
    # (the first image is counted twice: Count all asked for it again, but it is one image)
    assert shown[-1] == "counted 8/8" and all(text.endswith("/8") for text in shown)


def test_progress_total_after_a_new_model_while_counting(qtbot, main_window, fake_controller, tmp_path, gui):
    """A new model stops the image being counted and counts it again: it is still one image."""
    gui.write_images(tmp_path, n=8, h=64, w=64)
    main_window.open_paths([tmp_path])
    shown = []
    main_window.counter.progress.connect(lambda done, total: shown.append(main_window.progress.format()))
    p = _layered_predictor()
    entered = threading.Event()
    p.model.features2.register_forward_pre_hook(_slow_layer(entered))
    fake_controller.set(p)
    qtbot.waitUntil(entered.is_set, timeout=60_000)
    with qtbot.waitSignal(main_window.counter.idle, timeout=60_000):
        fake_controller.set(_predictor())  # another model, while the first image is counted
    assert shown == [f"counted {k}/8" for k in range(1, 9)]


class _FailingOnWideImages(Predictor):
    def predict_batch(self, images):
        if images[0].shape[1] > 100:
            raise ValueError("a model bug that only wide images reach")
        return super().predict_batch(images)


def test_a_model_failure_is_reported_for_its_image_and_the_queue_goes_on(qtbot, main_window, fake_controller,
                                                                          tmp_path, gui):
    narrow = [str(p) for p in gui.write_images(tmp_path / "narrow", n=2, h=64, w=64)]
    wide = [str(p) for p in gui.write_images(tmp_path / "wide", n=1, h=64, w=160)]
    counted, failed = [], {}
    main_window.counter.counted.connect(lambda path, r: counted.append(path))
    main_window.counter.failed.connect(lambda path, msg: failed.__setitem__(path, msg))
    main_window.open_paths(wide + narrow)
    with qtbot.waitSignal(main_window.counter.idle, timeout=60_000):
        fake_controller.set(_FailingOnWideImages(SASNet(SASNetConfig(width_mult=0.125)), device="cpu"))
    qtbot.waitUntil(lambda: len(counted) + len(failed) >= 3, timeout=10_000)  # the shown image may come twice
    assert set(counted) == set(narrow)
    assert set(failed) == set(wide) and "only wide images reach" in failed[wide[0]]


def test_quit_while_counting_stops_the_worker_and_prints_nothing(qtbot, main_window, fake_controller, tmp_path,
                                                                  gui, capfd):
    _, log = _start_counting_into_a_slow_layer(qtbot, main_window, fake_controller, tmp_path, gui)
    capfd.readouterr()
    main_window.act_quit.trigger()
    assert main_window.counter.wait_idle(60)  # the slow layer only ends when the quit reached it
    qtbot.waitUntil(lambda: not main_window.counter.is_running(), timeout=10_000)
    assert log.after_mark == 0 and _counting_threads() == []
    assert capfd.readouterr().err == ""


_QUIT_SCRIPT = r'''
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from _gui_helpers import fake_controller_class, make_video
from sasnet_core.util.cancel import Cancelled, checkpoint
from sasnet_core.io.imageio import write_image
from sasnet_core.engine.inference import Predictor
from sasnet_core.model.sasnet import SASNet
from sasnet_core.model.config import SASNetConfig
from sasnet_gui.main_window import MainWindow

folder, what = sys.argv[2], sys.argv[3]
app = QApplication([])
controller = fake_controller_class()()
window = MainWindow(controller=controller)
window.show()
torch.manual_seed(0)
predictor = Predictor(SASNet(SASNetConfig(width_mult=0.125)), device="cpu", backend="torch")

def slow_layer(module, args):  # a layer that lasts until the stop reaches it
    QTimer.singleShot(0, app, app.quit)  # quit while the image or frame is being counted
    try:
        while True:
            checkpoint()
            time.sleep(0.005)
    except Cancelled:
        pass

predictor.model.features2.register_forward_pre_hook(slow_layer)
controller.set(predictor)
if what == "images":
    paths = [f"{folder}/img_{i}.png" for i in range(3)]
    for i, path in enumerate(paths):
        write_image(path, np.full((64, 64, 3), 60 * i, np.uint8))
    window.open_paths(paths)
else:
    window.open_paths([str(make_video(f"{folder}/clip.avi", frames=10))])

    def count_when_open():
        panel = window._panels.get("video")
        if panel is None or panel.info is None or not panel.count_frames(every_n=1):
            QTimer.singleShot(20, count_when_open)

    count_when_open()
app.exec()
print("exited", flush=True)
'''


@pytest.mark.parametrize("what", ["images", "video"])
def test_the_app_quits_at_once_while_counting(tmp_path, what):
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", _QUIT_SCRIPT, str(tests), str(tmp_path), what], env=env,
                          capture_output=True, text=True, timeout=300)  # a guard against a hang
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "exited"
    offscreen_only = "This plugin does not support propagateSizeHints()"  # the test platform's, not ours
    assert [line for line in proc.stderr.splitlines() if line != offscreen_only] == []
