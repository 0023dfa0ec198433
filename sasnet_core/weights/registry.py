"""The model registry shared by ``sasnet`` and ``sasnet-gui``: names for checkpoint files.

Stored as JSON in the platformdirs user data folder (``models.json``), written atomically. A file
is validated completely (``checkpoint.inspect_checkpoint``) when it is registered, not at first use.

The app, every ``sasnet`` process and the fine-tune service's thread may change it at the same
time: each change reads, modifies and writes the file while holding ``models.json.lock`` (a
``filelock`` lock, released by the operating system if the holder dies), so no change is lost.
A file copied into the models folder gets a name no other file there has, compared as a
case-insensitive file system compares names, so it never replaces another model's file.

A registry edited by hand or damaged on disk keeps working: entries that are not usable are
reported (``ModelRegistry.problems``, and as warnings of this module's logger, one line each,
naming the registry file and the entry) and skipped; they stay in the file untouched, so nothing
a person wrote is lost, and ``remove`` can drop them. A file that is not a registry at all is
moved aside (``models.json.damaged-TIMESTAMP``) before the first write, never overwritten.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import filelock

from sasnet_core.io.atomic import (
    atomic_path,
    atomic_write_text,
    ensure_folder,
    keep_aside,
)
from sasnet_core.util import paths
from sasnet_core.util.errors import CheckpointError, ModelRegistryError, kind_of
from sasnet_core.weights.released import identify, recheck

if TYPE_CHECKING:  # torch loads only when a checkpoint is read: listing names stays instant
    import torch

    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet
    from sasnet_core.weights.checkpoint import CheckpointInfo

log = logging.getLogger(__name__)

HOW_TO_GET_A_MODEL = (
    "Get the released SASNet weights with 'sasnet models download shha' (dense crowds) or "
    "'sasnet models download shhb' (sparse street scenes), or download SHHA.pth / SHHB.pth from the "
    "authors' Google Drive folder (linked from github.com/TencentYoutuResearch/CrowdCounting-SASNet) "
    "and register one: 'sasnet models add shha SHHA.pth --default'. "
    "Or pass a file directly with --weights FILE.pth, or train one with 'sasnet train'."
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# How long a change waits for another process's change of the registry. A change holds the lock
# for one read and write, or a copy of a checkpoint into the models folder (a few seconds for
# the released 156 MB files on a slow disk).
LOCK_TIMEOUT_S = 120.0


@dataclass
class ModelEntry:
    name: str
    path: Path
    kind: str
    added: str
    metadata: dict
    is_default: bool = False
    # What the file is, from its hash (``released.Identity.to_dict``): status verified / modified /
    # other, sha256, size, mtime, description; for a released file also the paper's figures and source.
    identity: dict = field(default_factory=dict)

    @property
    def missing(self) -> bool:
        """The registered file is gone (moved, deleted, on a drive that is not mounted)."""
        return not self.path.is_file()


def _empty() -> dict:
    return {"version": 1, "default": None, "models": {}}


class ModelRegistry:
    def __init__(self, file: str | os.PathLike | None = None):
        self.file = Path(file) if file else paths.data_dir() / "models.json"
        self.problems: list[str] = []  # damaged parts found by the last read, one sentence each
        self._warned: set[str] = set()

    # -- reading --------------------------------------------------------------------------
    def _read(self) -> tuple[dict, bool]:
        """(data, whole): ``whole`` is False when the file is not a registry at all (then data is
        empty and the file is moved aside before the next write)."""
        self.problems = []
        if not self.file.exists():
            return _empty(), True
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ModelRegistryError(f"model registry cannot be read ({exc.strerror or exc})", self.file) from None
        except ValueError as exc:  # not JSON, or not UTF-8 text
            return self._unusable(f"is not JSON ({exc})")
        except RecursionError:
            return self._unusable("is nested too deeply to be a registry")
        if not isinstance(data, dict):
            return self._unusable(f"holds {kind_of(data)} instead of an object")
        if not isinstance(data.get("models", {}), dict):
            return self._unusable(f"its 'models' is {kind_of(data['models'])} instead of an object")
        data.setdefault("models", {})
        default = data.get("default")
        if default is not None and not isinstance(default, str):
            self._report(f"its 'default' is {kind_of(default)} instead of a model name; no default model")
            data["default"] = None
        for name, entry in data["models"].items():
            why = _entry_problem(name, entry)
            if why:
                self._report(f"entry {name!r} {why}; skipped")
        return data, True

    def _unusable(self, why: str) -> tuple[dict, bool]:
        self._report(f"model registry {why}; no models are registered until it is fixed or deleted "
                     "(the next change moves it aside)")
        return _empty(), False

    def _report(self, sentence: str) -> None:
        message = f"{self.file}: {sentence}"
        self.problems.append(message)
        if message not in self._warned:  # one command reads the file several times: say it once
            self._warned.add(message)
            log.warning(message)

    def _write(self, data: dict, whole: bool) -> None:
        if not whole and self.file.exists():
            aside = keep_aside(self.file, "damaged", move=True)
            log.warning(f"{self.file}: the damaged model registry was kept as {aside}")
        atomic_write_text(self.file, json.dumps(data, indent=2, sort_keys=True))

    @contextmanager
    def _changing(self) -> Iterator[tuple[dict, bool]]:
        """(data, whole) read under the registry's lock, held until the caller's change is
        written (``_write``): another process cannot change the file in between."""
        lock_file = self.file.with_name(self.file.name + ".lock")
        try:
            ensure_folder(self.file.parent)
            lock = filelock.FileLock(lock_file, timeout=LOCK_TIMEOUT_S)
            lock.acquire()
        except filelock.Timeout:
            raise ModelRegistryError(f"the model registry is being changed by another program for more than "
                                     f"{LOCK_TIMEOUT_S:.0f} s (its lock is {lock_file}); try again when it "
                                     "has finished", self.file) from None
        except OSError as exc:
            raise ModelRegistryError(f"the model registry cannot be changed: its lock {lock_file} cannot be "
                                     f"made ({exc.strerror or exc})", self.file) from None
        try:
            yield self._read()
        finally:
            lock.release()

    def _entry(self, name: str, data: dict) -> ModelEntry:
        e = data["models"][name]
        return ModelEntry(name, Path(e["path"]), e.get("kind", "?"), e.get("added", ""), e.get("metadata", {}),
                          name == data.get("default"), e.get("identity", {}))

    def entries(self) -> list[ModelEntry]:
        """Usable entries, sorted by name; damaged ones are in ``problems``."""
        data, _ = self._read()
        return [self._entry(name, data) for name, e in sorted(data["models"].items()) if not _entry_problem(name, e)]

    def get(self, name: str) -> ModelEntry | None:
        return next((e for e in self.entries() if e.name == name), None)

    def default(self) -> ModelEntry | None:
        return next((e for e in self.entries() if e.is_default), None)

    # -- changing -------------------------------------------------------------------------
    def add(self, name: str, file: str | os.PathLike, *, copy: bool = False, make_default: bool = False,
            replace: bool = False, progress: Callable[[int, int], None] | None = None,
            default_if_none: bool = True) -> ModelEntry:
        """Register a checkpoint file under ``name`` after validating it completely and identifying
        it by its hash (``released.identify``; ``progress(done, total)`` while hashing). It becomes
        the default with ``make_default``, or when there is no usable default and ``default_if_none``."""
        if not _NAME.match(name):
            raise ModelRegistryError(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-'")
        # deferred: torch; listing, naming and resolving models need none
        from sasnet_core.weights.checkpoint import inspect_checkpoint

        src = Path(file).expanduser().resolve()
        given_name = src.name
        info = inspect_checkpoint(src)  # refuses damaged files and files that do not fit SASNet
        summary = {k: v for k, v in info.metadata.items()
                   if isinstance(v, (str, int, float, bool, type(None), dict, list))}

        # Hashed before the lock is taken (seconds for a large file); a copy keeps the file's
        # time (copy2), so the identity stored describes the copy as well.
        identity = identify(src, kind=info.kind, metadata=summary, progress=progress, original_name=given_name)
        with self._changing() as (data, whole):
            if not src.is_file():  # deleted while it was hashed (an unkept fine-tuned model)
                raise ModelRegistryError("the checkpoint was deleted while it was being registered", src)
            if name in data["models"] and not replace:
                raise ModelRegistryError(f"a model named {name!r} is registered already; add --replace to "
                                         "replace it, or choose another name")
            if copy:
                dst = _free_copy_name(name, src, data)
                if not _same_file(dst, src):
                    with atomic_path(dst) as tmp:
                        shutil.copy2(src, tmp)
                src = dst
            data["models"][name] = {
                "path": str(src), "kind": info.kind, "metadata": summary, "identity": identity.to_dict(),
                "added": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            }
            if make_default or (default_if_none and not self._usable_default(data)):
                data["default"] = name
            self._write(data, whole)
            # What was written, not a read after the lock is released: another change may
            # follow at once (a removal of this very name), and the caller reports this one.
            return self._entry(name, data)

    def remove(self, name: str, *, delete_file: bool = False, outside_models_dir: bool = False) -> Path | None:
        """Forget ``name`` (damaged entries too). ``delete_file``: also delete its checkpoint file
        (models made by fine-tuning live in the models folder); a file outside that folder is
        deleted only with ``outside_models_dir``, and never while another name still uses it.
        Returns the deleted file, if any."""
        with self._changing() as (data, whole):
            return self._remove(name, data, whole, delete_file, outside_models_dir)

    def _remove(self, name: str, data: dict, whole: bool, delete_file: bool, outside_models_dir: bool):
        if name not in data["models"]:
            raise ModelRegistryError(self._unknown(name, data))
        target = None
        if delete_file:
            entry = data["models"][name]
            if _entry_problem(name, entry):
                raise ModelRegistryError(f"entry {name!r} is damaged and names no usable file; remove it "
                                         "without deleting a file", self.file)
            target = Path(entry["path"]).expanduser()
            folder = paths.models_dir().resolve()
            if not outside_models_dir and folder not in target.resolve().parents:
                raise ModelRegistryError(f"model {name!r} uses a file outside the models folder {folder}; "
                                         "it is deleted only when asked for explicitly (--outside-models-folder)", target)
            others = [n for n, e in data["models"].items() if n != name and not _entry_problem(n, e)
                      and Path(e["path"]).expanduser().resolve() == target.resolve()]
            if others:
                raise ModelRegistryError(f"the file of model {name!r} is also registered as "
                                         f"{', '.join(sorted(others))}; not deleted", target)
        del data["models"][name]
        if data.get("default") == name:
            usable = sorted(n for n, e in data["models"].items() if not _default_problem(n, e))
            data["default"] = usable[0] if usable else None
        self._write(data, whole)
        if target is not None and target.exists():
            target.unlink()
        return target

    def delete_unless_registered(self, file: str | os.PathLike) -> bool:
        """Delete ``file`` unless an entry names it (damaged entries too); True if it went. Checked
        and deleted under the registry's lock, so a registration of that file cannot come in
        between and be left naming nothing. A registry that is not whole keeps the file: it may
        list it."""
        target = Path(file).expanduser().resolve()
        with self._changing() as (data, whole):
            named = any(isinstance(e, dict) and isinstance(e.get("path"), str)
                        and Path(e["path"]).expanduser().resolve() == target for e in data["models"].values())
            if named or not whole:
                return False
            target.unlink(missing_ok=True)
            return True

    def identity(self, entry: ModelEntry, progress: Callable[[int, int], None] | None = None):
        """What ``entry``'s file is (``released.Identity``), or None if the file is gone. The stored
        identity serves while the file's size and time are unchanged; otherwise the file is hashed
        again and the result stored, so an entry from an older version or a changed file costs one
        hashing, not one per listing."""
        ident = recheck(entry.path, entry.identity, kind=entry.kind, metadata=entry.metadata, progress=progress)
        if ident is not None and ident.to_dict() != entry.identity:
            try:
                with self._changing() as (data, whole):
                    stored = data["models"].get(entry.name)
                    if whole and isinstance(stored, dict) and stored.get("path") == str(entry.path):
                        stored["identity"] = ident.to_dict()
                        self._write(data, whole)
            except (OSError, ModelRegistryError):
                pass  # a read-only or busy registry still lists; the file is hashed again next time
            entry.identity = ident.to_dict()
        return ident

    def set_default(self, name: str) -> None:
        with self._changing() as (data, whole):
            if name not in data["models"]:
                raise ModelRegistryError(self._unknown(name, data))
            why = _default_problem(name, data["models"][name])
            if why:
                raise ModelRegistryError(why, self.file)
            data["default"] = name
            self._write(data, whole)

    @staticmethod
    def _usable_default(data: dict) -> bool:
        name = data.get("default")
        return isinstance(name, str) and name in data["models"] and not _default_problem(name, data["models"][name])

    @staticmethod
    def _unknown(name: str, data: dict) -> str:
        known = ", ".join(sorted(data["models"])) or "none"
        return f"no registered model named {name!r} (registered: {known})"

    # -- names -> files -------------------------------------------------------------------
    def resolve(self, weights: str | os.PathLike | None) -> Path:
        """A file path for ``weights``: an existing file, a registered name, or None for the default."""
        if weights is None:
            entry = self.default()
            if entry is None:
                data, _ = self._read()
                name = data.get("default")
                if isinstance(name, str) and name in data["models"]:
                    raise ModelRegistryError(f"the default model {name!r} has a damaged registry entry; "
                                             "choose another with 'sasnet models default NAME'", self.file)
                usable = [e.name for e in self.entries()]
                if usable:
                    raise ModelRegistryError(f"no default model is chosen (registered: {', '.join(usable)}); "
                                             "choose one with 'sasnet models default NAME' or pass --weights",
                                             self.file)
                raise ModelRegistryError("no model given and none registered. " + HOW_TO_GET_A_MODEL)
            return _existing(entry)
        candidate = Path(weights).expanduser()
        if candidate.is_file():
            return candidate
        data, _ = self._read()
        if str(weights) in data["models"]:
            why = _entry_problem(str(weights), data["models"][str(weights)])
            if why:
                raise ModelRegistryError(f"entry {str(weights)!r} {why}", self.file)
            return _existing(self.get(str(weights)))
        if candidate.exists():
            return candidate  # a folder given as weights: the checkpoint reader names it
        if candidate.suffix or os.sep in str(weights):
            raise CheckpointError("no such checkpoint file", candidate)
        raise ModelRegistryError(self._unknown(str(weights), data) + ". " + HOW_TO_GET_A_MODEL)


def _free_copy_name(name: str, src: Path, data: dict) -> Path:
    """Where a copy of ``src`` registered as ``name`` goes in the models folder: ``NAME.pth``, else
    ``NAME-2.pth``, ... A name is taken when a file of that name exists there or another entry
    names it, compared case-insensitively (as macOS and Windows compare names, so ``SHHA.pth``
    never replaces the ``shha.pth`` of another model); the file of the entry being replaced is
    this name's own and may be overwritten."""
    folder = paths.models_dir()
    suffix = src.suffix if src.suffix.lower() in (".pth", ".pt") else ".pth"
    own = data["models"].get(name)
    own_path = own.get("path") if isinstance(own, dict) and isinstance(own.get("path"), str) else None
    try:
        present = {p.name.lower() for p in folder.iterdir()}
    except OSError:
        present = set()  # no folder yet: the copy makes it
    used = {_folded(e["path"]) for n, e in data["models"].items()
            if n != name and isinstance(e, dict) and isinstance(e.get("path"), str)}
    n = 1
    while True:
        candidate = folder / (f"{name}{suffix}" if n == 1 else f"{name}-{n}{suffix}")
        mine = own_path is not None and _folded(own_path) == _folded(candidate)
        if _same_file(candidate, src) or (_folded(candidate) not in used
                                         and (mine or candidate.name.lower() not in present)):
            return candidate
        n += 1


