"""The shape of the package's code, checked on its syntax tree: no function longer than a screen
or two, and no object reading another object's private attributes.

A long function hides several steps behind one name, and a private attribute read from outside
ties two classes together where neither says so; both are what a newcomer trips over first.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sasnet_core", "sasnet_gui")
MAX_FUNCTION_LINES = 80

# Libraries whose underscore names are their documented or well-known way in: PyInstaller's
# ``sys._MEIPASS``, ``os._exit`` after a fork or at a hard quit, torch's ``_C`` and batch-norm base
# class, OpenCV's and NumPy's internals. A name reached through one of them (``torch.nn`` imported
# as ``nn`` counts as torch) is theirs to keep stable, not ours.
LIBRARY_MODULES = frozenset({"sys", "os", "torch", "torchvision", "cv2", "numpy", "np"})


def _scan(check) -> list[str]:
    """``check(path)`` over every module of the package, in a stable order."""
    found = []
    for path in sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")):
        try:
            found += check(path)
        except FileNotFoundError:  # moved away while the tree was walked: no longer a module
            continue
    return found


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _where(path: Path, node: ast.AST, root: Path) -> str:
    return f"{path.relative_to(root).as_posix()}:{node.lineno}"


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES, root: Path = ROOT) -> list[str]:
    """``file:line name (N lines)`` for each function or method in ``path`` over ``limit`` lines,
    counted from its ``def`` line to its last line (nested functions count in their parent too)."""
    found = []
    for node in ast.walk(_parse(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                found.append(f"{_where(path, node, root)} {node.name} ({length} lines)")
    return found


def _imported_modules(tree: ast.Module) -> dict[str, str]:
    """Each name bound by an import in ``tree`` -> the top-level package it comes from."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = node.module.split(".")[0]
    return names


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def foreign_private_reads(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line expression`` for each ``X._name`` in ``path`` where X is not ``self`` or ``cls``
    (``self.other._name`` is another object's too), ``_name`` is not a dunder, and X does not come
    from one of ``LIBRARY_MODULES``."""
    tree = _parse(path)
    modules = _imported_modules(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        if node.attr.startswith("__") and node.attr.endswith("__"):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        if isinstance(node.value, ast.Call) and ast.unparse(node.value.func) == "super":
            continue  # the object's own attribute, as its base class defines it
        base = _root_name(node.value)
        if base is not None and modules.get(base, base) in LIBRARY_MODULES:
            continue
        found.append(f"{_where(path, node, root)} {ast.unparse(node)}")
    return found


def test_no_function_in_the_package_exceeds_80_lines():
    found = _scan(long_functions)
    assert not found, (f"{len(found)} function(s) over {MAX_FUNCTION_LINES} lines; split each into "
                       "named steps:\n" + "\n".join(found))


def test_no_private_attribute_of_another_object_is_read():
    found = _scan(foreign_private_reads)
    assert not found, ("private attributes read from outside their object; give the owner a public "
                       "name for it:\n" + "\n".join(found))


# -- the checks themselves catch what they are for ---------------------------------------------------
def _module(folder: Path, text: str) -> Path:
    """A module ``pkg/mod.py`` under ``folder`` holding ``text``, for the checks above."""
    path = folder / "pkg" / "mod.py"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    return path


def test_a_long_function_is_named_with_its_file_line_and_length(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(80))
    path = _module(tmp_path, f"import os\n\n\ndef short():\n    return 1\n\n\ndef too_long():\n{body}")
    assert long_functions(path, root=tmp_path) == ["pkg/mod.py:8 too_long (81 lines)"]
    assert long_functions(path, limit=81, root=tmp_path) == []


def test_a_method_over_the_limit_is_found_too(tmp_path):
    body = "".join(f"        y{i} = {i}\n" for i in range(85))
    path = _module(tmp_path, f"class Panel:\n    def _build(self):\n{body}")
    assert long_functions(path, root=tmp_path) == ["pkg/mod.py:2 _build (86 lines)"]


def test_private_reads_from_outside_are_found_and_own_ones_are_not(tmp_path):
    path = _module(
        tmp_path,
        "import os\nimport sys\nimport torch.nn as nn\n\n\n\n"
        "class A:\n"
        "    def f(self, window):\n"
        "        self._mine = window._last_folder()\n"      # 9: another object's
        "        return self.canvas._rgb, cls._x, self.__dict__, window.__class__\n"  # 10: canvas's
        "\n"
        "    def g(self, p):\n"
        "        os._exit(0)\n"
        "        return sys._MEIPASS, nn.modules.batchnorm._BatchNorm, super()._g()\n")
    assert foreign_private_reads(path, root=tmp_path) == ["pkg/mod.py:9 window._last_folder",
                                                          "pkg/mod.py:10 self.canvas._rgb"]
