"""Reading ahead while counting: the next inputs are decoded (and downscaled) on a background thread
while the current batch is counted; results stay in input order, skipped inputs keep their one-line
reason, the read-ahead is bounded, and a stop leaves no thread behind.

The predictors here are stubs that wait for what the reader did (events, not clocks), so every
check is about order and counts, never about time.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sasnet_core.engine.counting import count_stream, default_read_ahead, video_frames
from sasnet_core.engine.inference import Predictor
from sasnet_core.engine.prefetch import THREAD_NAME, read_ahead
from sasnet_core.io.imageio import write_image
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet
from sasnet_core.util.cancel import CancelToken, checkpoint
from sasnet_core.util.errors import VideoReadError

WAIT_S = 30  # a guard against a hang, never a speed check


def _image(h, w, value):
    return np.full((h, w, 3), value, np.uint8)


def _reader_threads():
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


class _Stub:
    """A predictor that counts an image as its mean grey value (so a count names its image) and
    calls ``on_batch(images)`` first, on the counting thread."""

    device = SimpleNamespace(type="cpu")

    def __init__(self, on_batch=None):
        self.on_batch, self.batches = on_batch, []

    def predict_batch(self, images):
        self.batches.append(len(images))
        if self.on_batch is not None:
            self.on_batch(images)
        return [SimpleNamespace(count=float(np.asarray(im).mean()), image_size=(im.shape[1], im.shape[0]),
                                elapsed_s=0.0) for im in images]


class _Source:
    """An input source that records, for every input, which thread took it and how many results
    the consumer had received by then."""

    def __init__(self, items):
        self.items, self.pulled, self.threads = list(items), 0, []
        self.received = 0  # results the consumer has received, kept by the test
        self.ahead = []  # pulled minus received, at every pull
        self.was_pulled = [threading.Event() for _ in self.items]

    def __iter__(self):
        for k, item in enumerate(self.items):
            self.threads.append(threading.current_thread().name)
            self.pulled += 1
            self.ahead.append(self.pulled - self.received)
            self.was_pulled[k].set()
            yield item


def _consume(stream, source=None):
    out = []
    for r in stream:
        out.append(r)
        if source is not None:
            source.received += 1
    return out


# -- order and skipped inputs ------------------------------------------------------------------
def test_results_keep_input_order_with_good_broken_and_missing_files(tmp_path):
    paths = []
    for i, kind in enumerate(["good", "broken", "good", "missing", "folder", "good", "empty", "good"]):
        p = tmp_path / f"{i}_{kind}.png"
        if kind == "good":
            write_image(p, _image(32, 48 + 16 * (i % 2), 10 * i))
        elif kind == "broken":
            p.write_bytes(b"\x89PNG\r\n\x1a\n not really")
        elif kind == "folder":
            p.mkdir()
        elif kind == "empty":
            p.write_bytes(b"")
        paths.append(p)
    inputs = paths + [_image(32, 32, 200)]
    ahead = _consume(count_stream(_Stub(), inputs, batch_size=2, maps=False))
    one_by_one = _consume(count_stream(_Stub(), inputs, batch_size=2, maps=False, read_ahead=0))
    assert [r.path for r in ahead] == [str(p) for p in paths] + [""]
    assert [(r.path, r.count, r.error) for r in ahead] == [(r.path, r.count, r.error) for r in one_by_one]
    assert [r.skipped for r in ahead] == [False, True, False, True, True, False, True, False, False]
    assert [r.count for r in ahead if not r.skipped] == [0.0, 20.0, 50.0, 70.0, 200.0]
    assert "folder" in ahead[4].error and "empty" in ahead[6].error
    assert all("\n" not in r.error for r in ahead if r.skipped)
    assert _reader_threads() == []


def test_an_error_of_the_source_comes_out_after_the_inputs_before_it():
    def frames():
        yield _image(32, 32, 1)
        yield _image(32, 32, 2)
        raise VideoReadError("cannot open video (damaged file or unsupported codec)", "clip.mp4")

    got = []
    with pytest.raises(VideoReadError, match="clip.mp4"):
        for r in count_stream(_Stub(), frames(), batch_size=1, maps=False):
            got.append(r.count)
    assert got == [1.0, 2.0]
    assert _reader_threads() == []


def test_an_image_too_large_to_downscale_is_skipped_and_the_rest_counted():
    class _Prepares(_Stub):
        def prepare(self, image):
            if image.shape[0] > 64:
                raise MemoryError("cannot allocate 4 GB for the downscaled copy")
            return image

    results = list(count_stream(_Prepares(), [_image(32, 32, 1), _image(128, 32, 2), _image(32, 32, 3)],
                                batch_size=2, maps=False))
    assert [r.count for r in results] == [1.0, None, 3.0]
    assert results[1].error.startswith("out of memory (cannot allocate 4 GB")


# -- reading ahead, bounded ---------------------------------------------------------------------
def test_the_next_input_is_read_while_the_current_one_is_counted():
    source = _Source([_image(32, 32, v) for v in range(6)])
    read_during_count = []

    def wait_for_next(images):
        k = len(read_during_count)  # the input being counted (batch size 1)
        if k + 1 < len(source.items):
            read_during_count.append(source.was_pulled[k + 1].wait(WAIT_S))
        else:
            read_during_count.append(True)

    results = _consume(count_stream(_Stub(wait_for_next), source, batch_size=1, maps=False), source)
    assert [r.count for r in results] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert read_during_count == [True] * 6
    assert set(source.threads) == {THREAD_NAME}  # decoded off the counting thread
    assert _reader_threads() == []


@pytest.mark.parametrize("batch_size, depth", [(2, 3), (1, 1), (4, None)])
def test_read_ahead_holds_at_most_its_depth_beyond_the_batch_being_counted(batch_size, depth):
    n = 17
    source = _Source([_image(16, 16, v) for v in range(n)])
    limit = default_read_ahead(batch_size) if depth is None else depth
    handed, over = [0], []

    def at_the_bound(images):
        handed[0] += len(images)
        bound = min(n, handed[0] + limit)
        # The reader reaches its bound while this batch is counted...
        assert source.was_pulled[bound - 1].wait(WAIT_S)
        time.sleep(0.01)  # ...and, given the chance, reads no further
        over.append(source.pulled - bound)

    stub = _Stub(at_the_bound)
    results = _consume(count_stream(stub, source, batch_size=batch_size, maps=False, read_ahead=depth),
                       source)
    assert [r.count for r in results] == [float(v) for v in range(n)]
    assert over == [0] * len(stub.batches)
    assert max(source.ahead) == batch_size + limit  # decoded and not yet given back, at most
    assert _reader_threads() == []


def test_read_ahead_itself_refuses_a_depth_below_one():
    with pytest.raises(ValueError, match="depth"):
        next(read_ahead([1, 2], lambda x: x, 0))
    with pytest.raises(ValueError, match="read_ahead"):
        list(count_stream(_Stub(), [_image(16, 16, 0)], read_ahead=-1))


# -- stopping -----------------------------------------------------------------------------------
def _endless():
    v = 0
    while True:
        yield _image(16, 16, v % 250)
        v += 1


def test_a_stop_ends_the_reader_thread():
    token = CancelToken()

    def stop_on_second_batch(images):
        if len(stub.batches) == 2:  # a stop while the reader waits for room (the source never ends)
            token.cancel()
            checkpoint()  # where the model would notice it

    stub = _Stub(stop_on_second_batch)
    results = list(count_stream(stub, _endless(), batch_size=1, maps=False, cancel=token))
    assert len(results) == 1  # the second input was stopped while counted: no result for it
    assert _reader_threads() == []


def test_a_caller_that_stops_reading_results_leaves_no_reader_thread():
    stream = count_stream(_Stub(), _endless(), batch_size=2, maps=False)
    first = next(stream)
    assert first.count == 0.0 and len(_reader_threads()) == 1
    stream.close()
    assert _reader_threads() == []


# -- a queue that grows while it is counted (the app's) -----------------------------------------
def _queue_reader(queue: deque):
    """Like the app's file queue: take the next path until the queue is empty."""
    while queue:
        yield queue.popleft()


