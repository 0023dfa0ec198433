"""SASNet loads the released checkpoint layout strictly and computes what the authors' code computes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sasnet_core.engine.inference import Predictor
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet, sasnet
from sasnet_core.util.errors import CheckpointError
from sasnet_core.weights.checkpoint import load_model, save_checkpoint

KEYS_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "official_sasnet_keys.json"


def released_layout_state(seed: int = 0) -> dict:
    """A state dict with exactly the keys, shapes and dtypes of SHHA.pth, random but realistic values."""
    if not KEYS_FILE.exists():
        pytest.skip(f"reference key list not found at {KEYS_FILE}")
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape, dtype in json.loads(KEYS_FILE.read_text()):
        if dtype == "int64":
            state[key] = torch.tensor(100, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("running_mean") or key.endswith("bias"):
            state[key] = (torch.rand(shape, generator=g) - 0.5) * 0.2
        elif key.endswith("weight") and len(shape) == 1:  # BN scale
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:  # conv kernels, He-style so activations neither vanish nor explode
            fan_in = int(np.prod(shape[1:]))
            state[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
    return state


def authors_forward(state: dict, x: torch.Tensor, block: int = 32) -> torch.Tensor:
    """The authors' forward pass, re-derived from their model.py as plain functions on the state dict.

    Independent of our module code: same layer order, bilinear align_corners upsampling, density and
    confidence at every level upsampled (nearest), concatenated P5..P1, sigmoid, softmax, weighted sum.
    """

    def conv(t, prefix, pad, relu=True):
        t = F.conv2d(t, state[f"{prefix}.weight"], state.get(f"{prefix}.bias"), padding=pad)
        return F.relu(t) if relu else t

    def bn(t, prefix, eps):
        return F.batch_norm(t, state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"],
                            state[f"{prefix}.weight"], state[f"{prefix}.bias"], False, 0.0, eps)

    def vgg(t, stage, convs):
        for c in convs:
            t = F.relu(bn(F.conv2d(t, state[f"features{stage}.{c}.weight"], state[f"features{stage}.{c}.bias"],
                                   padding=1), f"features{stage}.{c + 1}", 1e-5))
        return t

    def basic(t, prefix, pad):
        return F.relu(bn(F.conv2d(t, state[f"{prefix}.conv.weight"], padding=pad), f"{prefix}.bn", 1e-3))

    def mbm(t, p):
        a = basic(basic(t, f"{p}.branch1x1", 0), f"{p}.branch1x1_1", 0)
        b = basic(basic(t, f"{p}.branch3x3_1", 0), f"{p}.branch3x3_2", 1)
        c = basic(basic(t, f"{p}.branch3x3dbl_1", 0), f"{p}.branch3x3dbl_2", 2)
        return torch.cat([a, b, c, t], 1)

    size = x.shape
    x1 = vgg(x, 1, [0, 3])
    x2 = vgg(F.max_pool2d(x1, 2), 2, [1, 4])
    x3 = vgg(F.max_pool2d(x2, 2), 3, [1, 4, 7])
    x4 = vgg(F.max_pool2d(x3, 2), 4, [1, 4, 7])
    x5 = vgg(F.max_pool2d(x4, 2), 5, [1, 4, 7])
    outs = {}
    t = conv(conv(x5, "de_pred5.0.conv", 1), "de_pred5.1.conv", 1)
    outs[5] = t
    for lvl, skip in ((4, x4), (3, x3), (2, x2), (1, x1)):
        t = F.interpolate(t, size=skip.shape[2:], mode="bilinear", align_corners=True)
        t = conv(conv(torch.cat([skip, t], 1), f"de_pred{lvl}.0.conv", 1), f"de_pred{lvl}.1.conv", 1)
        outs[lvl] = t
    dens, confs = [], []
    for lvl in (5, 4, 3, 2, 1):
        d = conv(mbm(outs[lvl], f"density_head{lvl}.0"), f"density_head{lvl}.1.conv", 0)
        pooled = F.adaptive_avg_pool2d(outs[lvl], (size[-2] // block, size[-1] // block))
        c = conv(conv(pooled, f"confidence_head{lvl}.0.conv", 0), f"confidence_head{lvl}.1.conv", 0, relu=False)
        dens.append(F.interpolate(d, size=x1.shape[2:], mode="nearest"))
        confs.append(F.interpolate(c, size=x1.shape[2:], mode="nearest"))
    conf = torch.softmax(torch.sigmoid(torch.cat(confs, 1)), 1)
    return (torch.cat(dens, 1) * conf).sum(1, keepdim=True)


def _input(h: int, w: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_model_state_dict_has_exactly_the_released_keys_shapes_and_dtypes():
    state = released_layout_state()
    ours = SASNet().state_dict()
    assert list(ours) == list(state)
    for key, value in state.items():
        assert ours[key].shape == value.shape, key
        assert ours[key].dtype == value.dtype, key


def test_the_stand_in_for_trained_weights_is_the_released_layout_and_exercises_every_layer(tmp_path):
    """Speed, memory and CUDA parity run on ``stand_in_sasnet``: it must load as a released
    checkpoint does, be the same for the same seed, and keep a crowd's signal alive to the end."""
    from sasnet_core.model.fast_forward import fold_batchnorm
    from sasnet_core.model.stand_in import stand_in_sasnet

    state = released_layout_state()
    model = stand_in_sasnet(3)
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [(k, v.shape) for k, v in state.items()]
    twin, other = stand_in_sasnet(3).state_dict(), stand_in_sasnet(4).state_dict()
    assert all(torch.equal(v, twin[k]) for k, v in model.state_dict().items())
    assert not torch.equal(model.state_dict()["features1.0.weight"], other["features1.0.weight"])
    path = tmp_path / "stand_in.pth"
    torch.save(model.state_dict(), path)
    loaded, info = load_model(path)
    assert info.kind == "released"
    x = _input(96, 160)
    with torch.no_grad():
        out = loaded(x).density
        folded_model = fold_batchnorm(model)
        folded = folded_model(x).density
    # BatchNorm away from the identity: folding really changes the kernels, and not the output
    assert not torch.allclose(folded_model.features1[0].weight, model.features1[0].weight, rtol=0.01)
    assert ((folded - out).abs().max() / out.abs().max()) < 1e-4
    assert torch.isfinite(out).all() and out.abs().max() > 1e-6


