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


# -- imports ------------------------------------------------------------------------------------
# An import inside a function hides a dependency from the reader and from import-linter's
# layers; it is kept only where it must wait (torch, OpenCV, OpenVINO or Qt not loaded before
# they are needed: the window opens and `sasnet --help` answers without them), and then it says
# so in a comment that starts with "deferred:" on the line above (or above its group).
DEFERRED_MARK = "# deferred:"


def undeclared_deferred_imports(path: Path, root: Path = ROOT) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for fn in ast.walk(_parse(path)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if getattr(node, "level", 0) == 0 and not any(n.split(".")[0] in PACKAGES for n in names):
                continue
            i = node.lineno - 2  # the line above, then up through its group of imports and comments
            declared = DEFERRED_MARK in lines[node.lineno - 1]
            while not declared and i >= 0:
                above = lines[i].strip()
                if above.startswith(DEFERRED_MARK):
                    declared = True
                elif not above.startswith(("from ", "import ", "#")):
                    break
                i -= 1
            if not declared:
                found.append(f"{_where(path, node, root)} {lines[node.lineno - 1].strip()}")
    return found


def import_cycles(package: str) -> list[list[str]]:
    """Groups of the package's modules that import each other, directly or around a loop
    (imports inside functions included: a cycle through one is still a cycle)."""
    import grimp

    graph = grimp.build_graph(package)
    mods = sorted(graph.modules)
    edges = {m: sorted(d for d in graph.find_modules_directly_imported_by(m) if d in graph.modules) for m in mods}
    order, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        order[v] = low[v] = len(order)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for m in mods:
        if m not in order:
            visit(m)
    return cycles


def test_every_import_inside_a_function_says_why_it_waits():
    found = _scan(undeclared_deferred_imports)
    assert not found, "imports inside functions without a '# deferred: why' comment:\n" + "\n".join(found)


def test_the_package_has_no_import_cycles():
    for package in PACKAGES:
        assert import_cycles(package) == [], package


def test_an_undeclared_import_inside_a_function_is_found_and_a_declared_one_is_not(tmp_path):
    path = _module(tmp_path, (
        "def a():\n"
        "    from sasnet_core.util import paths\n"
        "    return paths\n"
        "\n"
        "def b():\n"
        "    # deferred: torch, not needed to start\n"
        "    from sasnet_core.engine import inference\n"
        "    from sasnet_core.engine.counting import count_stream\n"
        "    import json\n"
        "    return inference, count_stream, json\n"))
    found = undeclared_deferred_imports(path, root=tmp_path)
    assert [f.split(" ", 1)[1] for f in found] == ["from sasnet_core.util import paths"]


def test_sasnet_help_answers_without_loading_torch_or_opencv():
    """`sasnet --help` and every command's options are built without torch (seconds to import)."""
    import subprocess
    import sys

    code = ("import sys\nfrom sasnet_core.cli import build_parser\nbuild_parser()\n"
            "print(sorted(m for m in ('torch', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path, monkeypatch):
    pkg = tmp_path / "loopy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from loopy import b\n")
    (pkg / "b.py").write_text("def f():\n    from loopy import a\n    return a\n")
    (pkg / "c.py").write_text("from loopy import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("loopy") == [["loopy.a", "loopy.b"]]
