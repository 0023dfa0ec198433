"""One vocabulary: the CLI's options, TrainConfig and the app read the same lists."""
from __future__ import annotations

import pytest

from sasnet_core.cli import build_parser, main
from sasnet_core.util import vocab


def _option(command: str, flag: str):
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    return next(a for a in sub._actions if flag in a.option_strings)


@pytest.mark.parametrize("command, precisions", [("count", vocab.INFERENCE_PRECISIONS),
                                                 ("eval", vocab.INFERENCE_PRECISIONS),
                                                 ("train", vocab.TRAINING_PRECISIONS),
                                                 ("finetune", vocab.TRAINING_PRECISIONS)])
def test_command_line_choices_come_from_the_vocabulary(command, precisions):
    assert [str(c) for c in _option(command, "--precision").choices] == [str(p) for p in precisions]
    assert _option(command, "--device").type is vocab.device_arg


def test_the_app_offers_the_same_words():
    from sasnet_core.training.config import TrainConfig
    from sasnet_gui.files.model import Status
    from sasnet_gui.models.controller import DEVICES, PRECISIONS

    assert DEVICES == vocab.DEVICES and PRECISIONS == vocab.INFERENCE_PRECISIONS
    assert Status is vocab.FileStatus
    assert TrainConfig().precision == vocab.DEFAULT_TRAINING_PRECISION
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        TrainConfig(precision="fp16")


@pytest.mark.parametrize("text, ok", [("auto", True), ("CPU", True), ("cuda:1", True), ("mps", True),
                                      ("banana", False), ("cuda:", False), ("cuda:-1", False)])
def test_device_option(text, ok, capsys):
    if ok:
        assert vocab.device_arg(text) == text.lower()
        return
    with pytest.raises(SystemExit) as stop:
        main(["count", "x.jpg", "--device", text])
    assert stop.value.code == 2
    assert f"{text!r} is not a device" in capsys.readouterr().err