def test_inputs_added_to_a_growing_queue_are_counted_in_order():
    queue = deque(_image(16, 16, v) for v in (1, 2, 3, 4))

    def add_more(images):
        if len(stub.batches) == 1:
            queue.extend(_image(16, 16, v) for v in (5, 6))

    stub = _Stub(add_more)
    results = list(count_stream(stub, _queue_reader(queue), batch_size=1, maps=False, read_ahead=1))
    assert [r.count for r in results] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_without_read_ahead_an_input_added_while_the_last_is_counted_is_counted():
    queue = deque([_image(16, 16, 1)])

    def add_one(images):
        if len(stub.batches) == 1:
            queue.append(_image(16, 16, 2))

    stub = _Stub(add_one)
    results = list(count_stream(stub, _queue_reader(queue), batch_size=1, maps=False, read_ahead=0))
    assert [r.count for r in results] == [1.0, 2.0]
    assert _reader_threads() == []


# -- the real engine: downscaling ahead, same-size batches, threads ------------------------------
@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    return Predictor(SASNet(SASNetConfig(width_mult=0.125)), device="cpu", precision="fp32", max_side=64)


def test_images_of_one_size_after_downscaling_share_one_forward_pass(predictor, monkeypatch):
    passes, prepared_on = [], []
    forward, prepare = predictor._forward, predictor.prepare
    monkeypatch.setattr(predictor, "_forward", lambda x, **kw: passes.append(x.shape[0]) or forward(x, **kw))
    monkeypatch.setattr(predictor, "prepare",
                        lambda im: prepared_on.append(threading.current_thread().name) or prepare(im))
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
    large = rng.integers(0, 255, (128, 192, 3), dtype=np.uint8)  # 43 x 64 after downscaling, as small
    results = list(count_stream(predictor, [small, large], batch_size=2, maps=True))
    assert passes == [2]
    assert prepared_on == [THREAD_NAME, THREAD_NAME]
    assert [r.image_size for r in results] == [(96, 64), (192, 128)]  # original pixels
    assert results[1].patch_cols[-1] == 192 and results[1].density.sum() == pytest.approx(results[1].count, 1e-4)
    for im, r in zip([small, large], results):
        assert r.count == pytest.approx(predictor.predict(im).count, rel=1e-4)


