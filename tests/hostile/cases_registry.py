"""Damaged model registry files (``models.json`` in the user data folder) through ``sasnet models
list/add/remove/default`` and ``sasnet count`` with the default model: damaged entries are reported
(one line naming the registry file and the entry) and skipped, the rest keeps working, and nothing
a person wrote is lost."""
from __future__ import annotations

import json

from hostile import ACCEPTED, REFUSED, Case, Ctx
from hostile import weights as W

BAD = {"listed": [1, 2], "nopath": {"kind": "ours"}, "numpath": {"path": 42}, "nullpath": {"path": None},
       "textentry": "a.pth", "nulchar": {"path": "a\u0000.pth"}, "metalist": {"path": "/m.pth", "metadata": [1]}}


def _warns(*entries):
    """check: stderr has a warning naming the registry file for each damaged entry."""
    def check(ctx: Ctx, result) -> None:
        file = str(W.registry_file())
        lines = [line for line in result.err.splitlines() if "warning" in line]
        for entry in entries:
            assert any(file in line and f"'{entry}'" in line for line in lines), (entry, result.err)
    return check


def _and(*checks):
    def check(ctx, result):
        for c in checks:
            c(ctx, result)
    return check


def _lists_good(ctx, result) -> None:
    assert " good " in result.out, result.out


def _listed(content, extra_check=None):
    def make(ctx):
        W.write_registry(content)
        return ["models", "list"], []

    def check(ctx, result):
        assert str(W.registry_file()) in result.err and "No usable models" in result.out
        assert W.registry_file().read_bytes() == (content.encode() if isinstance(content, str)
                                                  else json.dumps(content).encode()), "reading changed it"
        if extra_check:
            extra_check(ctx, result)
    return make, check


