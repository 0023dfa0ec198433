"""The released checkpoints are recognised by their hash, never by their name.

The real files are 156 MB; these tests register small stand-ins and tell ``released.RELEASED``
their hashes, so the whole recognition path (hashing, registry, ``sasnet models add/list``) runs
as it does on SHHA.pth.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import pytest
import torch

from sasnet_core.cli import main
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet
from sasnet_core.weights import released
from sasnet_core.weights.checkpoint import save_checkpoint
from sasnet_core.weights.registry import ModelRegistry


def _tiny(path, seed=0, **metadata):
    torch.manual_seed(seed)
    save_checkpoint(path, SASNet(SASNetConfig(width_mult=0.125)), metadata or {"name": "tiny"})
    return path


def stand_in_for(monkeypatch, key, path):
    """Make ``path`` the released ``key`` file as far as recognition is concerned."""
    data = path.read_bytes()
    fake = dataclasses.replace(released.RELEASED[key], sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    monkeypatch.setitem(released.RELEASED, key, fake)
    return fake


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_renamed_copy_of_the_released_file_is_registered_as_verified_with_the_papers_figures(
        tmp_path, monkeypatch, capsys):
    path = _tiny(tmp_path / "downloaded_weights.pth")
    stand_in_for(monkeypatch, "shha", path)
    code, out, err = _cli(["models", "add", "crowds", path], capsys)
    assert code == 0, err
    assert "SASNet SHHA (released by the authors, verified)" in out
    assert "ShanghaiTech A: MAE 53.59 / MSE 88.38" in out
    ident = ModelRegistry().get("crowds").identity
    assert ident["status"] == "verified" and ident["released"] == "shha"
    assert ident["paper"]["mae"] == 53.59 and ident["paper"]["mse"] == 88.38
    assert ident["source"]["repository"] == released.REPOSITORY_URL
    assert released.DRIVE_FOLDER_ID in ident["source"]["drive_folder"]
    assert ident["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ident["size"] == path.stat().st_size


def test_shhb_is_told_apart_from_shha_by_content(tmp_path, monkeypatch, capsys):
    a, b = _tiny(tmp_path / "one.pth", seed=1), _tiny(tmp_path / "two.pth", seed=2)
    stand_in_for(monkeypatch, "shha", a)
    stand_in_for(monkeypatch, "shhb", b)
    assert _cli(["models", "add", "x", b], capsys)[0] == 0
    assert ModelRegistry().get("x").identity["dataset"] == "ShanghaiTech B"
    assert "ShanghaiTech B: MAE 6.35 / MSE 9.9" in _cli(["models", "list"], capsys)[1]


def test_a_file_named_like_a_released_one_with_other_content_is_registered_as_modified(
        tmp_path, monkeypatch, capsys):
    stand_in_for(monkeypatch, "shha", _tiny(tmp_path / "real.pth", seed=1))
    fake = _tiny(tmp_path / "SHHA.pth", seed=2)
    code, out, err = _cli(["models", "add", "shha", fake], capsys)
    assert code == 0
    assert "modified" in out and "SHHA.pth" in out
    assert "warning" in err and str(fake) in err and "modified" in err
    ident = ModelRegistry().get("shha").identity
    assert ident["status"] == "modified"
    assert "paper" not in ident and "source" not in ident  # the paper's figures are not its figures


def test_metadata_that_names_a_released_model_is_a_claim_too(tmp_path):
    path = _tiny(tmp_path / "weights.pth", name="SHHB")
    ident = released.identify(path, kind="ours", metadata={"name": "SHHB"})
    assert ident.status == "modified" and ident.released.key == "shhb"


def test_the_released_layout_at_the_released_size_claims_to_be_released(tmp_path, monkeypatch):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"x" * 1000)
    for key in released.RELEASED:
        monkeypatch.setitem(released.RELEASED, key, dataclasses.replace(released.RELEASED[key], size=1000))
    ident = released.identify(path, kind="released", metadata={})
    assert ident.status == "modified" and ident.released is None
    assert "SHHA.pth or SHHB.pth" in ident.description
    assert released.identify(path, kind="ours", metadata={}).status == "other"


def test_any_other_file_is_described_from_its_metadata_never_from_its_name(tmp_path, capsys):
    path = _tiny(tmp_path / "shha_street.pth", name="street-v2", trained_on="my street cameras", parent="shhb",
                 figures={"mae": 4.5})
    code, out, err = _cli(["models", "add", "street", path], capsys)
    assert code == 0, err
    entry = ModelRegistry().get("street")
    assert entry.identity["status"] == "other"
    description = entry.identity["description"]
    assert "street-v2" in description and "my street cameras" in description and "shhb" in description
    assert "MAE 4.5" in description
    assert "ShanghaiTech" not in out + description  # 'shha' in the file name means nothing


def test_a_copied_file_is_judged_by_the_name_the_person_gave_it(tmp_path, capsys):
    # --copy stores it as <name>.pth in the models folder: registering as "shha" must not make
    # an ordinary checkpoint claim to be SHHA.pth.
    path = _tiny(tmp_path / "mine.pth")
    assert _cli(["models", "add", "shha", path, "--copy"], capsys)[0] == 0
    assert ModelRegistry().get("shha").identity["status"] == "other"


def test_hashing_streams_the_file_and_reports_progress(tmp_path):
    path = tmp_path / "big.bin"
    data = os.urandom(3 * released.CHUNK + 123)
    path.write_bytes(data)
    calls = []
    digest = released.sha256_file(path, lambda done, total: calls.append((done, total)))
    assert digest == hashlib.sha256(data).hexdigest()
    assert [d for d, _ in calls] == [released.CHUNK, 2 * released.CHUNK, 3 * released.CHUNK, len(data)]
    assert {t for _, t in calls} == {len(data)}


def test_models_add_passes_hashing_progress_through(tmp_path):
    path = _tiny(tmp_path / "m.pth")
    calls = []
    ModelRegistry().add("m", path, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (path.stat().st_size, path.stat().st_size)


def test_listing_rehashes_a_file_only_when_it_changed(tmp_path, monkeypatch, capsys):
    path = _tiny(tmp_path / "weights.pth")
    stand_in_for(monkeypatch, "shha", path)
    assert _cli(["models", "add", "shha", path], capsys)[0] == 0
    hashed = []
    real = released.sha256_file
    monkeypatch.setattr(released, "sha256_file", lambda p, progress=None: hashed.append(p) or real(p, progress))
    out = _cli(["models", "list"], capsys)[1]
    assert "verified" in out and hashed == []
    # The same file, changed in place after it was registered: it is hashed again and no longer verified.
    obj = torch.load(path, weights_only=True)
    obj["metadata"]["name"] = "changed"
    torch.save(obj, path)
    code, out, _ = _cli(["models", "list", "--json"], capsys)
    assert code == 0 and len(hashed) == 1
    assert json.loads(out.splitlines()[0])["identity"]["status"] == "other"


def test_an_entry_without_an_identity_is_hashed_once_and_then_remembered(tmp_path, monkeypatch, capsys):
    # A registry written before files were identified: the first listing hashes, the next do not.
    path = _tiny(tmp_path / "weights.pth")
    reg = ModelRegistry()
    reg.add("m", path)
    data = json.loads(reg.file.read_text())
    del data["models"]["m"]["identity"]
    reg.file.write_text(json.dumps(data))
    hashed = []
    real = released.sha256_file
    monkeypatch.setattr(released, "sha256_file", lambda p, progress=None: hashed.append(p) or real(p, progress))
    for _ in range(3):
        assert _cli(["models", "list"], capsys)[0] == 0
    assert len(hashed) == 1
    assert ModelRegistry().get("m").identity["status"] == "other"


def test_a_stored_identity_that_was_edited_by_hand_is_recomputed(tmp_path):
    path = _tiny(tmp_path / "weights.pth")
    reg = ModelRegistry()
    reg.add("m", path)
    data = json.loads(reg.file.read_text())
    data["models"]["m"]["identity"] = {"status": "verified"}  # no hash, size or time
    reg.file.write_text(json.dumps(data))
    ident = released.recheck(path, reg.get("m").identity, kind="ours", metadata={"name": "tiny"})
    assert ident.status == "other"


@pytest.mark.parametrize("key", sorted(released.RELEASED))
def test_the_published_identities_are_as_the_issue_states(key):
    m = released.RELEASED[key]
    assert m.size == 155_720_893 and len(m.sha256) == 64
    assert m.title == f"SASNet {key.upper()} (released by the authors, verified)"