def _folded(path) -> str:
    """A path as a case-insensitive file system compares it."""
    return os.path.normcase(os.path.abspath(os.path.expanduser(str(path)))).casefold()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def valid_model_name(name: str) -> bool:
    return isinstance(name, str) and bool(_NAME.match(name))


def model_name_from(text: str, taken: Iterable[str] = (), limit: int = 56) -> str:
    """A valid registry name made from free text (a file name's stem, a parent model's name, a
    released model's key): each run of characters a name cannot hold becomes '-', leading and
    trailing '-' and '.' go, at most ``limit`` characters are kept, and a name that would not
    start with a letter or digit gets an 'm' before it ("model" when nothing is left). One in
    ``taken`` gets the first free "-2", "-3", ... after it."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-.")[:limit] or "model"
    if not stem[0].isalnum():
        stem = "m" + stem
    taken = set(taken)
    name, i = stem, 2
    while name in taken:
        name, i = f"{stem}-{i}", i + 1
    return name


def _default_problem(name: str, entry) -> str | None:
    """Why a registry entry cannot be the default model (every count without --weights would
    fail on it), or None."""
    why = _entry_problem(name, entry)
    if why:
        return f"entry {name!r} {why}; it cannot be the default model"
    path = Path(entry["path"]).expanduser()
    if not path.is_file():
        return (f"model {name!r} cannot be the default: its file {path} is missing (moved, deleted, or "
                f"on a drive that is not mounted); register it again with 'sasnet models add {name} "
                "FILE --replace'")
    return None


def _entry_problem(name, entry) -> str | None:
    """Why a registry entry cannot be used, or None."""
    if not isinstance(name, str) or not _NAME.match(name):
        return "has a name that is not a valid model name"
    if not isinstance(entry, dict):
        return f"is {kind_of(entry)} instead of an object"
    path = entry.get("path")
    if path is None:
        return "has no file path"
    if not isinstance(path, str) or not path.strip():
        return f"has a file path that is {kind_of(path)} instead of text"
    if "\x00" in path:
        return "has a file path with a NUL character"
    for key, kind, label in (("kind", str, "text"), ("added", str, "text"), ("metadata", dict, "an object"),
                             ("identity", dict, "an object")):
        if key in entry and not isinstance(entry[key], kind):
            return f"has a {key!r} that is {kind_of(entry[key])} instead of {label}"
    return None


def _existing(entry: ModelEntry) -> Path:
    if entry.missing:
        raise CheckpointError(f"file of registered model {entry.name!r} is gone; "
                              f"'sasnet models remove {entry.name}' or put it back", entry.path)
    return entry.path


def resolve_weights(weights: str | os.PathLike | None) -> Path:
    return ModelRegistry().resolve(weights)


def load_model(
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    config: SASNetConfig | None = None,
) -> tuple[SASNet, CheckpointInfo]:
    """Build SASNet from a checkpoint file, a registered model name, or the default model (None).
    Validated as ``checkpoint.load_model`` does; raises CheckpointError / ModelRegistryError."""
    # deferred: torch; listing, naming and resolving models need none
    from sasnet_core.weights.checkpoint import load_model as _load_model_file

    return _load_model_file(resolve_weights(weights), device=device, config=config)