def test_released_checkpoint_loads_strictly_and_matches_the_authors_forward(tmp_path):
    state = released_layout_state()
    path = tmp_path / "SHHA.pth"
    torch.save(state, path)  # exactly how the authors' checkpoints are stored: a bare state dict
    model, info = load_model(path)
    assert info.kind == "released" and info.config == SASNetConfig()
    x = _input(96, 160)  # not a multiple of 32 on one side: exercises the odd-size paths
    with torch.no_grad():
        ref = authors_forward(state, x)
        out = model(x)
    assert out.density.shape == ref.shape
    rel = (out.density - ref).abs().max() / ref.abs().max()
    assert ref.sum() > 0 and rel < 1e-4
    assert abs(out.density.sum() - ref.sum()) / ref.sum() < 1e-4


def test_predictor_fp32_path_gives_the_authors_count_and_density(tmp_path):
    state = released_layout_state(seed=3)
    torch.save(state, tmp_path / "SHHB.pth")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (100, 130, 3), dtype=np.uint8)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    x = ((torch.from_numpy(image).float() / 255 - mean) / std).permute(2, 0, 1)[None]
    with torch.no_grad():
        ref = authors_forward(state, x)[0, 0].numpy() / 1000.0
    pred = Predictor.from_weights(tmp_path / "SHHB.pth", device="cpu", precision="fp32").predict(image)
    assert abs(pred.count - ref.sum()) / ref.sum() < 1e-4
    assert np.abs(pred.density - ref).max() / np.abs(ref).max() < 1e-4


def test_outputs_carry_levels_confidence_and_selection():
    torch.manual_seed(0)
    model = SASNet(SASNetConfig(width_mult=0.125)).eval()
    with torch.no_grad():
        out = model(_input(64, 96))
    assert out.level_densities.shape == (1, 5, 64, 96)
    assert out.confidence_logits.shape == out.confidence.shape == (1, 5, 2, 3)
    torch.testing.assert_close(out.confidence.sum(1), torch.ones(1, 2, 3))
    # Eq. 5: the fused map is the confidence-weighted sum of the five level maps.
    weights = F.interpolate(out.confidence, size=(64, 96), mode="nearest")
    torch.testing.assert_close(out.density, (out.level_densities * weights).sum(1, keepdim=True))


