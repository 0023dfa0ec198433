"""The OpenVINO backend counts what the torch fp32 reference counts, on real crowd images.

The full-size network with random weights in the released layout (a true parity figure needs every
layer at its real width): OpenVINO fp32 matches torch fp32 to 1e-4 in every pixel and in the count,
bf16 keeps the count within 0.5 %, and every field of a ``Prediction`` the app draws (overlays,
hover weights, level map, head points) comes out the same. Then tiling, batching, stopping, the
conversion cache, and what a machine without OpenVINO does.
"""
from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest
import torch
from _data_paths import SHANGHAITECH_A, UCF_CC_50, need
from test_model import released_layout_state

from sasnet_core.cli import main
from sasnet_core.engine import openvino_backend
from sasnet_core.engine.inference import Predictor
from sasnet_core.io.imageio import read_image, write_image
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.fast_forward import fold_batchnorm
from sasnet_core.model.sasnet import SASNet
from sasnet_core.util.cancel import Cancelled, CancelToken, cancellable

NOT_INSTALLED = "OpenVINO is not installed (pip install openvino)"
FP32_REL = 1e-4  # the bound for fp32 against the torch fp32 reference
BF16_COUNT_REL = 0.005  # 0.5 % for bf16


@pytest.fixture(scope="module")
def released_model():
    model = SASNet()
    model.load_state_dict(released_layout_state(seed=0))
    return model.eval()


@pytest.fixture(scope="module")
def crowds():
    """Two real crowds of one size (so they can share a batch): a dense colour scene and a
    grayscale one (read as RGB), cropped so the full-size model counts them in a second or two."""
    dense = read_image(need(SHANGHAITECH_A / "test_data" / "images" / "IMG_168.jpg"))
    gray = read_image(need(UCF_CC_50 / "1.jpg"))
    h, w = 256, 352  # not a multiple of 32 on one side: the odd-size paths run too
    return [np.ascontiguousarray(dense[:h, :w]), np.ascontiguousarray(gray[-h:, :w])]


@pytest.fixture(scope="module")
def engines(released_model, _openvino_cache):
    """One predictor per engine, over one conversion of the model (the session's cache)."""
    def make(backend, precision, **kw):
        return Predictor(released_model, device="cpu", backend=backend, precision=precision,
                         ov_cache=_openvino_cache, **kw)

    return {"torch fp32": make("torch", "fp32"), "openvino fp32": make("openvino", "fp32"),
            "openvino bf16": make("openvino", "bf16"), "make": make}


@pytest.fixture(scope="module")
def predictions(engines, crowds):
    return {name: [p.predict(im) for im in crowds] for name, p in engines.items() if name != "make"}


def test_engines_are_what_was_asked_for(engines):
    assert engines["torch fp32"].model is not None and engines["torch fp32"].runner is None
    for name in ("openvino fp32", "openvino bf16"):
        p = engines[name]
        assert (p.backend, p.precision) == tuple(name.split())
        assert p.model is None and p.runner is not None and p.engine.note is None


def test_openvino_fp32_matches_torch_fp32_in_every_pixel_and_the_count(predictions):
    for ref, ov in zip(predictions["torch fp32"], predictions["openvino fp32"]):
        assert ref.count > 1.0  # a real figure, not two zeros agreeing
        assert ov.count == pytest.approx(ref.count, rel=FP32_REL)
        scale = float(np.abs(ref.density).max())
        assert np.abs(ov.density - ref.density).max() <= FP32_REL * scale
        lv_scale = float(np.abs(ref.level_densities).max())
        assert np.abs(ov.level_densities - ref.level_densities).max() <= FP32_REL * lv_scale
        np.testing.assert_allclose(ov.confidence, ref.confidence, rtol=0, atol=FP32_REL)


def test_openvino_bf16_count_is_within_half_a_percent_of_fp32(predictions):
    for ref, ov in zip(predictions["torch fp32"], predictions["openvino bf16"]):
        assert ov.count == pytest.approx(ref.count, rel=BF16_COUNT_REL)
        # The map a person looks at is the same picture, not only the same sum.
        corr = np.corrcoef(ov.density.ravel(), ref.density.ravel())[0, 1]
        assert corr > 0.99


