"""Every bad input gets a clear answer: the hostile corpus of tests/hostile/ through ``sasnet``."""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import hostile
import pytest
from hostile import ACCEPTED, Ctx, run_cli

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _all_cases():
    cases = []
    for info in sorted(pkgutil.iter_modules(hostile.__path__), key=lambda m: m.name):
        if info.name.startswith("cases_"):
            module = importlib.import_module(f"hostile.{info.name}")
            cases += [pytest.param(c, id=f"{info.name[6:]}-{c.name}", marks=pytest.mark.timeout(c.timeout))
                      for c in module.CASES]
    return cases


CASES = _all_cases()


def test_corpus_is_large_enough():
    assert len(CASES) >= 150, f"the hostile corpus has {len(CASES)} cases"


@pytest.mark.parametrize("case", CASES)
def test_hostile_input(case, tmp_path, tiny_weights, monkeypatch):
    if case.needs_data and not DATA.is_dir():
        pytest.skip(f"needs {DATA}")
    work = tmp_path / "case"
    work.mkdir()
    monkeypatch.chdir(work)
    ctx = Ctx(tmp=work, weights=tiny_weights, data=DATA)
    argv, names = case.make(ctx)
    res = case.run(ctx, argv) if case.run is not None else run_cli(argv)
    assert res.exception is None, f"traceback for sasnet {' '.join(map(str, argv))}:\n{res.exception}"
    assert "Traceback" not in res.err, res.err
    assert res.code == case.expect, (
        f"sasnet {' '.join(map(str, argv))}: exit {res.code}, expected {case.expect}\n"
        f"stdout: {res.out[-2000:]}\nstderr: {res.err[-2000:]}")
    if case.expect != ACCEPTED:
        for text in names:
            assert str(text) in res.err, f"the message does not name {text!r}:\n{res.err}"
    if case.check is not None:
        case.check(ctx, res)
