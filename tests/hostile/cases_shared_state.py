"""The model registry under concurrent use: processes and threads adding, removing and choosing
the default at once lose nothing and crash nowhere; a copied file never replaces another's."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from hostile import ACCEPTED, REFUSED, Case, Ctx, write_input
from hostile.weights import registry_file


def _sasnet(*argv) -> subprocess.Popen:
    """A ``sasnet`` process beside the case's own command (same studio home, from the environment)."""
    return subprocess.Popen([sys.executable, "-m", "sasnet_core", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


_RUNNING: dict[Path, list] = {}  # the processes and threads a case started, by its folder


def _started(ctx: Ctx, *runs) -> None:
    _RUNNING[ctx.tmp] = list(runs)


def _joined(ctx: Ctx) -> None:
    for run in _RUNNING.pop(ctx.tmp, []):
        if isinstance(run, subprocess.Popen):
            out, err = run.communicate(timeout=240)
            assert run.returncode == 0 and "Traceback" not in (err or ""), f"{run.args}: {run.returncode}\n{out}\n{err}"
        else:
            run.join(240)
            assert not run.is_alive()


def _registry() -> dict:
    data = json.loads(registry_file().read_text(encoding="utf-8"))  # valid JSON, whole
    assert isinstance(data, dict) and isinstance(data["models"], dict)
    return data


def _names_are(*names):
    def check(ctx: Ctx, result) -> None:
        _joined(ctx)
        assert set(_registry()["models"]) == set(names), _registry()["models"].keys()
    return check


def _register(ctx: Ctx, *names) -> None:
    from sasnet_core.weights.registry import ModelRegistry

    for name in names:
        ModelRegistry().add(name, ctx.weights)


def _adds_beside_adds(ctx: Ctx):
    _started(ctx, *(_sasnet("models", "add", f"p{i}", ctx.weights, "--no-progress") for i in range(3)))
    return ["models", "add", "mine", ctx.weights, "--no-progress"], []


def _remove_beside_adds(ctx: Ctx):
    _register(ctx, "old")
    _started(ctx, *(_sasnet("models", "add", f"p{i}", ctx.weights, "--no-progress") for i in range(2)))
    return ["models", "remove", "old"], []


def _default_beside_adds(ctx: Ctx):
    _register(ctx, "a", "b")
    _started(ctx, _sasnet("models", "add", "c", ctx.weights, "--no-progress"),
             _sasnet("models", "default", "a"))
    return ["models", "default", "b"], []


def _default_is_one_of_them(ctx: Ctx, result) -> None:
    _joined(ctx)
    data = _registry()
    assert set(data["models"]) == {"a", "b", "c"} and data["default"] in ("a", "b")


def _copies_differing_in_case_at_once(ctx: Ctx):
    _started(ctx, _sasnet("models", "add", "shha", ctx.weights, "--copy", "--no-progress"))
    return ["models", "add", "SHHA", ctx.weights, "--copy", "--no-progress"], []


def _two_files(ctx: Ctx, result) -> None:
    _joined(ctx)
    models = _registry()["models"]
    files = {Path(models[n]["path"]).name.lower() for n in ("shha", "SHHA")}
    assert len(files) == 2 and all(Path(models[n]["path"]).is_file() for n in ("shha", "SHHA"))


def _copy_over_case_twin(ctx: Ctx):
    from sasnet_core.weights.registry import ModelRegistry

    ModelRegistry().add("shha", ctx.weights, copy=True)
    other = ctx.tmp / "other.pth"
    other.write_bytes(ctx.weights.read_bytes())
    return ["models", "add", "SHHA", other, "--copy", "--no-progress"], []


def _first_copy_untouched(ctx: Ctx, result) -> None:
    models = _registry()["models"]
    a, b = Path(models["shha"]["path"]), Path(models["SHHA"]["path"])
    assert a.name.lower() != b.name.lower() and a.is_file() and b.is_file()
    assert "modified" not in result.out + result.err


def _copy_over_stray_file(ctx: Ctx):
    from sasnet_core.util import paths

    write_input(paths.models_dir() / "spare.pth", b"a file no entry names")
    return ["models", "add", "spare", ctx.weights, "--copy", "--no-progress"], []


def _stray_kept(ctx: Ctx, result) -> None:
    from sasnet_core.util import paths

    assert (paths.models_dir() / "spare.pth").read_bytes() == b"a file no entry names"
    assert Path(_registry()["models"]["spare"]["path"]).name == "spare-2.pth"


def _copy_over_upper_stray(ctx: Ctx):
    from sasnet_core.util import paths

    write_input(paths.models_dir() / "NET.PTH", b"someone's")
    return ["models", "add", "net", ctx.weights, "--copy", "--no-progress"], []


def _upper_stray_kept(ctx: Ctx, result) -> None:
    from sasnet_core.util import paths

    assert (paths.models_dir() / "NET.PTH").read_bytes() == b"someone's"
    assert Path(_registry()["models"]["net"]["path"]).name.lower() != "net.pth"


def _replace_own_copy(ctx: Ctx):
    from sasnet_core.weights.registry import ModelRegistry

    ModelRegistry().add("m", ctx.weights, copy=True)
    return ["models", "add", "m", ctx.weights, "--copy", "--replace", "--no-progress"], []


def _one_file(ctx: Ctx, result) -> None:
    from sasnet_core.util import paths

    assert sorted(p.name for p in paths.models_dir().iterdir() if not p.name.startswith(".")) == ["m.pth"]


def _lock_held_a_moment(ctx: Ctx):
    code = ("import filelock, sys, time; l = filelock.FileLock(sys.argv[1]); l.acquire(); "
            "print('held', flush=True); time.sleep(3); l.release()")
    lock = registry_file().with_name("models.json.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    _started(ctx, holder)
    return ["models", "add", "waited", ctx.weights, "--no-progress"], []


def _lock_is_a_folder(ctx: Ctx):
    registry_file().with_name("models.json.lock").mkdir(parents=True)
    return ["models", "add", "x", ctx.weights, "--no-progress"], ["models.json.lock", "cannot be made"]


def _threads_beside_the_command(ctx: Ctx):
    from sasnet_core.weights.registry import ModelRegistry

    _register(ctx, "gone")

    def service(i):  # as the fine-tune service registers its model from a thread
        ModelRegistry().add(f"tuned{i}", ctx.weights)

    threads = [threading.Thread(target=service, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    _started(ctx, *threads)
    return ["models", "remove", "gone"], []


def _damaged_registry_and_adds(ctx: Ctx):
    from hostile.weights import write_registry

    write_registry("{ not json")
    _started(ctx, _sasnet("models", "add", "p0", ctx.weights, "--no-progress"))
    return ["models", "add", "mine", ctx.weights, "--no-progress"], []


def _damaged_kept_once(ctx: Ctx, result) -> None:
    _joined(ctx)
    assert set(_registry()["models"]) == {"p0", "mine"}
    kept = list(registry_file().parent.glob("models.json.damaged-*"))
    assert len(kept) == 1 and kept[0].read_text() == "{ not json"


def _remove_and_default_same_model(ctx: Ctx):
    _register(ctx, "a", "b")
    _started(ctx, _sasnet("models", "remove", "a"))
    return ["models", "default", "b"], []


def _models_folder_is_a_file(ctx: Ctx):
    from sasnet_core.util import paths

    write_input(paths.models_dir(), "a file where the models folder goes")
    return ["models", "add", "c", ctx.weights, "--copy", "--no-progress"], ["models"]


CASES = [
    Case("adds-beside-three-adds", _adds_beside_adds, ACCEPTED, _names_are("p0", "p1", "p2", "mine"), timeout=300),
    Case("remove-beside-adds", _remove_beside_adds, ACCEPTED, _names_are("p0", "p1"), timeout=300),
    Case("default-beside-add-and-default", _default_beside_adds, ACCEPTED, _default_is_one_of_them, timeout=300),
    Case("copies-differing-in-case-at-once", _copies_differing_in_case_at_once, ACCEPTED, _two_files, timeout=300),
    Case("copy-over-a-case-twin", _copy_over_case_twin, ACCEPTED, _first_copy_untouched),
    Case("copy-over-an-unregistered-file", _copy_over_stray_file, ACCEPTED, _stray_kept),
    Case("copy-over-an-upper-case-file", _copy_over_upper_stray, ACCEPTED, _upper_stray_kept),
    Case("replace-reuses-its-own-copy", _replace_own_copy, ACCEPTED, _one_file),
    Case("lock-held-by-another-process", _lock_held_a_moment, ACCEPTED, _names_are("waited"), timeout=120),
    Case("lock-is-a-folder", _lock_is_a_folder, REFUSED),
    Case("service-threads-beside-a-remove", _threads_beside_the_command, ACCEPTED,
         _names_are("tuned0", "tuned1", "tuned2"), timeout=120),
    Case("damaged-registry-and-two-adds", _damaged_registry_and_adds, ACCEPTED, _damaged_kept_once, timeout=300),
    Case("remove-one-default-other-at-once", _remove_and_default_same_model, ACCEPTED, _names_are("b"),
         timeout=300),
    Case("copy-with-models-folder-a-file", _models_folder_is_a_file, REFUSED),
]
