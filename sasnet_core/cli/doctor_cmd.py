"""``sasnet doctor``: what a bug report needs, and what this installation is missing.

A report, not a check that fails: it exits 0 whatever it finds. Nothing here re-hashes a
registered model whose file is unchanged since it was registered, so it stays quick.
"""
from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from sasnet_core import __version__
from sasnet_core.engine.choice import DEFAULT_BACKEND, DEFAULT_PRECISION, choose_engine
from sasnet_core.util import paths
from sasnet_core.util.errors import SASNetError, SettingsError
from sasnet_core.util.logs import log_file
from sasnet_core.util.platform_check import (
    missing_qt_libraries,
    missing_qt_libraries_message,
)
from sasnet_core.weights.registry import ModelRegistry

# (label, distribution names to try): versions read from installed metadata, without importing.
_PACKAGES = (
    ("torch", ("torch",)),
    ("torchvision", ("torchvision",)),
    ("numpy", ("numpy",)),
    ("OpenCV", ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                "opencv-contrib-python-headless")),
    ("PySide6", ("PySide6", "PySide6-Essentials")),
    ("pyqtgraph", ("pyqtgraph",)),
    ("gdown", ("gdown",)),
    ("openvino", ("openvino",)),
    ("nncf", ("nncf",)),
)
# /proc/cpuinfo flags that decide whether bf16 is fast on this CPU.
_CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "doctor", help="print versions, devices, models and what is missing (for bug reports)",
        description="Print what a bug report needs (versions, device, precision, backends, CPU features, "
        "model registry, log and settings folders) and what this installation is missing, with how to "
        "get it. Always exits 0.")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(func=run)