@pytest.mark.parametrize("spare_core", [False, True])
def test_the_model_gets_every_core_unless_one_is_spared(spare_core):
    every = torch.get_num_threads()
    seen = []
    stub = _Stub(lambda images: seen.append(torch.get_num_threads()))
    worker = threading.Thread(  # as the app counts: on a worker thread
        target=lambda: list(count_stream(stub, [_image(16, 16, 0)] * 3, maps=False, spare_core=spare_core)))
    worker.start()
    worker.join(WAIT_S)
    want = max(1, min(every, (os.cpu_count() or 1) - 1)) if spare_core and (os.cpu_count() or 1) > 1 else every
    assert seen and set(seen) == {want}


# -- video --------------------------------------------------------------------------------------
def test_video_frames_are_decoded_ahead_in_order(tmp_path):
    from _gui_helpers import make_video

    path = make_video(tmp_path / "clip.avi", frames=9)
    decoded_on = []

    def recorded():
        for frame in video_frames(path, every_n=2):
            decoded_on.append(threading.current_thread().name)
            yield frame

    results = list(count_stream(_Stub(), recorded(), batch_size=2, maps=False))
    assert [r.frame for r in results] == [0, 2, 4, 6, 8]
    assert all(not r.skipped and r.path == str(path) for r in results)
    assert set(decoded_on) == {THREAD_NAME}
    assert _reader_threads() == []
