"""A disk that fills up while ``train`` or ``finetune`` saves: one line naming the file and "No space
left on device", the checkpoint that was there kept byte for byte, no temp file left.

The disk is made full where torch writes: the file object the checkpoint is saved through fails
with ENOSPC after a few kilobytes, as a real full disk does, so torch's own
"inline_container.cc ... unexpected pos" error is what the command has to turn into that line.
"""
from __future__ import annotations

import errno
import io

import pytest

from sasnet_core.training.synthetic import make_blob_dataset

TINY = ["--crop-size", "64", "--images-per-step", "2", "--workers", "0", "--no-progress", "--holdout", "0"]


class _FullDisk(io.FileIO):
    """A file on a disk with 4 KB left."""

    room = 4096

    def write(self, data):
        if self.tell() + len(memoryview(data)) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


@pytest.fixture
def full_disk(monkeypatch):
    """From now on checkpoints are saved onto a full disk."""
    from sasnet_core.weights import checkpoint

    def open_on_full_disk(path, mode="r", *args, **kwargs):
        assert "b" in mode
        return _FullDisk(path, mode.replace("b", ""))

    def fill():
        monkeypatch.setattr(checkpoint, "open", open_on_full_disk, raising=False)

    return fill


def _main(argv, capsys):
    from sasnet_core.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_naming(err: str, path) -> None:
    assert len(err.strip().splitlines()) == 1, err
    assert str(path) in err and "No space left on device" in err, err
    assert "Traceback" not in err and "inline_container" not in err, err


def test_train_on_a_full_disk_names_the_checkpoint_and_keeps_the_previous_one(tmp_path, capsys, full_disk):
    data, run = tmp_path / "blobs", tmp_path / "run"
    make_blob_dataset(data, 4, size=(96, 128), seed=1)
    common = ["train", data, "--out", run, "--width-mult", "0.125", "--encoder-weights", "none",
              "--val-every", "0", *TINY]
    code, _, err = _main([*common, "--steps", "1"], capsys)
    assert code == 0, err
    before = (run / "last.pth").read_bytes()

    full_disk()
    code, _, err = _main([*common, "--steps", "2", "--resume"], capsys)
    assert code == 2
    _one_line_naming(err, run / "last.pth")
    assert (run / "last.pth").read_bytes() == before  # the previous checkpoint, intact
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]


def test_finetune_on_a_full_disk_keeps_the_model_it_was_to_replace(tiny_weights, tmp_path, capsys, full_disk):
    from sasnet_core.weights.checkpoint import load_model

    data, out = tmp_path / "mine", tmp_path / "ft.pth"
    make_blob_dataset(data, 3, layout="annotations")
    argv = ["finetune", tiny_weights, data, "--out", out, "--steps", "1", *TINY]
    code, _, err = _main(argv, capsys)
    assert code == 0, err
    before = out.read_bytes()

    full_disk()
    code, _, err = _main([*argv, "--overwrite"], capsys)
    assert code == 2
    _one_line_naming(err, out)
    assert out.read_bytes() == before
    load_model(out)
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
