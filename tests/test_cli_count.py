"""`sasnet count` and `sasnet models` end to end, through the real entry point."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sasnet_core.checkpoint import save_checkpoint
from sasnet_core.cli import main
from sasnet_core.model import SASNet, SASNetConfig
from sasnet_core.registry import ModelRegistry

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    save_checkpoint(path, SASNet(SASNetConfig(width_mult=0.125)), {"name": "tiny"})
    return path


@pytest.fixture
def images(tmp_path):
    from sasnet_core.imageio import write_image

    rng = np.random.default_rng(0)
    (tmp_path / "a" / "b").mkdir(parents=True)
    write_image(tmp_path / "a" / "one.png", rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    write_image(tmp_path / "a" / "b" / "two.jpg", rng.integers(0, 255, (70, 90, 3), dtype=np.uint8))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    return tmp_path / "a"


def test_count_folder_recursively_as_json_and_save_density(tiny_weights, images, tmp_path, capsys):
    rc = main(["count", str(images), "--weights", str(tiny_weights), "--json", "--save-density", str(tmp_path / "d")])
    assert rc == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["two.jpg", "one.png"]  # sorted, recursive
    assert (rows[0]["width"], rows[0]["height"]) == (90, 70)
    for r in rows:
        dens = np.load(tmp_path / "d" / f"{Path(r['path']).stem}.npy")
        assert dens.dtype == np.float32 and dens.shape == (r["height"], r["width"])
        assert float(dens.sum()) == pytest.approx(r["count"], rel=1e-3, abs=1e-4)


def test_count_video_frames(tiny_weights, tmp_path, capsys):
    from test_imageio_video import make_video

    video = make_video(tmp_path / "clip.avi", frames=12)
    assert main(["count", str(video), "--weights", str(tiny_weights), "--json", "--every", "4"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["frame"] for r in rows] == [0, 4, 8]
    assert [r["time_s"] for r in rows] == pytest.approx([0.0, 0.4, 0.8])
    assert all(r["count"] is not None and r["width"] == 64 for r in rows)


def test_bad_inputs_are_reported_and_counting_goes_on(tiny_weights, images, tmp_path, capsys):
    (images / "broken.png").write_bytes(b"\x89PNG garbage")
    rc = main(["count", str(images), str(tmp_path / "missing.jpg"), "--weights", str(tiny_weights), "--json"])
    captured = capsys.readouterr()
    assert rc == 1
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert sum(r["count"] is not None for r in rows) == 2
    assert any(r.get("error") and r["path"].endswith("broken.png") for r in rows)
    assert "missing.jpg: no such file or folder" in captured.err
    assert "broken.png" in captured.err


def test_no_model_at_all_says_how_to_get_one(images, capsys):
    assert main(["count", str(images)]) == 2
    err = capsys.readouterr().err
    assert "no model given and none registered" in err and "sasnet models add" in err


def test_registry_names_work_as_weights(tiny_weights, images, capsys):
    assert main(["models", "add", "tiny", str(tiny_weights), "--default"]) == 0
    assert main(["models", "list"]) == 0
    assert "* tiny" in capsys.readouterr().out
    assert main(["count", str(images / "one.png"), "--weights", "tiny"]) == 0
    assert main(["count", str(images / "one.png")]) == 0  # the default model
    assert main(["count", str(images / "one.png"), "--weights", "nosuch"]) == 2
    assert "no registered model named 'nosuch'" in capsys.readouterr().err
    assert main(["models", "add", "tiny", str(tiny_weights)]) == 2  # duplicate name
    assert main(["models", "remove", "tiny"]) == 0
    assert ModelRegistry().entries() == []


def test_registry_refuses_non_checkpoints_and_survives_a_vanished_file(tmp_path, tiny_weights, images, capsys):
    junk = tmp_path / "junk.pth"
    junk.write_text("hello")
    assert main(["models", "add", "junk", str(junk)]) == 2
    assert "junk.pth" in capsys.readouterr().err
    copy = tmp_path / "copy.pth"
    copy.write_bytes(tiny_weights.read_bytes())
    reg = ModelRegistry()
    reg.add("c", copy)
    copy.unlink()
    assert main(["count", str(images / "one.png"), "--weights", "c"]) == 2
    assert "is gone" in capsys.readouterr().err


def test_console_script_help_is_readable():
    out = subprocess.run([sys.executable, "-m", "sasnet_core", "count", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--weights", "--json", "--save-density", "--device", "--precision", "--max-side", "--tile"):
        assert flag in out.stdout


@pytest.mark.skipif(not (DATA / "ucf_cc_50").exists(), reason="shared UCF_CC_50 data not found")
def test_count_real_grayscale_ucf_images(tiny_weights, capsys):
    paths = [str(DATA / "ucf_cc_50" / f"{i}.jpg") for i in (1, 2)]
    assert main(["count", *paths, "--weights", str(tiny_weights), "--json", "--max-side", "512"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and all(r["count"] > 0 and r["width"] > 512 for r in rows)