@pytest.mark.parametrize("selection", ["hard", "average"])
def test_ablation_selections(selection):
    torch.manual_seed(0)
    model = SASNet(SASNetConfig(width_mult=0.125, selection=selection)).eval()
    with torch.no_grad():
        out = model(_input(64, 64))
    if selection == "hard":
        assert set(out.confidence.unique().tolist()) <= {0.0, 1.0}
        torch.testing.assert_close(out.confidence.sum(1), torch.ones(1, 2, 2))
    else:
        torch.testing.assert_close(out.density, out.level_densities.mean(1, keepdim=True))


def test_our_checkpoint_round_trip_keeps_architecture_and_metadata(tmp_path):
    model = SASNet(SASNetConfig(width_mult=0.25, selection="hard"))
    path = save_checkpoint(tmp_path / "m.pth", model, {"parent": "SHHA.pth", "trained_on": "street", "steps": 12})
    loaded, info = load_model(path)
    assert info.kind == "ours" and info.config == model.config
    assert info.metadata["parent"] == "SHHA.pth" and info.metadata["steps"] == 12
    assert "created" in info.metadata and info.metadata["count_scale"] == 1000.0
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    same = sasnet(weights=loaded.state_dict(), config=info.config)
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(TypeError, match="registry.load_model"):
        sasnet(weights=str(path))  # files are read by the checkpoint layer, never by the network's module


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state = SASNet().state_dict()
    state.pop("density_head3.1.conv.bias")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "bad.pth")
    msg = str(err.value)
    assert "bad.pth" in msg and "density_head3.1.conv.bias" in msg and "extra.weight" in msg


def test_wrong_shapes_are_named(tmp_path):
    torch.save(SASNet(SASNetConfig(width_mult=0.5)).state_dict(), tmp_path / "half.pth")
    with pytest.raises(CheckpointError, match=r"half\.pth.*wrong shape.*features1\.0\.weight"):
        load_model(tmp_path / "half.pth")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken zip"])
def test_files_that_are_not_checkpoints(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="weights.pth"):
        load_model(path)


def test_pickled_code_is_refused_by_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="evil.pth.*safely"):
        load_model(tmp_path / "evil.pth")


def test_a_checkpoint_of_something_else(tmp_path):
    torch.save({"weights": [1, 2, 3]}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="other.pth.*no tensors"):
        load_model(tmp_path / "other.pth")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(CheckpointError, match="tensor.pth.*Tensor"):
        load_model(tmp_path / "tensor.pth")


def test_ddp_prefixed_state_dicts_load(tmp_path):
    state = {f"module.{k}": v for k, v in SASNet(SASNetConfig()).state_dict().items()}
    torch.save(state, tmp_path / "ddp.pth")
    _, info = load_model(tmp_path / "ddp.pth")
    assert info.kind == "released"


# ---------------------------------------------------------------------------------------------
# damaged checkpoints: one sentence naming the file and the field, never a traceback
# ---------------------------------------------------------------------------------------------
def _tiny_payload():
    torch.manual_seed(0)
    model = SASNet(SASNetConfig(width_mult=0.125))
    return {"format": "sasnet-studio-checkpoint", "version": 1, "state_dict": model.state_dict(),
            "metadata": {"architecture": model.config.to_dict(), "count_scale": 1000.0, "name": "t"}}


def _arch(**fields):
    def edit(obj):
        obj["metadata"]["architecture"].update(fields)
    return edit


def _meta(**fields):
    def edit(obj):
        obj["metadata"].update(fields)
    return edit


def _top(key, value):
    def edit(obj):
        obj[key] = value
    return edit


