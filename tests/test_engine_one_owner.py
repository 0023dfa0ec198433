"""One owner for each engine concept: the device a preference means, the model's input, the patch
grid of a result, the patch size and the engine's defaults. Counting, training, the CLI and the
Python API ask the same owner, so they cannot drift apart."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from _data_paths import STREET_B, need

from sasnet_core.engine import choice
from sasnet_core.engine.inference import Predictor
from sasnet_core.model.config import PATCH_SIZE, SASNetConfig
from sasnet_core.model.sasnet import SASNet
from sasnet_core.training import distributed
from sasnet_core.util.errors import DeviceUnavailableError


def _machine(monkeypatch, cuda: int = 0, mps: bool = False) -> None:
    """Pretend this machine has ``cuda`` CUDA GPUs and maybe an Apple GPU. Moving a model to a GPU
    that is not there keeps it on the CPU, so a Predictor can be built for the pretended device."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (8 * 2**30, 16 * 2**30))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    real_to = torch.nn.Module.to

    def to(self, *args, **kwargs):
        if args and isinstance(args[0], (torch.device, str)) and torch.device(args[0]).type != "cpu":
            return self
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)


# -- device choice ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cuda, mps, expected", [(2, True, "cuda:0"), (0, True, "mps"), (0, False, "cpu")])
def test_auto_picks_cuda_then_mps_then_the_cpu(monkeypatch, cuda, mps, expected):
    _machine(monkeypatch, cuda=cuda, mps=mps)
    assert choice.choose_device("auto") == torch.device(expected)


def test_auto_and_plain_cuda_pick_the_gpu_of_this_process_under_torchrun(monkeypatch):
    _machine(monkeypatch, cuda=2)
    assert choice.choose_device("auto", local_rank=1) == torch.device("cuda:1")
    assert choice.choose_device("cuda", local_rank=1) == torch.device("cuda:1")
    assert choice.choose_device("cuda:0", local_rank=1) == torch.device("cuda:0")


def test_a_gpu_index_beyond_the_machine_is_one_line_naming_it_and_what_there_is(monkeypatch):
    _machine(monkeypatch, cuda=2)
    with pytest.raises(DeviceUnavailableError) as err:
        choice.choose_device("cuda:3")
    text = str(err.value)
    assert "\n" not in text
    assert "cuda:3" in text and "2 CUDA GPU" in text and "cuda:0 to cuda:1" in text


@pytest.mark.parametrize("asked, words", [("cuda", ["cuda", "no CUDA GPU"]), ("cuda:1", ["cuda:1", "no CUDA GPU"]),
                                          ("mps", ["mps", "MPS"]), ("banana", ["banana", "not a device"])])
def test_a_device_that_is_not_here_is_refused_in_words(monkeypatch, asked, words):
    _machine(monkeypatch)
    with pytest.raises(DeviceUnavailableError) as err:
        choice.choose_device(asked)
    assert all(w in str(err.value) for w in words), str(err.value)


@pytest.mark.parametrize("cuda, mps", [(2, False), (0, True), (0, False)])
@pytest.mark.parametrize("preference", ["auto", "cpu", "cuda", "mps"])
def test_training_and_counting_choose_the_same_device_for_the_same_preference(monkeypatch, cuda, mps, preference):
    _machine(monkeypatch, cuda=cuda, mps=mps)
    model = SASNet(SASNetConfig(width_mult=0.125))
    try:
        counting = Predictor(model, device=preference, backend="torch", precision="fp32").device
    except DeviceUnavailableError as exc:
        with pytest.raises(DeviceUnavailableError):
            distributed.setup(preference)
        assert preference in str(exc)
        return
    assert distributed.setup(preference).device == counting
    if preference == "auto":  # a Mac trains where it counts: on its GPU
        assert counting.type == ("cuda" if cuda else "mps" if mps else "cpu")


def test_training_on_an_apple_gpu_is_fp32_and_on_cuda_bf16(monkeypatch):
    from sasnet_core.training.steps import precision_for

    for asked in ("auto", "bf16", "fp32"):
        assert choice.training_precision(torch.device("mps"), asked) == "fp32"
        assert precision_for(torch.device("mps"), asked).dtype == torch.float32
    assert choice.training_precision(torch.device("cuda:0"), "auto") == "bf16"
    assert choice.training_precision(torch.device("cpu"), "auto") == "fp32"


# -- the model's input -----------------------------------------------------------------------------
def _street_image() -> np.ndarray:
    from sasnet_core.io.imageio import read_image

    return read_image(need(STREET_B / "train_data" / "images" / "IMG_1.jpg"))