@pytest.mark.parametrize("name", ["openvino fp32", "openvino bf16"])
def test_every_field_the_app_draws_comes_out_the_same(predictions, name):
    """Overlays (density, level densities), hover weights (confidence), the level map and the
    head points: same shapes and types from either backend, same values within the precision."""
    conf_atol, level_agree = (FP32_REL, 1.0) if name.endswith("fp32") else (0.02, 0.95)
    for ref, ov in zip(predictions["torch fp32"], predictions[name]):
        for field in ("density", "level_densities", "confidence", "patch_rows", "patch_cols", "level_map"):
            a, b = getattr(ref, field), getattr(ov, field)
            assert (b.shape, b.dtype) == (a.shape, a.dtype), field
        assert (ov.image_size, ov.scale, ov.tiles) == (ref.image_size, ref.scale, ref.tiles)
        np.testing.assert_array_equal(ov.patch_rows, ref.patch_rows)
        np.testing.assert_allclose(ov.confidence.sum(0), 1.0, rtol=1e-5)
        assert np.abs(ov.confidence - ref.confidence).max() <= conf_atol
        assert (ov.level_map == ref.level_map).mean() >= level_agree
        assert len(ov.heads) == round(ov.count)
        assert abs(len(ov.heads) - len(ref.heads)) <= max(1, round(BF16_COUNT_REL * ref.count))
        if name.endswith("fp32"):
            # The same points; peaks of equal height may come out in either order.
            by_place = lambda h: h[np.lexsort((h[:, 1], h[:, 0]))]  # noqa: E731
            np.testing.assert_allclose(by_place(ov.heads), by_place(ref.heads), atol=0.5)


def test_tiled_openvino_counts_what_the_untiled_pass_counts(engines, crowds, predictions):
    tiled = engines["make"]("openvino", "fp32", tile=192)
    untiled = predictions["openvino fp32"][0]
    pred = tiled.predict(crowds[0])
    assert pred.tiles > 1
    assert pred.count == pytest.approx(untiled.count, rel=0.01)
    assert pred.density.shape == untiled.density.shape
    assert pred.confidence.shape == untiled.confidence.shape
    assert (pred.level_map == untiled.level_map).mean() >= 0.9


def test_a_batch_of_two_equals_two_single_calls(engines, crowds, predictions):
    batch = engines["openvino bf16"].predict_batch(crowds)
    for one, single in zip(batch, predictions["openvino bf16"]):
        assert one.count == pytest.approx(single.count, rel=1e-3)
        np.testing.assert_allclose(one.confidence, single.confidence, atol=1e-2)
        assert one.density.shape == single.density.shape


def test_a_stop_from_another_thread_cancels_a_running_inference(engines, crowds, predictions, monkeypatch):
    """The token is set from the test's thread while the counting thread is inside OpenVINO's
    inference (after compiling, before the request finishes); the count stops with Cancelled, and
    the same predictor counts normally afterwards."""
    predictor = engines["openvino bf16"]
    runner = predictor.runner
    compiled, stop_sent = threading.Event(), threading.Event()
    real = runner._session  # the compiled model and its request, just before the inference starts

    def compiled_then_wait(*args):
        out = real(*args)
        compiled.set()
        stop_sent.wait(60)  # the inference starts only once the stop request is out
        return out

    token, outcome = CancelToken(), {}

    def count():
        try:
            with cancellable(token):
                outcome["result"] = predictor.predict(crowds[0])
        except BaseException as exc:  # noqa: BLE001 - the test reads what happened
            outcome["error"] = exc

    monkeypatch.setattr(runner, "_session", compiled_then_wait)
    worker = threading.Thread(target=count, daemon=True)
    worker.start()
    assert compiled.wait(120), "the counting thread never reached the inference"
    token.cancel()
    stop_sent.set()
    worker.join(120)
    assert not worker.is_alive(), "the inference did not stop"
    monkeypatch.undo()
    assert isinstance(outcome.get("error"), Cancelled), outcome
    again = predictor.predict(crowds[0])
    assert again.count == pytest.approx(predictions["openvino bf16"][0].count, rel=1e-5)


# -- the conversion cache (a small model; converting costs the same seconds whatever the width) -----
def _tiny():
    torch.manual_seed(0)
    return SASNet(SASNetConfig(width_mult=0.125)).eval()


@pytest.fixture
def tiny():
    return _tiny()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A cache folder holding the small model's conversion, made by a first Predictor."""
    cache = tmp_path_factory.mktemp("ov_cache")
    with pytest.MonkeyPatch.context() as mp:
        calls = _count_conversions(mp)
        pred = _ov_predictor(_tiny(), cache).predict(_image())
        assert calls == [1]
    return cache, pred


