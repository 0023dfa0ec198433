"""The model registry: names for checkpoint files, validated when added, robust to a damaged file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sasnet_core.cli import main
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet
from sasnet_core.util import paths
from sasnet_core.util.errors import CheckpointError, ModelRegistryError
from sasnet_core.weights.checkpoint import save_checkpoint
from sasnet_core.weights.registry import ModelRegistry, load_model


@pytest.fixture
def tiny(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tiny.pth"
    save_checkpoint(path, SASNet(SASNetConfig(width_mult=0.125)), {"name": "tiny"})
    return path


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_registry_file_is_in_the_user_data_folder():
    assert ModelRegistry().file == paths.data_dir() / "models.json"


def test_names_resolve_to_models_and_the_default_is_used_without_a_name(tiny):
    reg = ModelRegistry()
    reg.add("tiny", tiny)
    model, info = load_model("tiny")
    assert info.path == tiny.resolve() and model.config.width_mult == 0.125
    _, info = load_model(None)  # the default: the first model added
    assert info.path == tiny.resolve()


@pytest.mark.parametrize("damage", ["missing key", "wrong shape", "nan", "inf", "bad metadata"])
def test_add_validates_the_whole_file_and_leaves_the_registry_unchanged(tiny, tmp_path, damage):
    reg = ModelRegistry()
    reg.add("good", tiny)
    before = reg.file.read_bytes()
    obj = torch.load(tiny, weights_only=True)
    state = obj["state_dict"]
    if damage == "missing key":
        state.pop("density_head2.1.conv.bias")
    elif damage == "wrong shape":
        state["features1.0.weight"] = torch.zeros(5, 3, 3, 3)
    elif damage == "nan":
        state["de_pred3.0.conv.weight"][0, 0, 0, 0] = float("nan")
    elif damage == "inf":
        state["confidence_head1.1.conv.bias"][0] = float("inf")
    else:
        obj["metadata"]["architecture"]["selection"] = "best"
    bad = tmp_path / "bad.pth"
    torch.save(obj, bad)
    with pytest.raises(CheckpointError, match="bad.pth"):
        reg.add("bad", bad)
    assert reg.file.read_bytes() == before
    assert [e.name for e in reg.entries()] == ["good"]


def test_a_duplicate_name_points_to_replace(tiny, tmp_path, capsys):
    assert _cli(["models", "add", "m", tiny], capsys)[0] == 0
    other = tmp_path / "other.pth"
    save_checkpoint(other, SASNet(SASNetConfig(width_mult=0.125)), {"name": "other"})
    code, _, err = _cli(["models", "add", "m", other], capsys)
    assert code == 2 and "--replace" in err and "'m'" in err
    assert ModelRegistry().get("m").path == tiny.resolve()
    assert _cli(["models", "add", "m", other, "--replace"], capsys)[0] == 0
    assert ModelRegistry().get("m").path == other.resolve()


def test_list_flags_a_missing_file(tiny, tmp_path, capsys):
    moved = tmp_path / "moved.pth"
    moved.write_bytes(tiny.read_bytes())
    ModelRegistry().add("here", tiny)
    ModelRegistry().add("gone", moved)
    moved.unlink()
    code, out, _ = _cli(["models", "list"], capsys)
    assert code == 0
    gone = next(line for line in out.splitlines() if " gone " in line)
    here = next(line for line in out.splitlines() if " here " in line)
    assert "MISSING" in gone and "MISSING" not in here
    code, out, _ = _cli(["models", "list", "--json"], capsys)
    records = {r["name"]: r for r in map(json.loads, out.splitlines())}
    assert records["gone"]["missing"] is True and records["here"]["missing"] is False


def _damage_entries(reg: ModelRegistry) -> dict:
    data = json.loads(reg.file.read_text())
    data["models"].update({
        "listed": [1, 2],
        "nopath": {"kind": "ours"},
        "numpath": {"path": 42},
        "bad name!": {"path": "/x.pth"},
    })
    reg.file.write_text(json.dumps(data))
    return data


def test_damaged_entries_are_reported_once_each_and_skipped(tiny, capsys):
    reg = ModelRegistry()
    reg.add("good", tiny)
    _damage_entries(reg)
    code, out, err = _cli(["models", "list"], capsys)
    assert code == 0 and " good " in out
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 4, err
    for name in ("'listed'", "'nopath'", "'numpath'", "'bad name!'"):
        line = next(w for w in warnings if name in w)
        assert str(reg.file) in line
    # the rest keeps working: counting with the default model, choosing a default
    assert load_model(None)[1].path == tiny.resolve()
    assert _cli(["models", "default", "good"], capsys)[0] == 0
    code, _, err = _cli(["models", "default", "nopath"], capsys)
    assert code == 2 and "'nopath'" in err and "no file path" in err



def test_a_model_whose_file_is_gone_cannot_become_the_default(tiny, tmp_path, capsys):
    import shutil

    moved = shutil.copy(tiny, tmp_path / "moved.pth")
    assert _cli(["models", "add", "good", tiny], capsys)[0] == 0
    assert _cli(["models", "add", "gone", moved], capsys)[0] == 0
    Path(moved).unlink()
    code, _, err = _cli(["models", "default", "gone"], capsys)
    assert code == 2 and "moved.pth is missing" in err and "models add gone FILE --replace" in err
    assert ModelRegistry().default().name == "good"
    # removing the default does not hand the role to the model whose file is gone
    assert _cli(["models", "remove", "good"], capsys)[0] == 0
    reg = ModelRegistry()
    assert reg.default() is None and [e.name for e in reg.entries()] == ["gone"]


def test_writes_keep_damaged_entries_untouched_and_remove_can_drop_them(tiny, tmp_path, capsys):
    reg = ModelRegistry()
    reg.add("good", tiny)
    damaged = _damage_entries(reg)
    other = tmp_path / "o.pth"
    other.write_bytes(tiny.read_bytes())
    assert _cli(["models", "add", "second", other], capsys)[0] == 0
    data = json.loads(reg.file.read_text())
    for name in ("listed", "nopath", "numpath", "bad name!"):
        assert data["models"][name] == damaged["models"][name]  # nothing a person wrote is lost
    assert _cli(["models", "remove", "listed"], capsys)[0] == 0
    assert "listed" not in json.loads(reg.file.read_text())["models"]


@pytest.mark.parametrize("content", ["[1, 2, 3]", "not json {", '"text"', '{"models": [1]}', "\xff\xfe"])
def test_a_registry_that_is_not_one_is_reported_and_kept_aside_on_the_next_write(tiny, capsys, content):
    reg = ModelRegistry()
    reg.file.parent.mkdir(parents=True, exist_ok=True)
    reg.file.write_bytes(content.encode("latin-1"))
    code, out, err = _cli(["models", "list"], capsys)
    assert code == 0 and "No usable models" in out and str(reg.file) in err
    assert reg.file.read_bytes() == content.encode("latin-1")  # reading never changes it
    assert _cli(["models", "add", "m", tiny], capsys)[0] == 0
    kept = list(reg.file.parent.glob("models.json.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == content.encode("latin-1")
    assert [e.name for e in ModelRegistry().entries()] == ["m"]


def test_a_damaged_default_is_named_when_counting_with_the_default(tiny):
    reg = ModelRegistry()
    reg.add("good", tiny)
    data = json.loads(reg.file.read_text())
    data["models"]["broken"] = {"path": 3}
    data["default"] = "broken"
    reg.file.write_text(json.dumps(data))
    with pytest.raises(ModelRegistryError, match="default model 'broken'.*damaged"):
        load_model(None)


def test_remove_can_delete_a_file_in_the_models_folder_only(tiny, capsys):
    reg = ModelRegistry()
    reg.add("copied", tiny, copy=True)  # lives in the user models folder, as fine-tuned models do
    inside = reg.get("copied").path
    assert paths.models_dir() in inside.parents and inside.is_file()
    reg.add("outside", tiny)
    with pytest.raises(ModelRegistryError, match="outside the models folder"):
        reg.remove("outside", delete_file=True)
    assert tiny.is_file() and reg.get("outside") is not None
    assert reg.remove("copied", delete_file=True) == inside
    assert not inside.exists() and reg.get("copied") is None
    code, out, _ = _cli(["models", "remove", "outside", "--delete-file", "--outside-models-folder"], capsys)
    assert code == 0 and not tiny.exists() and "deleted" in out


def test_remove_keeps_a_file_another_name_still_uses(tiny):
    reg = ModelRegistry()
    reg.add("a", tiny, copy=True)
    reg.add("b", reg.get("a").path)
    with pytest.raises(ModelRegistryError, match="also registered as b"):
        reg.remove("a", delete_file=True)
    reg.remove("a")  # forgetting the name alone is fine
    assert reg.get("b").path.is_file()


def test_remove_without_delete_keeps_the_file(tiny, capsys):
    ModelRegistry().add("m", tiny)
    code, out, _ = _cli(["models", "remove", "m"], capsys)
    assert code == 0 and tiny.is_file() and "deleted" not in out


def test_removing_the_default_model_says_which_model_is_the_default_now(tiny, capsys):
    reg = ModelRegistry()
    reg.add("tiny", tiny)  # the first model added is the default
    reg.add("ft", tiny)
    code, out, _ = _cli(["models", "remove", "tiny"], capsys)
    assert code == 0 and out.strip() == "removed tiny; the default model is now ft"
    assert reg.default().name == "ft"
    code, out, _ = _cli(["models", "remove", "ft"], capsys)
    assert code == 0 and "removed ft; there is no default model now" in out
    assert reg.default() is None


def test_removing_another_model_leaves_the_default_unmentioned(tiny, capsys):
    reg = ModelRegistry()
    reg.add("tiny", tiny)
    reg.add("ft", tiny)
    code, out, _ = _cli(["models", "remove", "ft"], capsys)
    assert code == 0 and out.strip() == "removed ft" and reg.default().name == "tiny"


def test_adding_a_file_that_is_no_pytorch_file_says_so_plainly(tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    code, _, err = _cli(["models", "add", "big", video], capsys)
    assert code == 2 and "clip.mp4: not a PyTorch checkpoint" in err
    assert "safely" not in err and "run code" not in err and len(err.splitlines()) == 1
    assert ModelRegistry().get("big") is None


def test_a_pickle_with_foreign_objects_is_still_refused_as_unsafe(tmp_path, capsys):
    import os
    import pickle

    rigged = tmp_path / "rigged.pth"
    rigged.write_bytes(pickle.dumps({"weight": os.system}, protocol=4))  # would call code on load
    code, _, err = _cli(["models", "add", "rigged", rigged], capsys)
    assert code == 2 and "rigged.pth: not a checkpoint that can be loaded safely" in err


def test_list_and_add_take_no_progress_like_the_other_commands(tiny, capsys):
    assert _cli(["models", "add", "tiny", tiny, "--no-progress"], capsys)[0] == 0
    code, out, err = _cli(["models", "list", "--no-progress"], capsys)
    assert code == 0 and "tiny" in out and err == ""


def test_provenance_of_any_metadata_never_raises():
    from sasnet_core.weights.provenance import provenance

    odd = {"steps": float("inf"), "val_mae": float("nan"), "val_mae_before": "12", "trained_on": 5,
           "finetune_images": ["a.jpg", "b.jpg"], "data_folder": "/x/street", "parent": 7}
    origin = provenance(odd)
    assert (origin.steps, origin.mae_after, origin.mae_before, origin.parent) == (None, None, None, None)
    assert origin.describe() == "SASNet checkpoint (trained on 2 images (street))"


def test_a_copy_never_replaces_the_file_of_a_model_whose_name_differs_in_case_only(tiny, tmp_path, capsys):
    other = tmp_path / "other.pth"
    torch.manual_seed(1)
    save_checkpoint(other, SASNet(SASNetConfig(width_mult=0.125)), {"name": "other"})
    reg = ModelRegistry()
    reg.add("shha", tiny, copy=True)
    first = reg.get("shha").path
    before = first.read_bytes()
    code, out, err = _cli(["models", "add", "SHHA", other, "--copy"], capsys)
    assert code == 0, err
    second = ModelRegistry().get("SHHA").path
    # Two names, two files, whatever the file system does with case: the first is untouched.
    assert second.name.lower() != first.name.lower() and first.read_bytes() == before
    assert second.read_bytes() == other.read_bytes()
    # A file lying in the models folder that no entry names is not replaced either.
    stray = paths.models_dir() / "spare.pth"
    stray.write_bytes(b"someone's file")
    assert reg.add("spare", tiny, copy=True).path.name == "spare-2.pth"
    assert stray.read_bytes() == b"someone's file"


def test_replacing_a_copied_model_reuses_its_own_file(tiny, tmp_path):
    reg = ModelRegistry()
    first = reg.add("m", tiny, copy=True).path
    again = reg.add("m", tiny, copy=True, replace=True).path
    assert again == first and sorted(p.name for p in paths.models_dir().iterdir()
                                      if not p.name.startswith(".")) == ["m.pth"]


def _sasnet(*argv):
    """A ``sasnet`` process (the installed entry point), started now, not waited for."""
    import shutil
    import subprocess
    import sys

    exe = shutil.which("sasnet")
    command = [exe] if exe else [sys.executable, "-m", "sasnet_core"]
    return subprocess.Popen(command + [str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.timeout(300)
def test_concurrent_adds_removes_and_default_changes_lose_nothing(tiny, tmp_path):
    """Processes changing the registry at once, as the app, the fine-tune service and a person in
    a terminal do: every change lands, none crashes, the file stays a valid registry."""
    reg = ModelRegistry()
    for name in ("old1", "old2", "keep1", "keep2"):
        reg.add(name, tiny)
    runs = [_sasnet("models", "add", f"new{i}", tiny, "--no-progress") for i in range(3)]
    runs += [_sasnet("models", "add", name, tiny, "--copy", "--no-progress") for name in ("dup", "DUP")]
    runs += [_sasnet("models", "remove", "old1"), _sasnet("models", "remove", "old2")]
    runs += [_sasnet("models", "default", "keep1"), _sasnet("models", "default", "keep2")]
    results = [(p.args, *p.communicate(timeout=240), p.returncode) for p in runs]
    for args, out, err, code in results:
        assert code == 0 and "Traceback" not in err, f"{args}: exit {code}\n{out}\n{err}"
    data = json.loads(reg.file.read_text())  # valid JSON, never half of two writes
    assert set(data["models"]) == {"keep1", "keep2", "new0", "new1", "new2", "dup", "DUP"}
    assert data["default"] in ("keep1", "keep2")
    copies = [Path(data["models"][n]["path"]) for n in ("dup", "DUP")]
    assert copies[0].name.lower() != copies[1].name.lower()
    assert all(c.read_bytes() == tiny.read_bytes() for c in copies)
    for args, out, _, _ in results:
        if "add" in args:
            assert "registered" in out


def test_threads_of_one_process_changing_the_registry_lose_nothing(tiny):
    """The fine-tune service registers its model from a thread while a person adds one."""
    import threading

    errors = []

    def add(i):
        try:
            ModelRegistry().add(f"t{i}", tiny)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert {e.name for e in ModelRegistry().entries()} == {f"t{i}" for i in range(6)}


@pytest.mark.parametrize("text, taken, limit, expected", [
    ("SHHA (copy)", (), 56, "SHHA-copy"),  # a file name's stem: spaces and brackets go
    ("__private", (), 56, "m__private"),  # a name starts with a letter or digit
    ("...", (), 56, "model"),  # nothing usable left
    ("shha", {"shha", "shha-2"}, 56, "shha-3"),  # the first free number after a taken name
    ("Straße-Kamera", (), 56, "Stra-e-Kamera"),
    ("x" * 80, (), 32, "x" * 32),
])
def test_a_model_name_is_made_from_any_text(text, taken, limit, expected):
    from sasnet_core.weights.registry import model_name_from, valid_model_name

    name = model_name_from(text, taken, limit=limit)
    assert name == expected and valid_model_name(name)


def test_the_models_gui_modules_import_each_other_without_a_cycle():
    """acquire -> dialog -> get_released -> acquire was a cycle (imports inside functions too)."""
    import ast
    from pathlib import Path

    import sasnet_gui.models as pkg

    folder = Path(pkg.__file__).parent
    graph = {}
    for file in folder.glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        graph[file.stem] = {n.rsplit(".", 1)[1] for n in names if n.startswith("sasnet_gui.models.")}

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n))) for n in graph.get(start, ()))

    assert not [m for m in graph if reaches(m, m)], graph
