"""The package installs what it needs, and the core never imports Qt."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sasnet_core_imports_no_qt():
    code = (
        "import sys, importlib, pkgutil, sasnet_core\n"
        "for m in pkgutil.walk_packages(sasnet_core.__path__, 'sasnet_core.'):\n"
        "    if m.name != 'sasnet_core.__main__': importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('PySide6', 'pyqtgraph', 'sasnet_gui', 'superqt'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_package_directory_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("sasnet_core", "sasnet_gui")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert found - listed == set(), "add these packages to [tool.setuptools] packages"


def test_entry_points():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["sasnet"] == "sasnet_core.cli:main"
    assert project["gui-scripts"]["sasnet-gui"] == "sasnet_gui.app:main"
    assert "test" in project["optional-dependencies"]


def test_import_linter_contracts_hold():
    # The same rule, statically: import-linter reads the contracts in pyproject.toml.
    lint = Path(sys.executable).with_name("lint-imports")
    cmd = [str(lint)] if lint.exists() else ["lint-imports"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


def test_requires_python_is_what_the_code_needs():
    """The code uses 3.11's enum.StrEnum and tomllib: pip must refuse an older Python rather than
    install a package that fails on import."""
    uses_311 = [p for top in ("sasnet_core", "sasnet_gui", "tests") for p in (ROOT / top).rglob("*.py")
                if "StrEnum" in p.read_text() or "import tomllib" in p.read_text()]
    assert uses_311, "no 3.11-only feature is used any more: requires-python may go down again"
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"] == ">=3.11"


def test_the_test_extra_installs_the_download_and_int8_extras_by_reference():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "sasnet-studio[download,int8]" in extras["test"]
    named_twice = {r.split(">")[0].split("=")[0] for r in extras["download"] + extras["int8"]} & {
        r.split(">")[0].split("=")[0] for r in extras["test"]}
    assert not named_twice, f"pinned in two extras: {named_twice}"