def _ov_predictor(model, cache):
    return Predictor(model, device="cpu", backend="openvino", precision="fp32", ov_cache=cache)


def _image(h=64, w=96):
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _count_conversions(monkeypatch):
    openvino = openvino_backend.load_openvino()
    calls = []
    real = openvino.convert_model
    monkeypatch.setattr(openvino, "convert_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def _copy(cache, to):
    shutil.copytree(cache / "ir", to / "ir")
    (entry,) = (to / "ir").iterdir()
    return entry


def test_a_second_predictor_reads_the_converted_model_from_the_cache(tiny, converted, monkeypatch):
    cache, first = converted
    assert [e.name for e in (cache / "ir").iterdir()] == [openvino_backend.model_key(fold_batchnorm(tiny))]
    calls = _count_conversions(monkeypatch)
    second = _ov_predictor(tiny, cache)
    assert calls == [], "converted again although the cache holds this model"
    assert second.predict(_image()).count == pytest.approx(first.count, rel=1e-6)


def test_other_weights_get_their_own_cache_entry(tiny, converted, tmp_path, monkeypatch):
    import subprocess
    import sys

    _copy(converted[0], tmp_path)
    # what a conversion cut short left: a process that is gone, and one still converting
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    abandoned, live = tmp_path / "ir" / f".tmp-{dead}-abc", tmp_path / "ir" / f".tmp-{os.getpid()}-def"
    for half in (abandoned, live):
        half.mkdir()
        (half / "sasnet.bin").write_bytes(b"half a model")
    with torch.no_grad():
        next(tiny.parameters()).add_(0.01)  # fine-tuned a little: a different model
    calls = _count_conversions(monkeypatch)
    _ov_predictor(tiny, tmp_path)
    assert calls == [1]
    assert not abandoned.exists() and live.exists()  # the next conversion cleans up after the dead
    live_entries = [p for p in (tmp_path / "ir").iterdir() if not p.name.startswith(".tmp-")]
    assert len(live_entries) == 2


@pytest.mark.parametrize("damage", ["bin-truncated", "bin-missing"])
def test_a_damaged_cache_entry_is_rebuilt_not_used(tiny, converted, tmp_path, monkeypatch, damage):
    good = converted[1]
    entry = _copy(converted[0], tmp_path)
    bin_ = entry / "sasnet.bin"
    if damage == "bin-truncated":  # read_model refuses it
        bin_.write_bytes(bin_.read_bytes()[: bin_.stat().st_size // 2])
    else:  # half an entry: it must be replaced, or every start converts again
        bin_.unlink()
    calls = _count_conversions(monkeypatch)
    again = _ov_predictor(tiny, tmp_path).predict(_image())
    assert calls == [1]
    assert again.count == pytest.approx(good.count, rel=1e-6)
    np.testing.assert_allclose(again.density, good.density, rtol=0, atol=1e-6 * float(good.density.max()))
    # The rebuilt entry is whole again: the next start reads it without converting.
    _ov_predictor(tiny, tmp_path)
    assert calls == [1]


# -- a machine without OpenVINO ----------------------------------------------------------------------
def test_without_openvino_the_predictor_counts_with_torch_and_says_why(tiny, monkeypatch):
    monkeypatch.setattr(openvino_backend, "unavailable_reason", lambda: NOT_INSTALLED)
    predictor = Predictor(tiny, device="cpu")
    assert predictor.backend == "torch" and predictor.runner is None and predictor.model is not None
    assert predictor.engine.note.startswith(NOT_INSTALLED) and "torch" in predictor.engine.note
    assert predictor.predict(_image()).count > 0


def test_without_openvino_sasnet_count_prints_one_note_line(tiny_weights, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(openvino_backend, "unavailable_reason", lambda: NOT_INSTALLED)
    image = tmp_path / "crowd.png"
    write_image(image, _image())
    assert main(["count", str(image), "--weights", str(tiny_weights), "--no-progress"]) == 0
    err = capsys.readouterr().err.splitlines()
    notes = [line for line in err if "note:" in line]
    assert notes == [f"sasnet count: note: {NOT_INSTALLED}; counting with torch on the CPU, "
                     "which is several times slower"]
    assert any(line.startswith("sasnet count: counting with torch ") for line in err)


def test_fp16_on_the_cpu_says_why_it_is_slow_and_what_is_fast(tiny_weights, tmp_path, capsys):
    from sasnet_core.engine.choice import native_precision

    image = tmp_path / "crowd.png"
    write_image(image, _image())
    assert main(["count", str(image), "--weights", str(tiny_weights), "--no-progress", "--precision", "fp16"]) == 0
    (note,) = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert "OpenVINO does not run fp16 on the CPU: counting with torch fp16" in note
    assert f"{native_precision(torch.device('cpu'))} (the default, auto) is the fast choice" in note


@pytest.mark.parametrize("argv, names", [
    (["--backend", "openvino", "--precision", "fp16"], ["OpenVINO", "fp16"]),
    (["--backend", "torch", "--precision", "int8"], ["int8", "OpenVINO"]),
])
def test_an_engine_that_cannot_run_is_one_line_and_exit_2(tiny_weights, tmp_path, capsys, argv, names):
    image = tmp_path / "crowd.png"
    write_image(image, _image())
    assert main(["count", str(image), "--weights", str(tiny_weights), "--no-progress", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert all(n in lines[0] for n in names), lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


def test_tiles_share_buffers_and_an_image_of_another_size_frees_them(tiny, converted):
    """The tiles of one image (largest first) run on the same activation buffers; an input larger
    than any before frees them first (two inputs' buffers are never held at once), and so does a
    much smaller one (a small image does not keep a large one's memory)."""
    predictor = Predictor(tiny, device="cpu", backend="openvino", precision="fp32", ov_cache=converted[0],
                          tile=96, margin=32)
    runner = predictor.runner
    runner.compiled(torch.get_num_threads())
    freed = []

    class Spy:  # the compiled model, counting the frees
        def __init__(self, real):
            self.real = real

        def release_memory(self):
            freed.append(True)
            self.real.release_memory()

        def __getattr__(self, name):
            return getattr(self.real, name)

    runner._compiled = {t: (Spy(c), r) for t, (c, r) in runner._compiled.items()}
    image = np.random.default_rng(0).integers(0, 256, (288, 384, 3), np.uint8)
    tiled = predictor.predict(image)
    assert tiled.tiles == 12 and freed == []  # 128 to 160 pixels a side: one set of buffers
    predictor.tile = 0
    whole = predictor.predict(image)  # larger than every tile: the tiles' buffers go first
    assert freed == [True] and whole.tiles == 1
    assert whole.count == pytest.approx(tiled.count, rel=0.05)
    predictor.predict(image[:64, :64])  # a small image after a large one
    assert freed == [True, True]
    predictor.predict(image[:48, :64])  # a little smaller again: the buffers are reused
    assert freed == [True, True]


def test_a_large_whole_image_runs_on_a_model_compiled_for_its_shape(tiny, converted, monkeypatch):
    """Whole images above STATIC_MIN_PIXELS run on a model of their exact shape (its buffers
    planned for it: about 0.8 GB less at 1024 x 768 fp32), compiled once per size and replaced by
    the next size's; the count is the dynamic model's."""
    from sasnet_core.engine import openvino_backend

    monkeypatch.setattr(openvino_backend, "STATIC_MIN_PIXELS", 128 * 128)
    predictor = Predictor(tiny, device="cpu", backend="openvino", precision="fp32", ov_cache=converted[0])
    runner = predictor.runner
    image = np.random.default_rng(0).integers(0, 256, (160, 224, 3), np.uint8)
    first = predictor.predict(image)
    key, compiled, _ = runner._static
    assert key[1] == (1, 3, 160, 224)
    assert [tuple(i.get_partial_shape().to_shape()) for i in compiled.inputs] == [(1, 3, 160, 224)]
    again = predictor.predict(image[::-1].copy())
    assert runner._static[1] is compiled, "the same size is not compiled again"
    predictor.predict(image[:144])
    assert runner._static[0][1] == (1, 3, 144, 224) and runner._static[1] is not compiled
    small = predictor.predict(image[:64, :64])  # below the threshold: the dynamic model
    assert runner._static is None and small.count >= 0

    dynamic = Predictor(tiny, device="cpu", backend="openvino", precision="fp32", ov_cache=converted[0])
    monkeypatch.setattr(openvino_backend, "STATIC_MIN_PIXELS", 10**9)
    assert dynamic.predict(image).count == pytest.approx(first.count, rel=1e-4)
    assert dynamic.runner._static is None
    assert again.count == pytest.approx(dynamic.predict(image[::-1].copy()).count, rel=1e-4)


_SIGNAL_AFTER_MODELS = r"""
import ctypes, gc, signal, subprocess, sys, time
import faulthandler
import numpy as np
faulthandler.enable()  # an alternate signal stack on this thread, as pytest and the app have
from sasnet_core.engine.inference import Predictor
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet


class StackT(ctypes.Structure):
    _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]


def alternate_stack_is_mapped():
    ss = StackT()
    ctypes.CDLL(None).sigaltstack(None, ctypes.byref(ss))
    sp = ss.sp or 0
    with open("/proc/self/maps") as maps:
        spans = [line.split()[0].split("-") for line in maps]
    return ss.flags != 0 or any(int(a, 16) <= sp < int(b, 16) for a, b in spans)


image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
first = Predictor(SASNet(SASNetConfig(width_mult=0.0625)), device="cpu", backend="openvino", precision="fp32")
first.predict(image)
second = Predictor(SASNet(SASNetConfig(width_mult=0.0625)), device="cpu", backend="openvino", precision="fp32")
second.predict(image)
del first; gc.collect()   # released in the order they were made, as models are swapped
del second; gc.collect()
assert alternate_stack_is_mapped(), "the thread's alternate signal stack points at freed memory"
signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, as torch's data loader installs
for _ in range(5):
    subprocess.Popen([sys.executable, "-c", "pass"]).wait()
time.sleep(0.2)
print("alive")
"""


def test_a_signal_after_models_are_swapped_is_handled_not_fatal(tmp_path):
    """OpenVINO's CPU plugin moves the thread onto an alternate signal stack of its own per Core and
    moves it back when that Core goes; Cores released in the order they were made left the thread
    on freed memory, and the next handled signal (a child's exit, Ctrl+C) killed the process with
    SIGSEGV. One shared Core keeps every model's stack valid."""
    import subprocess
    import sys

    env = dict(os.environ, SASNET_STUDIO_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _SIGNAL_AFTER_MODELS], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 0 and "alive" in out.stdout, (out.returncode, out.stderr[-2000:])
    assert openvino_backend.shared_core() is openvino_backend.shared_core()


_BEHIND_A_SILENT_PROXY = r"""
import os, signal, socket, sys, threading
import numpy as np

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
held = []

def accept_and_never_answer():
    while True:
        held.append(server.accept()[0])

threading.Thread(target=accept_and_never_answer, daemon=True).start()
proxy = "http://127.0.0.1:%d" % server.getsockname()[1]
for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
    os.environ[name] = proxy
for name in ("no_proxy", "NO_PROXY", "CI", "TF_BUILD", "JENKINS_URL"):  # CI markers decline by themselves
    os.environ.pop(name, None)
# The app's handler: saves the annotations and quits the event loop, never exits by itself.
signal.signal(signal.SIGTERM, lambda *_: None)

from sasnet_core.engine.inference import Predictor
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet

images = [np.random.default_rng(i).integers(0, 256, (64, 96, 3), dtype=np.uint8) for i in range(2)]
model = SASNet(SASNetConfig(width_mult=0.0625)).eval()
Predictor(model, device="cpu", backend="openvino", precision="fp32").predict(images[0])
Predictor(model, device="cpu", backend="openvino", precision="int8", calibration=images).predict(images[0])
print("connections:", len(held), flush=True)
"""


def test_counting_sends_no_telemetry_and_exits_behind_a_proxy_that_never_answers(tmp_path):
    """Importing OpenVINO, converting a model and quantizing it with NNCF each send usage
    telemetry unless a consent file says no, from a child forked from the process that waits on
    the network without a timeout; the process joins those children when it exits. Behind a
    proxy that holds the connection, with a SIGTERM handler like the app's, it never exited.
    Counting with OpenVINO and int8 in a fresh process with a new home: no connection is made,
    nothing is written into the home, and the process ends."""
    import subprocess
    import sys

    env = dict(os.environ, HOME=str(tmp_path), SASNET_STUDIO_HOME=str(tmp_path / "studio"))
    try:
        out = subprocess.run([sys.executable, "-c", _BEHIND_A_SILENT_PROXY], capture_output=True,
                             text=True, timeout=240, cwd=tmp_path, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the process did not exit: {exc.stdout!r}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "connections: 0" in out.stdout, out.stdout
    assert not (tmp_path / "intel").exists(), "telemetry's client id was written into the home"
