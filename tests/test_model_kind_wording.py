""""released" only for the verified released files: a checkpoint merely in the authors' key layout
(here random weights) is "authors' layout" in `sasnet models list`, the Models dialog and the
Fine-tune panel alike (one wording, ``sasnet_core.weights.released.kind_label``)."""
from __future__ import annotations

import pytest

from sasnet_core.cli import main
from sasnet_core.weights.registry import ModelRegistry
from sasnet_core.weights.released import MODIFIED, VERIFIED, kind_label


@pytest.fixture(scope="module")
def lookalike(tmp_path_factory):
    """Random full-size SASNet weights saved as the authors save theirs: a bare state dict."""
    import torch

    from sasnet_core.model.sasnet import SASNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("lookalike") / "crowd_weights.pth"
    torch.save(SASNet().state_dict(), path)
    return path


def test_the_wording_owner():
    assert kind_label("released", {}, VERIFIED) == "released (authors', verified)"
    assert kind_label("released", {}, MODIFIED) == "modified released model"
    assert kind_label("released", {}, None) == "authors' layout"  # not hashed: never "released"
    assert kind_label("released", {}, "other") == "authors' layout"
    assert kind_label("ours", {"kind": "finetuned"}, "other") == "finetuned"
    assert kind_label("ours", {}, "other") == "ours"


def test_a_random_checkpoint_in_the_released_layout_is_not_called_released(qtbot, lookalike, capsys):
    ModelRegistry().add("lookalike", lookalike, make_default=True)

    assert main(["models", "list", "--no-progress"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "lookalike" in line)
    assert "authors' layout" in line and "released" not in line

    from sasnet_gui.models.dialog import describe

    assert describe(ModelRegistry().get("lookalike"))["Kind"] == "authors' layout"

    from sasnet_gui.finetune.panel import FineTunePanel
    from sasnet_gui.models.controller import ModelController

    controller = ModelController(load_default=False)
    controller.backend = "torch"  # no OpenVINO conversion of a throw-away model
    with qtbot.waitSignal(controller.predictorChanged, timeout=120_000):
        controller.load_default()
    assert controller.current_kind() == "authors' layout"
    panel = FineTunePanel(controller)
    qtbot.addWidget(panel)
    text = panel.model_label.text()
    assert "lookalike" in text and "(authors' layout)" in text and "released" not in text
    panel.shutdown()