@pytest.mark.parametrize("edit, field", [
    (_arch(selection="best"), "architecture.selection"),
    (_arch(selection=3), "architecture.selection"),
    (_arch(block_size="32"), "architecture.block_size"),
    (_arch(block_size=10 ** 9), "architecture.block_size"),
    (_arch(block_size=0), "architecture.block_size"),
    (_arch(block_size=True), "architecture.block_size"),
    (_arch(count_scale=0), "architecture.count_scale"),
    (_arch(count_scale=float("nan")), "architecture.count_scale"),
    (_arch(width_mult=-0.125), "architecture.width_mult"),
    (_arch(width_mult="wide"), "architecture.width_mult"),
    (_meta(architecture=[1, 2]), "architecture"),
    (_meta(count_scale=0.0), "count_scale"),
    (_meta(name=["a"]), "name"),
    (_meta(steps="many"), "steps"),
    (_top("metadata", [("a", 1)]), "metadata"),
    (_top("metadata", "text"), "metadata"),
    (_top("version", "1"), "version"),
    (_top("version", 99), "newer"),
])
def test_wrong_metadata_types_and_ranges_name_the_file_and_the_field(tmp_path, edit, field):
    obj = _tiny_payload()
    edit(obj)
    torch.save(obj, tmp_path / "meta.pth")
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "meta.pth")
    assert str(tmp_path / "meta.pth") in str(err.value) and field in str(err.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("kind", ["ours", "released"])
def test_non_finite_weights_are_refused(tmp_path, value, kind):
    obj = _tiny_payload()
    obj["state_dict"]["de_pred2.1.conv.weight"][0, 0, 1, 1] = value
    torch.save(obj if kind == "ours" else obj["state_dict"], tmp_path / "nan.pth")
    with pytest.raises(CheckpointError, match=r"nan\.pth.*de_pred2\.1\.conv\.weight.*NaN or infinite"):
        load_model(tmp_path / "nan.pth")


def test_a_changed_byte_inside_a_tensor_is_found_by_the_archive_checksum(tmp_path):
    path = save_checkpoint(tmp_path / "flip.pth", SASNet(SASNetConfig(width_mult=0.125)))
    import zipfile

    with zipfile.ZipFile(path) as zf:
        big = max(zf.infolist(), key=lambda i: i.file_size)  # the largest tensor's bytes
    data = bytearray(path.read_bytes())
    name_len, extra_len = int.from_bytes(data[big.header_offset + 26:big.header_offset + 28], "little"), \
        int.from_bytes(data[big.header_offset + 28:big.header_offset + 30], "little")
    start = big.header_offset + 30 + name_len + extra_len
    data[start + big.file_size // 2] ^= 0x01  # one bit of one weight: torch.load alone loads it silently
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"flip\.pth: damaged checkpoint file: the checksum"):
        load_model(path)


@pytest.mark.parametrize("content", [b"hello world", b"\x80\x02}q\x00.", b"#!/bin/sh\necho hi\n", b"\x00" * 64])
def test_foreign_bytes_give_one_plain_sentence(tmp_path, content):
    path = tmp_path / "foreign.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    message = str(err.value)
    assert message.startswith(str(path) + ": ") and "\n" not in message
    # torch's own text for some of these is a bare number such as "101", which says nothing
    assert not message.rstrip(")").split("(")[-1].strip().isdigit(), message
    assert len(message) < 250 + len(str(path))


def test_a_folder_given_as_weights_is_named(tmp_path):
    (tmp_path / "dir.pth").mkdir()
    with pytest.raises(CheckpointError, match=r"dir\.pth: is a folder"):
        load_model(tmp_path / "dir.pth")


def test_a_checkpoint_cannot_run_code_by_any_route(tmp_path, capsys):
    """A pickle that would create a file when unpickled: refused by load, registration, count, eval."""
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    state = SASNet(SASNetConfig(width_mult=0.125)).state_dict()
    torch.save({"format": "sasnet-studio-checkpoint", "version": 1, "state_dict": state,
                "metadata": {"x": Evil()}}, tmp_path / "evil.pth")
    from sasnet_core.cli import main
    from sasnet_core.weights.registry import ModelRegistry

    with pytest.raises(CheckpointError, match="evil.pth.*safely"):
        load_model(tmp_path / "evil.pth")
    with pytest.raises(CheckpointError):
        ModelRegistry().add("evil", tmp_path / "evil.pth")
    image = tmp_path / "img.png"
    from sasnet_core.io.imageio import write_image

    write_image(image, np.zeros((64, 64, 3), np.uint8))
    assert main(["count", str(image), "--weights", str(tmp_path / "evil.pth")]) == 2
    assert main(["models", "add", "evil", str(tmp_path / "evil.pth")]) == 2
    assert "evil.pth" in capsys.readouterr().err
    assert not marker.exists()


def test_model_module_does_no_file_io_and_imports_no_checkpoint_or_registry():
    import ast

    import sasnet_core.model.sasnet as model_module

    tree = ast.parse(Path(model_module.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {"sasnet_core.weights.checkpoint", "sasnet_core.weights.registry"} & imported
