"""``sasnet doctor`` and the check for the system libraries Qt's X11 plugin needs."""
from __future__ import annotations

import json
import logging
from importlib import metadata

import torch

from sasnet_core.cli import main
from sasnet_core.engine.choice import choose_engine
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet
from sasnet_core.util import paths, platform_check
from sasnet_core.weights import released
from sasnet_core.weights.checkpoint import save_checkpoint
from sasnet_core.weights.registry import ModelRegistry


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _tiny(path):
    torch.manual_seed(0)
    save_checkpoint(path, SASNet(SASNetConfig(width_mult=0.125)), {"name": "tiny", "trained_on": "my street"})
    return path


def test_doctor_reports_versions_devices_folders_and_an_empty_registry_as_missing(capsys):
    code, out, err = _cli(["doctor"], capsys)
    assert code == 0, err
    for text in ("torch", "torchvision", "numpy", "OpenCV", "PySide6", "pyqtgraph", "gdown", "python",
                 f"torch          {torch.__version__.split('+')[0]}", "CUDA:", "MPS", "precision cpu:",
                 "backends:", str(paths.log_dir()), str(paths.config_dir()), str(ModelRegistry().file)):
        assert text in out, text
    assert "no model is registered: run 'sasnet models download shha'" in out

    # the log file it names is the one the app writes
    from sasnet_core.util import logs

    try:
        app_log = logs.setup_logging()  # as sasnet-gui starts
        logging.getLogger("sasnet_gui").warning("a line for a bug report")
    finally:
        logs.stop_logging()
    assert f"log file:        {app_log}" in out and app_log.read_text()


def test_doctor_json_lists_each_model_with_its_file_and_identity_without_rehashing(tmp_path, monkeypatch, capsys):
    reg = ModelRegistry()
    reg.add("mine", _tiny(tmp_path / "mine.pth"))
    gone = _tiny(tmp_path / "gone.pth")
    reg.add("gone", gone)
    gone.unlink()
    hashed = []
    monkeypatch.setattr(released, "sha256_file", lambda *a, **k: hashed.append(a) or "0" * 64)
    code, out, err = _cli(["doctor", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    models = {m["name"]: m for m in report["registry"]["models"]}
    assert models["mine"]["file_present"] and models["mine"]["identity"] == "other"
    assert "my street" in models["mine"]["description"]
    assert not models["gone"]["file_present"]
    assert report["registry"]["default"] == "mine"
    assert hashed == []  # unchanged files are not hashed again
    assert any("'gone' is gone" in m for m in report["missing"])
    assert report["versions"]["torch"]
    # The engine a default count runs, resolved for this machine, not the option's value "auto".
    engine = choose_engine(torch.device("cpu"))
    cpu = report["devices"]["precision"]["cpu"]
    assert (cpu["counting"], cpu["backend"]) == (str(engine.precision), str(engine.backend))
    assert cpu["counting"] in ("fp32", "bf16")
    assert report["devices"]["openvino"] == {"installed": True, "version": metadata.version("openvino"), "usable": True,
                                             "problem": None}


def test_doctor_says_counting_falls_back_to_torch_when_openvino_cannot_load(monkeypatch, capsys):
    from sasnet_core.engine import openvino_backend

    monkeypatch.setattr(openvino_backend, "unavailable_reason",
                        lambda: "OpenVINO is not installed (pip install openvino)")
    code, out, _ = _cli(["doctor"], capsys)
    assert code == 0
    assert "OpenVINO:        OpenVINO is not installed (pip install openvino)" in out
    assert f"counting torch {choose_engine(torch.device('cpu'), backend='torch').precision}," in out
    assert "backends:        torch (" in out
    assert ("  - OpenVINO is not installed (pip install openvino): counting on the CPU falls back to torch, "
            "which is several times slower") in out


def test_doctor_names_gdown_and_qt_libraries_when_they_are_missing(monkeypatch, capsys):
    from sasnet_core.cli import doctor_cmd

    real_version = doctor_cmd._version
    monkeypatch.setattr(doctor_cmd, "_version", lambda names: None if "gdown" in names else real_version(names))
    monkeypatch.setattr(platform_check, "_loads", lambda soname: soname != "libxcb-cursor.so.0")
    code, out, _ = _cli(["doctor"], capsys)
    assert code == 0  # a report, not a failure
    assert "gdown" in out and "pip install gdown" in out
    assert "libxcb-cursor.so.0" in out and "sudo apt-get install libxcb-cursor0" in out


def test_missing_qt_libraries_lists_each_library_with_its_debian_package():
    missing = platform_check.missing_qt_libraries(
        platform="linux", environ={}, loads=lambda s: s not in ("libxcb-cursor.so.0", "libxcb-icccm.so.4"))
    assert missing == [("libxcb-cursor.so.0", "libxcb-cursor0"), ("libxcb-icccm.so.4", "libxcb-icccm4")]
    message = platform_check.missing_qt_libraries_message(missing)
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4" in message and "\n" not in message


def test_the_check_loads_real_libraries_and_tells_a_missing_one(monkeypatch):
    # Against the real loader: a library that does not exist is reported, one that does is not.
    monkeypatch.setattr(platform_check, "QT_XCB_LIBRARIES",
                        (("libc.so.6", "libc6"), ("libsasnet-no-such-library.so.9", "nothing")))
    assert platform_check.missing_qt_libraries(platform="linux", environ={}) == [
        ("libsasnet-no-such-library.so.9", "nothing")]


def test_no_x11_check_where_qt_does_not_use_x11():
    nothing_loads = lambda s: False  # noqa: E731
    for platform, environ in (("win32", {}), ("darwin", {}), ("linux", {"QT_QPA_PLATFORM": "offscreen"}),
                              ("linux", {"QT_QPA_PLATFORM": "wayland"})):
        assert platform_check.missing_qt_libraries(platform=platform, environ=environ, loads=nothing_loads) == []
    assert platform_check.missing_qt_libraries(platform="linux", environ={"QT_QPA_PLATFORM": "xcb"},
                                               loads=nothing_loads)