def _version(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _cpu_flags() -> dict[str, bool] | None:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None  # not Linux
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
            break
    return {f: f in flags for f in _CPU_FLAGS}


def _devices() -> dict:
    try:
        import torch
    except ImportError:
        return {"error": "torch is not installed"}
    # deferred: torch, which may be what is broken here
    from sasnet_core.training.steps import precision_for

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    kinds = ["cpu"] + (["cuda"] if cuda else []) + (["mps"] if mps else [])
    return {
        "cuda": cuda,
        "cuda_version": torch.version.cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "mps": mps,
        "threads": torch.get_num_threads(),
        "precision": {kind: {**_counting_engine(torch.device(kind)),
                             "training": precision_for(torch.device(kind), "auto").name} for kind in kinds},
        "openvino": _openvino(),
        "backends": ["torch"] + (["openvino"] if _openvino()["usable"] else []),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cudnn": torch.backends.cudnn.version() if cuda else None,
    }


def _counting_engine(device) -> dict:
    """What ``sasnet count`` with its default options runs on ``device``: the resolved backend and
    precision (the same answer the count's first line gives), not the option's value "auto"."""
    try:
        engine = choose_engine(device, str(DEFAULT_PRECISION), str(DEFAULT_BACKEND))
    except SASNetError as exc:
        return {"counting": None, "backend": None, "engine": None, "note": str(exc)}
    return {"counting": str(engine.precision), "backend": str(engine.backend), "engine": engine.describe(),
            "note": engine.note}


def _openvino() -> dict:
    """Whether the CPU backend can run here (importable, not only installed), and which version."""
    # deferred: imports OpenVINO (optional and heavy)
    from sasnet_core.engine.openvino_backend import unavailable_reason

    reason = unavailable_reason()
    return {"installed": _version(("openvino",)) is not None, "version": _version(("openvino",)),
            "usable": reason is None, "problem": reason}


def _registry() -> dict:
    out = {"file": None, "exists": False, "default": None, "models": [], "problems": []}
    try:
        reg = ModelRegistry()
        out.update(file=str(reg.file), exists=reg.file.exists())
        entries = reg.entries()
    except SASNetError as exc:
        out["problems"].append(str(exc))
        return out
    out["problems"] += reg.problems
    for e in entries:
        ident = None if e.missing else reg.identity(e)
        out["models"].append({"name": e.name, "path": str(e.path), "default": e.is_default,
                              "file_present": not e.missing,
                              "identity": ident.status if ident else None,
                              "description": ident.description if ident else None})
        if e.is_default:
            out["default"] = e.name
    return out


# The user folders (platformdirs, or SASNET_STUDIO_HOME): what each holds, for the sentence
# that says what stops working when it cannot be written.
_FOLDERS = (("data", "data_dir", "the model registry: 'sasnet models add' and 'download' fail"),
            ("models", "models_dir", "copied, downloaded and fine-tuned models: they cannot be kept"),
            ("settings", "config_dir", "the app's settings: they are not kept"),
            ("cache", "cache_dir", "converted models: every start converts again, int8 quantizes again"),
            ("log", "log_dir", "log files: nothing is logged for a problem report"))


def _folders() -> dict:
    """Each user folder with why it cannot be written (None when it can); "error" when the
    studio home itself is unusable (SASNET_STUDIO_HOME names a file)."""
    out = {}
    for key, getter, _ in _FOLDERS:
        try:
            folder = getattr(paths, getter)()
        except SettingsError as exc:
            return {"error": str(exc)}
        out[key] = {"path": str(folder), "problem": _unwritable(folder)}
    return out


def _unwritable(folder: Path) -> str | None:
    """Why new files cannot be made in ``folder`` (or, where it does not exist yet, in the
    nearest folder above it, where it would be created), or None. A probe file, not
    ``os.access``: that says yes to root on a read-only mount."""
    import os
    import tempfile

    there = folder
    while not there.exists() and there != there.parent:
        there = there.parent
    if not there.is_dir():
        return f"{there} is a file, not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".sasnet-doctor-", dir=there)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"{exc.strerror or exc} in {there}"
    return None


def collect() -> dict:
    """Everything the report shows, as plain JSON-able data."""
    versions = {label: _version(names) for label, names in _PACKAGES}
    versions["sasnet"] = __version__
    versions["python"] = sys.version.split()[0]
    report = {
        "versions": versions,
        "platform": platform.platform(),
        "devices": _devices(),
        "cpu_flags": _cpu_flags(),
        "registry": _registry(),
        "folders": _folders(),
        "log_file": _or_error(log_file),
        "log_folder": _or_error(paths.log_dir),
        "settings_folder": _or_error(paths.config_dir),
        "models_folder": _or_error(paths.models_dir),
        "missing_qt_libraries": [{"library": lib, "package": pkg} for lib, pkg in missing_qt_libraries(environ={})],
    }
    report["missing"] = _missing(report)
    return report


def _or_error(get) -> str:
    try:
        return str(get())
    except SASNetError as exc:
        return f"unusable: {exc}"


def _missing(report: dict) -> list[str]:
    """What is missing, each with how to get it."""
    out = []
    v = report["versions"]
    for label in ("torch", "torchvision", "numpy", "OpenCV", "PySide6", "pyqtgraph"):
        if v[label] is None:
            out.append(f"{label} is not installed: reinstall with 'python -m pip install -e .' in the source folder")
    ov = report["devices"].get("openvino")
    if ov is not None and not ov["usable"]:
        out.append(f"{ov['problem']}: counting on the CPU falls back to torch, which is several times slower")
    elif ov is not None:
        # deferred: torch and NNCF (optional and heavy)
        from sasnet_core.engine.quantize import nncf_missing_reason

        reason = nncf_missing_reason()
        if reason is not None:
            out.append(reason)
    if v["gdown"] is None:
        out.append("gdown is not installed, so 'sasnet models download' cannot fetch from Google Drive: "
                   "install it with 'python -m pip install gdown'")
    if report["missing_qt_libraries"]:
        pairs = [(m["library"], m["package"]) for m in report["missing_qt_libraries"]]
        out.append("sasnet-gui cannot open a window: " + missing_qt_libraries_message(pairs))
    folders = report["folders"]
    if "error" in folders:
        out.append(f"the studio home cannot be used: {folders['error']}; nothing can be saved "
                   "(models, settings, logs)")
    else:
        fix = "set SASNET_STUDIO_HOME to a folder you may write to, or fix its permissions"
        bad = [(key, what) for key, _, what in _FOLDERS if folders[key]["problem"]]
        if len(bad) == len(_FOLDERS):  # one cause, one line: the home itself
            home = os.environ.get("SASNET_STUDIO_HOME") or folders["data"]["path"]
            out.append(f"the studio home {home} cannot be written ({folders['data']['problem']}): "
                       "'sasnet models add' and 'download' fail, and settings, logs and converted "
                       f"models are not kept; {fix}")
        else:
            out += [f"the {key} folder {folders[key]['path']} cannot be written "
                    f"({folders[key]['problem']}); it keeps {what}; {fix}" for key, what in bad]
    reg = report["registry"]
    usable = [m for m in reg["models"] if m["file_present"]]
    if not reg["models"]:
        out.append("no model is registered: run 'sasnet models download shha' (dense crowds) or "
                   "'sasnet models download shhb' (sparse scenes), or 'sasnet models add NAME FILE.pth'")
    elif not usable:
        out.append("no registered model has its file: put the files back or register another model")
    elif reg["default"] is None:
        out.append("no default model is chosen: 'sasnet models default NAME'")
    for m in reg["models"]:
        if not m["file_present"]:
            out.append(f"the file of model {m['name']!r} is gone ({m['path']}): "
                       f"'sasnet models remove {m['name']}' or put it back")
    return out


def format_text(report: dict) -> str:
    v, d = report["versions"], report["devices"]
    lines = ["versions:"]
    lines += [f"  {k:<14} {v[k] or 'not installed'}" for k in
              ("sasnet", "python", "torch", "torchvision", "numpy", "OpenCV", "PySide6", "pyqtgraph", "gdown",
               "openvino", "nncf")]
    lines.append(f"platform:        {report['platform']}")
    if "error" in d:
        lines.append(f"devices:         {d['error']}")
    else:
        gpus = ", ".join(d["cuda_devices"]) or "none"
        lines += [f"CUDA:            {'yes' if d['cuda'] else 'no'} (build {d['cuda_version'] or 'CPU only'}; "
                  f"GPUs: {gpus})",
                  f"MPS (Apple GPU): {'yes' if d['mps'] else 'no'}",
                  f"CPU threads:     {d['threads']}",
                  f"backends:        {', '.join(d['backends'])} (oneDNN {'yes' if d['mkldnn'] else 'no'}"
                  + (f", cuDNN {d['cudnn']}" if d["cudnn"] else "") + ")"]
        ov = d["openvino"]
        lines.append(f"OpenVINO:        {ov['version'] + ' (CPU backend)' if ov['usable'] else ov['problem']}")
        lines += [f"precision {kind + ':':<6}  counting {p['engine'] or p['note']}, training {p['training']}"
                  for kind, p in d["precision"].items()]
    flags = report["cpu_flags"]
    if flags is not None:
        lines.append("CPU bf16 features: " + ", ".join(f"{k} {'yes' if on else 'no'}" for k, on in flags.items()))
    reg = report["registry"]
    lines.append(f"model registry:  {reg['file']}" + ("" if reg["exists"] else " (not created yet)"))
    for m in reg["models"]:
        state = "FILE MISSING" if not m["file_present"] else m["identity"]
        lines.append(f"  {'*' if m['default'] else ' '} {m['name']:<16} {state:<9} {m['path']}")
        if m["description"]:
            lines.append(f"      {m['description']}")
    lines += [f"  problem: {p}" for p in reg["problems"]]
    lines += [f"models folder:   {report['models_folder']}",
              f"log file:        {report['log_file']}",
              f"settings folder: {report['settings_folder']}"]
    if report["missing"]:
        lines.append("missing:")
        lines += [f"  - {m}" for m in report["missing"]]
    else:
        lines.append("missing:         nothing")
    return "\n".join(lines)


def run(args) -> int:
    report = collect()
    print(json.dumps(report, indent=2) if args.json else format_text(report))
    return 0
