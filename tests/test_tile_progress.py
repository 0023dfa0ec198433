"""Long counting says how long: tile events of one large image, their ETA, the bar's heartbeat off
a terminal, and the hint of downscaling for an image of tens of megapixels."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from sasnet_core.engine.counting import count_stream
from sasnet_core.engine.inference import (
    LARGE_IMAGE_MEGAPIXELS,
    Predictor,
    large_image_hint,
)
from sasnet_core.engine.tiling import plan_tiles
from sasnet_core.io.imageio import read_image, write_image
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet
from sasnet_core.util.progress import Progress, TileProgress, human_duration


@pytest.fixture(scope="module")
def tiled_predictor():
    """A tiny SASNet that cuts every image above 64 pixels into 64 x 64 tiles (torch: no
    conversion, so the test stays fast)."""
    torch.manual_seed(0)
    return Predictor(SASNet(SASNetConfig(width_mult=0.125)), device="cpu", precision="fp32",
                     backend="torch", tile=64, keep_levels=False)


def _image(path, h, w, seed=0):
    write_image(path, np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))
    return path


def test_each_tile_of_a_large_image_is_reported_with_its_image_and_an_eta(tiled_predictor, tmp_path):
    big = _image(tmp_path / "big.png", 96, 160)
    small = _image(tmp_path / "small.png", 48, 48, seed=1)  # one pass, no tiles: no events
    other = _image(tmp_path / "other.png", 128, 64, seed=2)
    events: list[tuple[str, TileProgress]] = []
    results = list(count_stream(tiled_predictor, [big, small, other], batch_size=3,
                                on_tile=lambda path, ev: events.append((path, ev))))
    assert [r.count is not None for r in results] == [True, True, True]

    for path, (h, w) in ((big, (96, 160)), (other, (128, 64))):
        mine = [ev for p, ev in events if p == str(path)]
        n = len(plan_tiles(h, w, 64, tiled_predictor.margin, 32))
        assert n > 1 and [ev.done for ev in mine] == list(range(n + 1))  # before the first, then each
        assert {ev.total for ev in mine} == {n} and {ev.size for ev in mine} == {(w, h)}
        elapsed = [ev.elapsed_s for ev in mine]
        assert elapsed == sorted(elapsed) and elapsed[-1] > 0
        assert mine[0].eta_s == math.inf and mine[-1].eta_s == 0.0
        assert all(math.isfinite(ev.eta_s) for ev in mine[1:])
        assert mine[-1].fraction == 1.0
    assert not [p for p, _ in events if p == str(small)]
    # reporting changes nothing of the count
    assert results[0].count == pytest.approx(tiled_predictor.predict(read_image(big)).count, rel=1e-5)


def test_the_eta_and_its_words():
    ev = TileProgress(done=3, total=12, elapsed_s=6.0)
    assert ev.eta_s == pytest.approx(18.0) and ev.fraction == 0.25
    assert ev.text() == "tile 3/12 \u00b7 18 s left"
    assert TileProgress(0, 12, 0.0).text() == "tile 0/12"  # nothing measured yet: no guess
    assert TileProgress(12, 12, 30.0).text() == "tile 12/12"
    assert [human_duration(s) for s in (None, float("inf"), 0.4, 45, 200, 3725)] == [
        "\u2013", "\u2013", "0 s", "45 s", "3 min 20 s", "1 h 02 min"]


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_off_a_terminal_a_long_bar_writes_a_line_now_and_then(monkeypatch):
    """In a log or a pipe, minutes of silence look like a hang: a line every heartbeat."""
    monkeypatch.delenv("SASNET_PROGRESS", raising=False)
    clock = _Clock()
    monkeypatch.setattr("sasnet_core.util.progress.time.monotonic", clock)
    out = io.StringIO()
    bar = Progress(100, desc="big.jpg tiles", stream=out, unit="tile", heartbeat_s=10.0, leave=False)
    clock.now += 5
    bar.update(10)
    assert out.getvalue() == ""  # quick work stays quiet
    clock.now += 6
    bar.update(10)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "big.jpg tiles" in lines[0] and "20/100" in lines[0] and "ETA 00:44" in lines[0]
    clock.now += 1
    bar.update(10)
    assert len(out.getvalue().splitlines()) == 1  # not before the next heartbeat
    clock.now += 15
    bar.update(70)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "100/100" in lines[-1]

    quiet = io.StringIO()  # a short image's bar, leave=False: nothing at all in the log
    bar = Progress(4, stream=quiet, heartbeat_s=10.0, leave=False)
    bar.update(4)
    bar.close()
    assert quiet.getvalue() == ""


def test_a_photo_of_tens_of_megapixels_gets_the_hint_of_downscaling():
    hint = large_image_hint((8000, 6000), "--max-side")
    assert hint is not None and "48 megapixels" in hint and "--max-side 4096" in hint
    assert "4096 x 3072" in hint and "heads shrink" in hint
    assert large_image_hint((1920, 1080), "--max-side") is None
    assert large_image_hint((3840, 2160), "--max-side") is None  # a 4K frame is common and fine
    side = math.isqrt(int(LARGE_IMAGE_MEGAPIXELS * 1e6)) + 1
    assert large_image_hint((side, side), "X") is not None