def test_a_training_crop_and_the_counting_input_of_the_same_pixels_are_the_same_tensor(tmp_path):
    from sasnet_core.datasets.layouts import Sample
    from sasnet_core.io.imageio import write_image
    from sasnet_core.model.preprocess import model_input
    from sasnet_core.training.crops import TrainCrops

    pixels = _street_image()[200:328, 300:428]  # 128 x 128 real pixels: the crop can only be these
    write_image(tmp_path / "crop.png", pixels)
    sample = Sample(str(tmp_path / "crop.png"), np.array([[10.0, 20.0], [64.0, 70.0]]), "train")
    crops, _ = TrainCrops([sample], crop=128, crops_per_image=2, flip=False)[0]
    counted = model_input(pixels[None], PATCH_SIZE)[0]
    assert crops.dtype == counted.dtype == torch.float32
    for crop in crops:
        assert torch.equal(crop, counted)


def test_validation_sees_a_whole_image_as_counting_does(tmp_path):
    from sasnet_core.datasets.layouts import Sample
    from sasnet_core.io.imageio import write_image
    from sasnet_core.model.preprocess import model_input
    from sasnet_core.training.data import FullImageDataset

    image = _street_image()
    write_image(tmp_path / "whole.png", image)
    x, _, _ = FullImageDataset([Sample(str(tmp_path / "whole.png"), np.zeros((0, 2)), "test")])[0]
    assert torch.equal(x, model_input(image[None], PATCH_SIZE)[0])


def test_the_training_targets_use_the_models_count_scale():
    from sasnet_core.training.crops import TrainCrops

    assert TrainCrops([]).count_scale == SASNetConfig().count_scale


# -- one patch grid --------------------------------------------------------------------------------
@pytest.mark.parametrize("display_side", [None, 512])
def test_the_stream_result_and_the_prediction_agree_on_every_patch_of_a_real_image(tiny_predictor, display_side):
    from sasnet_core.engine import uncertainty
    from sasnet_core.engine.counting import count_stream

    path = need(STREET_B / "test_data" / "images" / "IMG_1.jpg")
    pred = tiny_predictor.predict(path)
    (result,) = count_stream(tiny_predictor, [path], display_side=display_side)
    if display_side is not None:
        assert max(result.density.shape) == display_side < max(pred.density.shape)
    ours, theirs = result.patch_counts(), pred.patch_counts()
    assert ours.shape == theirs.shape == pred.confidence.shape[1:]
    # The same density summed over the same patches: exact at full size; on the shrunk display
    # grid the edges round to its pixels, but every patch count still sums to the count.
    np.testing.assert_allclose(ours, theirs, rtol=1e-6 if display_side is None else 0.15, atol=1e-3)
    assert ours.sum() == pytest.approx(result.count, rel=1e-4)
    assert theirs.sum() == pytest.approx(pred.count, rel=1e-4)
    np.testing.assert_array_equal(uncertainty.patch_counts(result), ours)
    gh, gw = ours.shape
    for i, j in [(0, 0), (gh // 2, gw // 3), (gh - 1, gw - 1)]:
        assert result.patch_count(i, j) == pytest.approx(ours[i, j], rel=1e-9, abs=1e-12)
        assert pred.patch_count(i, j) == pytest.approx(theirs[i, j], rel=1e-9, abs=1e-12)
    np.testing.assert_array_equal(result.level_map, pred.level_map)


# -- the patch size --------------------------------------------------------------------------------
def test_every_default_patch_size_is_the_models():
    from sasnet_core.engine.tiling import core_for_budget
    from sasnet_core.training.config import TrainConfig
    from sasnet_gui.canvas.overlays import PATCH_SIDE

    assert SASNetConfig().block_size == TrainConfig().block_size == PATCH_SIDE == PATCH_SIZE
    assert core_for_budget(10**6, 0) % PATCH_SIZE == 0


def test_a_model_with_other_patches_is_counted_on_its_own_grid():
    model = SASNet(SASNetConfig(width_mult=0.125, block_size=16))
    pred = Predictor(model, device="cpu", backend="torch", precision="fp32").predict(
        np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8))
    assert pred.confidence.shape[1:] == (4, 6)
    assert list(pred.patch_cols) == [0, 16, 32, 48, 64, 80, 96]


# -- the engine's defaults -------------------------------------------------------------------------
def test_the_python_api_counts_with_what_sasnet_count_resolves_to(monkeypatch, tiny_weights, tmp_path, capsys):
    """On a CPU that computes bf16 natively, ``auto`` is bf16: Predictor.from_weights without a
    precision must count in it as ``sasnet count`` does (it counted in fp32, at half the speed)."""
    from sasnet_core.cli import main
    from sasnet_core.io.imageio import write_image

    monkeypatch.setattr(choice, "cpu_has_native_bf16", lambda: True)
    write_image(tmp_path / "a.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert main(["count", str(tmp_path / "a.png"), "--weights", str(tiny_weights), "--backend", "torch",
                 "--no-progress"]) == 0
    line = re.search(r"counting with (\S+) (\S+) on (\S+)", capsys.readouterr().err)
    predictor = Predictor.from_weights(tiny_weights, backend="torch")
    assert (predictor.precision, predictor.device.type) == (line.group(2), line.group(3)) == ("bf16", "cpu")
    assert Predictor(SASNet(SASNetConfig(width_mult=0.125)), backend="torch").precision == "bf16"
