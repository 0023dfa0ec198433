"""`sasnet count` and `sasnet models` end to end, through the real entry point."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sasnet_core.cli import main
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet
from sasnet_core.weights.checkpoint import save_checkpoint
from sasnet_core.weights.registry import ModelRegistry

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def images(tmp_path):
    from sasnet_core.io.imageio import write_image

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
        rel = Path(r["path"]).relative_to(images)  # the sub-folder below the input folder is kept
        dens = np.load(tmp_path / "d" / rel.with_suffix(".npy"))
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


# -- inputs and outputs a person gets wrong ---------------------------------------------------------
def _write(path, h=40, w=48, seed=0):
    from sasnet_core.io.imageio import write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))
    return path


def test_same_name_in_two_folders_keeps_both_outputs(tiny_weights, tmp_path, capsys):
    root = tmp_path / "in"
    _write(root / "a" / "x.jpg", seed=1)
    _write(root / "b" / "x.jpg", h=56, seed=2)
    out = tmp_path / "out"
    rc = main(["count", str(root), "--weights", str(tiny_weights), "--json",
               "--save-density", str(out / "d"), "--save-points", str(out / "p")])
    assert rc == 0
    rows = {Path(r["path"]).parent.name: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    for sub, r in rows.items():
        dens = np.load(out / "d" / sub / "x.npy")
        assert dens.shape == (r["height"], r["width"])  # each image its own file, not one overwritten
        assert float(dens.sum()) == pytest.approx(r["count"], rel=1e-3, abs=1e-4)
        assert (out / "p" / sub / "x.txt").is_file()
    assert sorted(rows) == ["a", "b"] and rows["a"]["height"] != rows["b"]["height"]


@pytest.mark.parametrize("layout", [("a/x.jpg", "a/x.png"), ("a/x.jpg", "b/x.jpg")])
def test_outputs_that_would_still_collide_are_refused_naming_both(tiny_weights, tmp_path, capsys, layout):
    paths = [_write(tmp_path / "in" / rel) for rel in layout]
    # side by side in one folder, or two files given by name: both would be <out>/x.npy
    args = [str(tmp_path / "in" / "a")] if layout[1].startswith("a/") else [str(p) for p in paths]
    rc = main(["count", *args, "--weights", str(tiny_weights), "--save-density", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(paths[0]) in err and str(paths[1]) in err
    assert not (tmp_path / "d").exists()  # refused before anything was counted or written


def test_json_gives_every_skipped_input_one_record(tiny_weights, images, tmp_path, capsys):
    (images / "broken.png").write_bytes(b"\x89PNG garbage")
    (images / "empty.jpg").write_bytes(b"")
    rc = main(["count", str(images), str(tmp_path / "missing.jpg"), "--weights", str(tiny_weights), "--json"])
    assert rc == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    skipped = {Path(r["path"]).name: r for r in rows if r.get("skipped")}
    assert sorted(skipped) == ["broken.png", "empty.jpg", "missing.jpg"]
    for r in skipped.values():
        assert r["count"] is None and r["error"]
    assert "empty" in skipped["empty.jpg"]["error"]
    assert sorted(Path(r["path"]).name for r in rows if not r.get("skipped")) == ["one.png", "two.jpg"]


def test_a_non_finite_count_is_an_error_record_not_nan(tmp_path, images, capsys):
    torch.manual_seed(0)
    model = SASNet(SASNetConfig(width_mult=0.125))
    with torch.no_grad():  # finite weights whose densities overflow float32
        for name, param in model.named_parameters():
            if "density" in name and name.endswith("bias"):
                param.fill_(3e38)
    weights = save_checkpoint(tmp_path / "huge.pth", model, {"name": "huge"})
    # torch carries the overflow through as inf/NaN (OpenVINO's fused kernels saturate instead),
    # which is the path this checks: a non-finite count must never be printed as a number.
    rc = main(["count", str(images / "one.png"), "--weights", str(weights), "--json", "--backend", "torch"])
    captured = capsys.readouterr()
    assert rc == 1
    rows = [json.loads(line, parse_constant=pytest.fail) for line in captured.out.splitlines()]  # no NaN token
    assert len(rows) == 1 and rows[0]["count"] is None and rows[0]["skipped"] and rows[0]["error"]
    assert "one.png" in captured.err


@pytest.mark.parametrize("option, value", [
    ("--batch-size", "0"), ("--batch-size", "-1"), ("--tile", "-5"), ("--tile", "10"),
    ("--max-side", "10"), ("--every", "0"), ("--time-step", "-1"), ("--time-step", "nan"),
    ("--device", "banana"),
])
def test_bad_options_are_usage_errors(images, option, value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["count", str(images), option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err and value in err


def test_save_dirs_that_are_files_are_usage_errors(images, tmp_path, capsys):
    file = tmp_path / "taken.txt"
    file.write_text("x")
    for option in ("--save-density", "--save-points"):
        with pytest.raises(SystemExit) as exc:
            main(["count", str(images), option, str(file)])
        assert exc.value.code == 2 and "taken.txt: is a file, not a folder" in capsys.readouterr().err


def test_video_whose_container_states_no_length_is_counted_in_full(tiny_weights, tmp_path, capsys):
    from hostile.media import make_mkv_without_duration

    video = make_mkv_without_duration(tmp_path / "rec.mkv", frames=9)
    assert main(["count", str(video), "--weights", str(tiny_weights), "--json", "--every", "3"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["frame"] for r in rows] == [0, 3, 6]
    assert all(r["count"] is not None for r in rows)


def test_only_missing_inputs_give_one_sentence_each_and_no_closing_line(tiny_weights, tmp_path, capsys):
    assert main(["count", str(tmp_path / "missing.jpg"), "--weights", str(tiny_weights)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"sasnet count: error: {tmp_path / 'missing.jpg'}: no such file or folder; nothing to count"]
    assert main(["count", str(tmp_path / "gone.jpg"), str(tmp_path / "also_gone"),
                 "--weights", str(tiny_weights)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "gone.jpg" in err[0] and "also_gone" in err[1]
    assert not any("nothing to count" in line for line in err)


@pytest.mark.parametrize("option, suffix", [("--save-density", ".npy"), ("--save-points", ".txt")])
def test_saved_files_of_an_earlier_run_are_kept_unless_overwrite(tiny_weights, images, tmp_path, capsys,
                                                                  option, suffix):
    out = tmp_path / "out"
    earlier = out / "b" / f"two{suffix}"
    earlier.parent.mkdir(parents=True)
    earlier.write_text("an earlier run\n")
    argv = ["count", str(images), "--weights", str(tiny_weights), option, str(out), "--no-progress"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before counting anything
    assert str(earlier) in captured.err and "--overwrite" in captured.err and len(captured.err.splitlines()) == 1
    assert earlier.read_text() == "an earlier run\n" and not (out / f"one{suffix}").exists()
    assert main([*argv, "--overwrite"]) == 0
    assert earlier.read_bytes() != b"an earlier run\n" and (out / f"one{suffix}").is_file()
    # files of an earlier run in two folders: the message names the folder holding both
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{out}: 2 output file(s) of an earlier run exist" in err


def test_earlier_video_frame_files_are_refused_too(tiny_weights, tmp_path, capsys):
    from test_imageio_video import make_video

    video = make_video(tmp_path / "clip.avi", frames=4)
    argv = ["count", str(video), "--weights", str(tiny_weights), "--save-points", str(tmp_path / "p"),
            "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2
    assert "clip_frame000000.txt" in capsys.readouterr().err


@pytest.mark.parametrize("argv, usage", [
    (["count", "x.jpg", "--frobnicate"], "usage: sasnet count"),
    (["eval", "DATA", "--no-such-option"], "usage: sasnet eval"),
    (["models", "add", "a", "b.pth", "--frobnicate"], "usage: sasnet models add"),
    (["finetune", "w.pth", "data", "--out", "n.pth", "--frobnicate"], "usage: sasnet finetune"),
])
def test_an_unknown_option_is_reported_with_the_usage_of_its_command(argv, usage, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and usage in err and "unrecognized arguments: --" in err
    assert "COMMAND ..." not in err  # not the top-level usage


def test_every_command_with_a_progress_bar_takes_no_progress():
    from sasnet_core.cli import build_parser

    parser = build_parser()
    for argv in (["count", "x.jpg"], ["rank", "x"], ["eval", "DATA"], ["train", ".", "--out", "r"],
                 ["finetune", "w", "d", "--out", "n.pth"], ["models", "list"], ["models", "add", "n", "f"],
                 ["models", "download", "shha"]):
        args = parser.parse_args([*argv, "--no-progress"])
        assert getattr(args, "no_progress", None) is True or getattr(args, "progress", None) is False, argv


def test_precision_choices_come_from_the_shared_vocabulary():
    from sasnet_core.cli import build_parser
    from sasnet_core.util import vocab

    parser = build_parser()
    for command, offered in (("count", vocab.INFERENCE_PRECISIONS), ("rank", vocab.INFERENCE_PRECISIONS),
                             ("eval", vocab.INFERENCE_PRECISIONS), ("train", vocab.TRAINING_PRECISIONS),
                             ("finetune", vocab.TRAINING_PRECISIONS)):
        sub = next(a for a in parser._subparsers._group_actions[0].choices[command]._actions
                   if "--precision" in a.option_strings)
        assert sub.choices == vocab.choices(offered), command
        assert "fp16" in sub.help  # each help says where fp16 is offered, and why not for training


def test_finetune_replaces_its_output_with_overwrite_and_still_accepts_force():
    from sasnet_core.cli import build_parser

    parser = build_parser()
    base = ["finetune", "w.pth", "data", "--out", "new.pth"]
    assert parser.parse_args([*base, "--overwrite"]).overwrite is True
    assert parser.parse_args([*base, "--force"]).overwrite is True  # scripts written for the old name
    assert parser.parse_args(base).overwrite is False
    assert "--force" not in parser._subparsers._group_actions[0].choices["finetune"].format_help()


def test_count_shows_the_tiles_of_an_image_on_stderr(tiny_weights, tmp_path):
    """The real entry point with forced tiles: the person sees tiles done / all and an ETA."""
    import os

    from sasnet_core.io.imageio import write_image

    image = tmp_path / "wide.png"
    write_image(image, np.random.default_rng(0).integers(0, 255, (96, 160, 3), dtype=np.uint8))
    env = {**os.environ, "SASNET_PROGRESS": "1", "SASNET_STUDIO_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "sasnet_core", "count", str(image), "--weights", str(tiny_weights),
                           "--tile", "64", "--backend", "torch"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{image}\t")
    frames = done.stderr.splitlines()  # the bar redraws with "\r": a line each in text mode
    tiles = [f for f in frames if f.startswith("wide.png tiles: [")]
    assert len(tiles) >= 2, done.stderr
    assert tiles[-1].split("] ")[1].split()[0] == "6/6"
    assert all("ETA" in t for t in tiles)
    assert "note:" not in done.stderr  # 15,360 pixels: no hint of --max-side


def test_an_image_above_the_megapixel_threshold_gets_the_max_side_hint(tiny_weights, tmp_path, capsys,
                                                                        monkeypatch):
    from sasnet_core.engine import inference
    from sasnet_core.io.imageio import write_image

    big, small = tmp_path / "big.png", tmp_path / "small.png"
    rng = np.random.default_rng(0)
    write_image(big, rng.integers(0, 255, (96, 160, 3), dtype=np.uint8))  # 0.015 megapixels
    write_image(small, rng.integers(0, 255, (96, 100, 3), dtype=np.uint8))  # 0.0096
    monkeypatch.setattr(inference, "LARGE_IMAGE_MEGAPIXELS", 0.01)  # as 48 MP is to the real one
    rc = main(["count", str(big), str(small), "--weights", str(tiny_weights), "--tile", "64", "--backend", "torch",
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0
    notes = [line for line in err.splitlines() if "note:" in line]
    assert len(notes) == 1 and notes[0].startswith(f"sasnet count: note: {big}: 160 x 96 pixels")
    assert "--max-side 4096 counts it at" in notes[0]
    assert "tiles" not in err  # --no-progress: the hint is advice, the bars are not drawn