def _kept_aside(ctx, result) -> None:
    aside = list(W.registry_file().parent.glob("models.json.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"[1, 2, 3]"
    from sasnet_core.weights.registry import ModelRegistry

    assert [e.name for e in ModelRegistry().entries()] == ["m"]


def _removed(name):
    def check(ctx, result):
        data = json.loads(W.registry_file().read_text())
        assert name not in data["models"] and "good" in data["models"]
        for other in BAD:
            if other != name:
                assert data["models"][other] == BAD[other], f"damaged entry {other} was changed"
    return check


def _default_is(name):
    def check(ctx, result):
        assert json.loads(W.registry_file().read_text())["default"] == name
    return check


def _counted(ctx, result) -> None:
    assert "img.png" in result.out, result.out


def _make(argv_of, content_of, names_of=lambda ctx: []):
    def make(ctx):
        content_of(ctx)
        return argv_of(ctx), names_of(ctx)
    return make


def _reg(**extra):
    return lambda ctx: W.registry_with(ctx.weights, **extra)


def _file(ctx):
    return [str(W.registry_file())]


def _names_registry(ctx, result) -> None:
    assert str(W.registry_file()) in result.err, result.err


def _json_lists_only_good(ctx, result) -> None:
    assert [json.loads(line)["name"] for line in result.out.splitlines()] == ["good"], result.out


def _flags_gone(ctx, result) -> None:
    gone = next(line for line in result.out.splitlines() if " gone " in line)
    good = next(line for line in result.out.splitlines() if " good " in line)
    assert "MISSING" in gone and "MISSING" not in good, result.out


def _damaged_entries_kept(ctx, result) -> None:
    models = json.loads(W.registry_file().read_text())["models"]
    assert "new" in models
    for name, entry in BAD.items():
        assert models[name] == entry, f"damaged entry {name} was changed"


def _weights_kept(ctx, result) -> None:
    assert ctx.weights.is_file(), "a file outside the models folder was deleted"


def _a_video(ctx):
    video = ctx.tmp / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 16)
    return video


def _plainly_not_a_checkpoint(ctx, result) -> None:
    """Not a PyTorch file at all: said plainly, without the unsafe-pickle warning."""
    assert "safely" not in result.err and "run code" not in result.err, result.err
    assert not json.loads(W.registry_file().read_text())["models"].get("big")


def _says_new_default(ctx, result) -> None:
    assert "removed good; the default model is now other" in result.out, result.out
    _default_is("other")(ctx, result)


def _says_no_default(ctx, result) -> None:
    assert "removed good; there is no default model" in result.out, result.out
    _default_is(None)(ctx, result)


_list_a_list = _listed([1, 2, 3])
_list_not_json = _listed("{not json")
_list_text = _listed('"just text"')
_list_models_list = _listed({"version": 1, "models": [1, 2]})
_list_deep = _listed("[" * 100_000 + "]" * 100_000)

CASES = [
    # whole files that are not a registry: reported, read as empty, never overwritten in place
    Case("list-registry-is-a-list", _list_a_list[0], ACCEPTED, check=_list_a_list[1]),
    Case("list-registry-not-json", _list_not_json[0], ACCEPTED, check=_list_not_json[1]),
    Case("list-registry-is-text", _list_text[0], ACCEPTED, check=_list_text[1]),
    Case("list-models-is-a-list", _list_models_list[0], ACCEPTED, check=_list_models_list[1]),
    Case("list-registry-nested-too-deeply", _list_deep[0], ACCEPTED, check=_list_deep[1]),
    Case("list-registry-binary", _make(lambda ctx: ["models", "list"], lambda ctx: W.write_registry(b"\xff\xfe\x00")),
         ACCEPTED, check=_names_registry),
    Case("add-over-a-list-registry-keeps-it-aside",
         _make(lambda ctx: ["models", "add", "m", ctx.weights], lambda ctx: W.write_registry([1, 2, 3])),
         ACCEPTED, check=_kept_aside),
    Case("registry-is-a-folder",
         _make(lambda ctx: ["models", "list"], lambda ctx: W.registry_file().mkdir(parents=True), _file), REFUSED),
    # damaged entries: reported by name and skipped; the rest keeps working
    Case("list-damaged-entries", _make(lambda ctx: ["models", "list"], _reg(**BAD)), ACCEPTED,
         check=_and(_lists_good, _warns(*BAD))),
    Case("list-json-damaged-entries", _make(lambda ctx: ["models", "list", "--json"], _reg(**BAD)), ACCEPTED,
         check=_and(_warns(*BAD), _json_lists_only_good)),
    Case("count-with-default-beside-damaged-entries",
         _make(lambda ctx: ["count", W.image(ctx.tmp / "img.png")], _reg(**BAD)), ACCEPTED,
         check=_and(_counted, _warns("listed"))),
    Case("count-default-is-damaged",
         _make(lambda ctx: ["count", W.image(ctx.tmp / "img.png")], _reg(default="nopath", **BAD),
               lambda ctx: [str(W.registry_file()), "'nopath'"]), REFUSED),
    Case("count-default-is-a-number",
         _make(lambda ctx: ["count", W.image(ctx.tmp / "img.png")], _reg(default=7, **BAD),
               lambda ctx: [str(W.registry_file()), "'default'", "registered: good"]), REFUSED),
    Case("count-by-name-of-damaged-entry",
         _make(lambda ctx: ["count", W.image(ctx.tmp / "img.png"), "--weights", "numpath"], _reg(**BAD),
               lambda ctx: [str(W.registry_file()), "'numpath'"]), REFUSED),
    Case("count-registered-file-gone",
         _make(lambda ctx: ["count", W.image(ctx.tmp / "img.png"), "--weights", "gone"],
               lambda ctx: W.registry_with(ctx.weights, gone={"path": str(ctx.tmp / "moved.pth")}),
               lambda ctx: [str(ctx.tmp / "moved.pth"), "'gone'"]), REFUSED),
    Case("list-flags-missing-file",
         _make(lambda ctx: ["models", "list"],
               lambda ctx: W.registry_with(ctx.weights, gone={"path": str(ctx.tmp / "moved.pth")})), ACCEPTED,
         check=_flags_gone),
    Case("default-to-entry-without-path",
         _make(lambda ctx: ["models", "default", "nopath"], _reg(**BAD), lambda ctx: [str(W.registry_file()),
                                                                                     "'nopath'"]),
         REFUSED, check=_default_is("good")),
    Case("default-to-good-beside-damaged", _make(lambda ctx: ["models", "default", "good"], _reg(default=None, **BAD)),
         ACCEPTED, check=_default_is("good")),
    Case("remove-damaged-entry-keeps-the-others", _make(lambda ctx: ["models", "remove", "numpath"], _reg(**BAD)),
         ACCEPTED, check=_removed("numpath")),
    Case("add-beside-damaged-entries-keeps-them",
         _make(lambda ctx: ["models", "add", "new", ctx.weights], _reg(**BAD)), ACCEPTED,
         check=_damaged_entries_kept),
    # the commands' own refusals
    Case("add-duplicate-name-points-to-replace",
         _make(lambda ctx: ["models", "add", "good", ctx.weights], _reg(), lambda ctx: ["'good'", "--replace"]),
         REFUSED),
    Case("add-invalid-name", _make(lambda ctx: ["models", "add", "bad name!", ctx.weights], _reg(),
                                   lambda ctx: ["'bad name!'"]), REFUSED),
    Case("remove-unknown-name", _make(lambda ctx: ["models", "remove", "ghost"], _reg(), lambda ctx: ["'ghost'"]),
         REFUSED),
    Case("default-unknown-name", _make(lambda ctx: ["models", "default", "ghost"], _reg(), lambda ctx: ["'ghost'"]),
         REFUSED),
    Case("remove-delete-file-outside-models-folder",
         _make(lambda ctx: ["models", "remove", "good", "--delete-file"], _reg(),
               lambda ctx: [str(ctx.weights), "--outside-models-folder"]),
         REFUSED, check=_weights_kept),
    Case("add-a-video-file",
         _make(lambda ctx: ["models", "add", "big", _a_video(ctx)], _reg(),
               lambda ctx: ["clip.mp4", "not a PyTorch checkpoint"]), REFUSED, check=_plainly_not_a_checkpoint),
    Case("remove-the-default-names-the-new-default",
         _make(lambda ctx: ["models", "remove", "good"],
               lambda ctx: W.registry_with(ctx.weights, other={"path": str(ctx.weights), "kind": "ours",
                                                               "added": "", "metadata": {}})),
         ACCEPTED, check=_says_new_default),
    Case("remove-the-last-model-says-there-is-no-default",
         _make(lambda ctx: ["models", "remove", "good"], _reg()), ACCEPTED, check=_says_no_default),
    Case("remove-outside-flag-without-delete",
         _make(lambda ctx: ["models", "remove", "good", "--outside-models-folder"], _reg(),
               lambda ctx: ["--delete-file"]), REFUSED),
]
