"""The input collector: files, folders and videos -> one ordered list, and the same list everywhere."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from sasnet_core.annotations.annotation import Annotation, save_annotation
from sasnet_core.io.imageio import write_image
from sasnet_core.io.inputs import collect_inputs, natural_key


def _image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.random.default_rng(seed).integers(0, 255, (32, 40, 3), dtype=np.uint8))
    return path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "shots"
    for name in ("IMG_10.jpg", "IMG_2.jpg", "img_1.png", "sub/IMG_3.jpg", "Sub2/a.png"):
        _image(root / name)
    (root / ".hidden.jpg").write_bytes(b"x")
    (root / ".cache" / "c.jpg").parent.mkdir()
    (root / ".cache" / "c.jpg").write_bytes(b"x")
    (root / ".IMG_2.jpg.sasnet.json.abc123.tmp").write_text("{}")  # an interrupted save of ours
    (root / ".IMG_2.jpg.k2j3.tmp").write_bytes(b"x")
    (root / "notes.txt").write_text("x")
    (root / "clip.mp4").write_bytes(b"\x00")
    return root


def test_natural_order_hidden_and_temp_files_skipped(folder):
    found = collect_inputs([folder])
    rel = [p.relative_to(folder).as_posix() for p in found.images]
    assert rel == ["img_1.png", "IMG_2.jpg", "IMG_10.jpg", "sub/IMG_3.jpg", "Sub2/a.png"]
    assert [p.name for p in found.videos] == ["clip.mp4"]
    assert found.problems == []  # a text file inside a folder is not a problem, just not an input
    assert found.relative_name(folder / "sub" / "IMG_3.jpg") == Path("sub/IMG_3.jpg")


def test_arguments_keep_their_order_without_repeats(folder):
    found = collect_inputs([folder / "IMG_10.jpg", folder, folder / "sub" / ".." / "IMG_2.jpg"])
    names = [p.name for p in found.images]
    assert names[0] == "IMG_10.jpg" and len(names) == len(set(names)) == 5
    assert found.relative_name(found.images[0]) == Path("IMG_10.jpg")


def test_what_cannot_be_taken_is_reported_by_path(tmp_path, folder):
    (tmp_path / "x.jpg").mkdir()  # a folder named like an image
    (tmp_path / "empty").mkdir()
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    found = collect_inputs([tmp_path / "missing.jpg", tmp_path / "x.jpg", folder / "notes.txt",
                            tmp_path / "empty", tmp_path / "pipe.jpg", tmp_path / "dangling.jpg"])
    messages = {p.path.name: p.message for p in found.problems}
    assert messages["missing.jpg"] == "no such file or folder"
    assert "a folder, not an image or video file" in messages["x.jpg"]
    assert "not an image or video" in messages["notes.txt"]
    assert "holds no images or videos" in messages["empty"]
    assert "not a regular file" in messages["pipe.jpg"]
    assert "broken symbolic link" in messages["dangling.jpg"]
    assert str(found.problems[0]) == f"{tmp_path / 'missing.jpg'}: no such file or folder"
    assert found.images == [] and found.videos == []


def test_symlink_loops_are_reported_and_not_followed(folder):
    (folder / "sub" / "back").symlink_to(folder, target_is_directory=True)
    (folder / "sub" / "self").symlink_to(folder / "sub", target_is_directory=True)
    found = collect_inputs([folder])
    assert len(found.images) == 5
    loops = sorted(p.path.name for p in found.problems if "symbolic link loop" in p.message)
    assert loops == ["back", "self"]


def test_a_folder_that_cannot_be_read_is_reported(folder, monkeypatch):
    # Permissions do not stop root (tests may run as root), so the refusal is simulated at scandir.
    real = os.scandir

    def scandir(path):
        if Path(path).name == "sub":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = collect_inputs([folder])
    assert [p.relative_to(folder).as_posix() for p in found.images][-1] == "Sub2/a.png"
    assert len(found.images) == 4
    (problem,) = found.problems
    assert problem.path == folder / "sub" and "cannot be read (Permission denied)" in problem.message
    (problem,) = collect_inputs(folder / "sub").problems  # named once, not also as "holds no images"
    assert problem.path == folder / "sub" and "cannot be read (Permission denied)" in problem.message


def test_natural_key_compares_numbers_as_numbers_part_by_part():
    names = ["b/IMG_1.jpg", "a10/x.jpg", "a2/x.jpg", "IMG_10.jpg", "img_9.jpg"]
    assert sorted(names, key=natural_key) == ["a2/x.jpg", "a10/x.jpg", "b/IMG_1.jpg", "img_9.jpg", "IMG_10.jpg"]


def test_the_same_folder_gives_the_same_list_to_count_and_eval(folder, tmp_path, capsys):
    import torch

    from sasnet_core.cli import main
    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet
    from sasnet_core.weights.checkpoint import save_checkpoint

    for image in collect_inputs([folder]).images:
        save_annotation(Annotation(str(image), None, np.zeros((0, 2))), f"{image}.sasnet.json")
    torch.manual_seed(0)
    weights = save_checkpoint(tmp_path / "w.pth", SASNet(SASNetConfig(width_mult=0.0625)))
    expected = [str(p) for p in collect_inputs([folder]).images]

    main(["count", str(folder), "--weights", str(weights), "--json", "--no-progress"])
    counted = [r["path"] for r in map(json.loads, capsys.readouterr().out.splitlines()) if "frame" not in r
               and not r["path"].endswith(".mp4")]
    assert counted == expected

    assert main(["eval", str(folder), "--weights", str(weights), "--json", "--device", "cpu"]) == 0
    evaluated = [r["image"] for r in json.loads(capsys.readouterr().out)["images"]]
    assert evaluated == expected


def test_things_named_like_images_inside_a_folder_are_reported(folder):
    os.mkfifo(folder / "sub" / "pipe.jpg")
    (folder / "sub" / "gone.png").symlink_to(folder / "nowhere.png")
    (folder / "sub" / "gone_notes").symlink_to(folder / "nowhere")  # not named like an input
    found = collect_inputs([folder])
    assert len(found.images) == 5
    messages = {p.path.relative_to(folder).as_posix(): p.message for p in found.problems}
    assert messages == {"sub/gone.png": "broken symbolic link (its target does not exist)",
                        "sub/pipe.jpg": "not a regular file (a device, pipe or socket)"}
